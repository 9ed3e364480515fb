#include "mil/mhim/grn.h"

#include <cmath>
#include <stdexcept>

#include <torch/nn/init.h>
#include <torch/utils.h>

#include "mil/models/model_init.h"

namespace mil {

CrossAttentionImpl::CrossAttentionImpl(int64_t dim, int64_t heads_, int64_t head_dim_,
                                       double dropout)
    : heads(heads_), head_dim(head_dim_) {
  const int64_t inner = heads * head_dim;
  to_kv = register_module("to_kv",
                          torch::nn::Linear(torch::nn::LinearOptions(dim, 2 * inner).bias(false)));
  to_q =
      register_module("to_q", torch::nn::Linear(torch::nn::LinearOptions(dim, inner).bias(false)));
  to_out = register_module(
      "to_out", torch::nn::Sequential(torch::nn::Linear(inner, dim), FastDropout(dropout)));
  attention_dropout = register_module("dropout", FastDropout(dropout));
}

at::Tensor CrossAttentionImpl::forward(const at::Tensor& instances, const at::Tensor& queries) {
  const auto kv = to_kv->forward(instances).chunk(2, -1);
  const auto split = [this](const at::Tensor& t) {
    return t.view({t.size(0), heads, head_dim}).transpose(0, 1);
  };
  const at::Tensor k = split(kv[0]), v = split(kv[1]),
                   q = split(to_q->forward(queries));  // [H, ·, hd]
  const at::Tensor dots =
      q.matmul(k.transpose(1, 2)) * std::pow(static_cast<double>(head_dim), -0.5);
  const at::Tensor attention = attention_dropout->forward(dots.softmax(-1));  // [H, k, L]
  const at::Tensor out =
      attention.matmul(v).transpose(0, 1).reshape({queries.size(0), heads * head_dim});
  return to_out->forward(out);
}

GlobalRecycleImpl::GlobalRecycleImpl(GlobalRecycleOptions options_) : options(std::move(options_)) {
  if (!(options.keep_ratio() >= 0.0 && options.keep_ratio() < 1.0)) {
    throw std::invalid_argument(
        "merge_ratio (the kept share) must be in [0, 1): 1 leaves nothing to recycle");
  }
  if (options.tokens() < 1) throw std::invalid_argument("merge_k must be >= 1");
  if (!(options.momentum() >= 0.0 && options.momentum() <= 1.0))
    throw std::invalid_argument("merge_mm must be in [0, 1]");
  norm =
      register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.dim()})));
  attn = register_module("attn", CrossAttention(options.dim(), options.heads(), options.head_dim(),
                                                options.dropout()));
  global_q_mm = torch::zeros({1, options.tokens(), options.dim()});
  if (options.momentum() != 1.0) {
    // VPT-style uniform init, ±sqrt(6 / (3·16·16 + d)) = ±0.06847 for d = 512.
    const double bound = std::sqrt(6.0 / (3.0 * 16 * 16 + static_cast<double>(options.dim())));
    torch::nn::init::uniform_(global_q_mm, -bound, bound);
    global_q_mm = register_parameter("global_q_mm", global_q_mm, /*requires_grad=*/false);
  }
}

int64_t GlobalRecycleImpl::kept_count(int64_t survivors) const {
  return static_cast<int64_t>(static_cast<double>(survivors) * options.keep_ratio());
}

at::Tensor GlobalRecycleImpl::forward(const at::Tensor& survivors, const at::Tensor& given_order) {
  TORCH_CHECK(survivors.dim() == 2 && survivors.size(1) == options.dim(),
              "GlobalRecycle expects [L, ", options.dim(), "] survivors, got ", survivors.sizes());
  // A copy, so the in-place EMA below cannot alter what the backward pass saved. (The reference
  // updates
  // `.data` behind autograd's back, so its LayerNorm gradient sees the post-update queries.)
  const at::Tensor queries =
      layer_norm_fp32(*norm, global_q_mm.squeeze(0).to(survivors.device()).clone());
  if (!is_training())
    return torch::cat({survivors, attn->forward(layer_norm_fp32(*norm, survivors), queries)}, 0);
  const int64_t length = survivors.size(0);
  const int64_t keep = kept_count(length);
  TORCH_CHECK(keep < length, "GlobalRecycle: nothing left to recycle from ", length, " survivors");
  at::Tensor order;
  if (given_order.defined()) {
    TORCH_CHECK(given_order.dim() == 1 && given_order.size(0) == length, "GlobalRecycle: order of ",
                given_order.sizes(), " for ", length, " survivors");
    order = given_order.to(survivors.device(), at::kLong);
  } else {
    order =
        torch::rand({length}, survivors.options().dtype(at::kFloat)).argsort(/*dim=*/int64_t{0});
  }
  const at::Tensor kept = survivors.index_select(0, order.narrow(0, 0, keep));
  const at::Tensor dropped = survivors.index_select(0, order.narrow(0, keep, length - keep));
  const at::Tensor tokens = attn->forward(layer_norm_fp32(*norm, dropped), queries);  // [k, d]
  if (options.momentum() != 1.0) {
    torch::NoGradGuard no_grad;
    global_q_mm.mul_(options.momentum())
        .add_(tokens.detach().unsqueeze(0).to(global_q_mm.dtype()), 1.0 - options.momentum());
  }
  return torch::cat({kept, tokens}, 0);
}

}  // namespace mil
