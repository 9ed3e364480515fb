#include "mil/mhim/selfattn_aggregator.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "mil/models/model_init.h"

namespace mil {
namespace {

/// The reference fixes each head's width at mlp_dim / 8, whatever the head count.
constexpr int64_t kHeadWidthDivisor = 8;

NystromAttentionOptions layer_attention(const MhimSelfAttentionOptions& o) {
  return NystromAttentionOptions(o.dim())
      .heads(o.heads())
      .head_dim(o.dim() / kHeadWidthDivisor)
      .landmarks(o.dim() / 2)
      .dropout(o.attention_dropout());
}

}  // namespace

MhimSelfAttentionImpl::MhimSelfAttentionImpl(MhimSelfAttentionOptions options_)
    : options(std::move(options_)) {
  TORCH_CHECK(options.dim() >= kHeadWidthDivisor && options.dim() % kHeadWidthDivisor == 0 &&
                  options.heads() > 0,
              "selfattn aggregator needs dim a positive multiple of 8 and heads > 0, got ",
              options.dim(), " and ", options.heads());
  // Registration order is the reference's state_dict order (own parameter first, then children).
  cls_token = register_parameter("cls_token", at::empty({1, 1, options.dim()}));
  norm =
      register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.dim()})));
  layer1 = register_module("layer1", TransLayer(layer_attention(options)));
  layer2 = register_module("layer2", TransLayer(layer_attention(options)));
  pos_embedding = register_module("pos_embedding", Ppeg(PpegOptions(options.dim())));
  reset_parameters();
}

void MhimSelfAttentionImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  cls_token.normal_();
  xavier_normal_linears(*this);
  for (auto* conv :
       {pos_embedding->proj.get(), pos_embedding->proj1.get(), pos_embedding->proj2.get(),
        layer1->attn->res_conv.get(), layer2->attn->res_conv.get()}) {
    conv->reset_parameters();
  }
  for (auto* layer_norm : {norm.get(), layer1->norm.get(), layer2->norm.get()})
    layer_norm->reset_parameters();
}

AggregatorOutput MhimSelfAttentionImpl::forward(const at::Tensor& instances, bool want_scores) {
  TORCH_CHECK(instances.dim() == 2 && instances.size(1) == options.dim() && instances.size(0) > 0,
              "selfattn aggregator expects [N, ", options.dim(),
              "] instance embeddings with N >= 1, got ", instances.sizes());
  at::Tensor x = at::cat({cls_token.view({1, options.dim()}), instances});  // [1 + N, d]
  const NystromAttentionOutput first = layer1->forward(x, want_scores);
  x = first.output;
  x = at::cat({x.slice(0, 0, 1), pos_embedding->forward_padded(x.slice(0, 1))});
  x = layer2->forward(x).output;
  AggregatorOutput out;
  out.embedding = layer_norm_fp32(*norm, x.slice(0, 0, 1));  // [1, d]
  if (want_scores) {
    out.attention = first.attention;  // [H, N]
    const int64_t n = instances.size(0);
    const at::Tensor weighted = first.values * first.attention.unsqueeze(-1);  // [H, N, dh]
    out.contributions = layer1->attn->to_out->forward(weighted.transpose(0, 1).reshape({n, -1}));
  }
  return out;
}

}  // namespace mil
