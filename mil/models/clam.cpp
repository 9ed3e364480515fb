#include "mil/models/clam.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include <ATen/ATen.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/dropout.h>

#include "mil/core/model_catalog.h"
#include "mil/models/fast_dropout.h"
#include "mil/models/model_init.h"
#include "mil/models/model_options.h"

namespace mil {

at::Tensor smooth_top1_svm_loss(const at::Tensor& logits, const at::Tensor& targets, double alpha,
                                double tau) {
  TORCH_CHECK(logits.dim() == 2 && logits.size(1) >= 2 && logits.size(0) > 0,
              "smooth_top1_svm_loss expects [M, K] logits with M > 0 and K >= 2, got ",
              logits.sizes());
  TORCH_CHECK(
      targets.dim() == 1 && targets.size(0) == logits.size(0) && targets.scalar_type() == at::kLong,
      "smooth_top1_svm_loss expects [M] int64 targets for logits ", logits.sizes(), ", got ",
      targets.sizes());
  TORCH_CHECK(tau > 0.0 && alpha >= 0.0, "smooth_top1_svm_loss needs tau > 0 and alpha >= 0, got ",
              tau, ", ", alpha);
  const at::Tensor truth = logits.gather(1, targets.unsqueeze(1));  // [M, 1]
  const at::Tensor classes = at::arange(logits.size(1), targets.options());
  const at::Tensor margin =
      classes.unsqueeze(0).ne(targets.unsqueeze(1)).to(logits.scalar_type()) * alpha;
  const at::Tensor shifted = logits + margin - truth;  // [M, K]; 0 at the target
  const at::Tensor smooth = (shifted / tau).logsumexp(1) * tau;
  const at::Tensor hard = std::get<0>(shifted.max(1));
  // The reference switches a row to the hard hinge when its top-1 logit leads the second by >=
  // tau·ln(1000).
  const at::Tensor top2 = std::get<0>(logits.detach().topk(2, 1));
  const at::Tensor use_hard = (top2.select(1, 0) - top2.select(1, 1)).ge(tau * std::log(1000.0));
  return at::where(use_hard, hard, smooth).mean();
}

SmoothTop1SvmImpl::SmoothTop1SvmImpl(int64_t class_count, double alpha_, double tau_)
    : alpha(alpha_), tau(tau_) {
  TORCH_CHECK(class_count >= 2, "SmoothTop1Svm needs class_count >= 2, got ", class_count);
  labels = register_buffer("labels", at::arange(class_count, at::TensorOptions().dtype(at::kLong)));
}

at::Tensor SmoothTop1SvmImpl::forward(const at::Tensor& logits, const at::Tensor& targets) {
  TORCH_CHECK(logits.dim() == 2 && logits.size(1) == labels.size(0), "SmoothTop1Svm expects [M, ",
              labels.size(0), "] logits, got ", logits.sizes());
  return smooth_top1_svm_loss(logits, targets, alpha, tau);
}

ClamGatedAttentionImpl::ClamGatedAttentionImpl(int64_t dim, int64_t hidden_dim,
                                               int64_t branch_count, bool dropout) {
  attention_a = torch::nn::Sequential(torch::nn::Linear(dim, hidden_dim), torch::nn::Tanh());
  attention_b = torch::nn::Sequential(torch::nn::Linear(dim, hidden_dim), torch::nn::Sigmoid());
  if (dropout) {
    attention_a->push_back(FastDropout(0.25));
    attention_b->push_back(FastDropout(0.25));
  }
  attention_c = torch::nn::Linear(hidden_dim, branch_count);
  register_module("attention_a", attention_a);
  register_module("attention_b", attention_b);
  register_module("attention_c", attention_c);
}

at::Tensor ClamGatedAttentionImpl::forward(const at::Tensor& h) {
  return attention_c->forward(attention_a->forward(h) * attention_b->forward(h));
}

ClamImpl::ClamImpl(ClamOptions options_) : options(std::move(options_)) {
  TORCH_CHECK(options.input_dim() > 0 && options.class_count() > 1,
              "Clam needs input_dim > 0 and class_count > 1, got ", options.input_dim(), " and ",
              options.class_count());
  TORCH_CHECK(options.dropout() >= 0.0 && options.dropout() < 1.0,
              "Clam dropout must be in [0, 1), got ", options.dropout());
  TORCH_CHECK(options.k_sample() > 0, "Clam k_sample must be > 0, got ", options.k_sample());
  TORCH_CHECK(options.aux_alpha() >= 0.0, "Clam aux_alpha must be >= 0, got ", options.aux_alpha());
  const int64_t d = options.embed_dim();
  const int64_t branches = options.multi_branch() ? options.class_count() : 1;
  attention_net =
      embedding_block(options.input_dim(), d, options.activation(), options.dropout(), "Clam");
  attention_net->push_back(
      ClamGatedAttention(d, options.attention_dim(), branches, options.dropout() > 0.0));
  register_module("attention_net", attention_net);
  if (options.multi_branch()) {
    classifiers = torch::nn::ModuleList();
    for (int64_t c = 0; c < options.class_count(); ++c)
      classifiers->push_back(torch::nn::Linear(d, 1));
    register_module("classifiers", classifiers);
  } else {
    classifier = torch::nn::Linear(d, options.class_count());
    register_module("classifiers", classifier);
  }
  instance_classifiers = torch::nn::ModuleList();
  for (int64_t c = 0; c < options.class_count(); ++c)
    instance_classifiers->push_back(torch::nn::Linear(d, 2));
  register_module("instance_classifiers", instance_classifiers);
  instance_loss_fn = register_module("instance_loss_fn", SmoothTop1Svm(2));
  reset_parameters();
}

void ClamImpl::reset_parameters() { xavier_normal_linears(*this); }

MilOutput ClamImpl::forward(const at::Tensor& bag) {
  TORCH_CHECK(bag.dim() == 2, "Clam expects [N, D] bag features, got ", bag.sizes());
  TORCH_CHECK(bag.size(1) == options.input_dim(), "Clam expects D = ", options.input_dim(),
              ", got ", bag.sizes());
  TORCH_CHECK(bag.size(0) > 0, "Clam needs at least one instance");
  const std::size_t last = attention_net->size() - 1;
  const at::Tensor h = forward_sequential_prefix(attention_net, bag, last);  // [N, d]
  const at::Tensor attention_logits =
      attention_net->ptr<ClamGatedAttentionImpl>(last)->forward(h);  // [N, K]
  const at::Tensor attention = attention_logits.t().softmax(1);      // [K, N]
  const at::Tensor pooled = attention.mm(h);                         // [K, d]
  MilOutput out;
  if (options.multi_branch()) {
    std::vector<at::Tensor> per_class;
    for (int64_t c = 0; c < options.class_count(); ++c) {
      per_class.push_back(
          classifiers->ptr<torch::nn::LinearImpl>(c)->forward(pooled.slice(0, c, c + 1)));
    }
    out.logits = at::cat(per_class, 1);  // [1, C]
    out.instance_scores = attention.index_select(0, out.logits.detach().argmax(1)).squeeze(0);
  } else {
    out.logits = classifier->forward(pooled);  // [1, C]
    out.instance_scores = attention.squeeze(0);
  }
  out.embedding = pooled.reshape({1, -1});
  out.instance_embeddings = h;
  out.class_attention = attention;
  return out;
}

at::Tensor ClamImpl::auxiliary_loss(const MilOutput& output, int64_t label) {
  if (options.aux_alpha() == 0.0) return {};
  TORCH_CHECK(output.class_attention.defined() && output.instance_embeddings.defined(),
              "Clam auxiliary_loss needs this model's forward output (class_attention and "
              "instance_embeddings)");
  TORCH_CHECK(label >= 0 && label < options.class_count(), "Clam auxiliary_loss: label ", label,
              " is not in [0, ", options.class_count(), ")");
  const at::Tensor& h = output.instance_embeddings;
  const at::Tensor row = output.class_attention[options.multi_branch() ? label : 0];  // [N]
  const int64_t k = std::min<int64_t>(options.k_sample(), row.size(0));
  const at::Tensor top = std::get<1>(row.topk(k));
  const at::Tensor bottom = std::get<1>(row.neg().topk(k));
  const at::Tensor instances =
      at::cat({h.index_select(0, top), h.index_select(0, bottom)}, 0);  // [2k, d]
  const auto long_options = at::TensorOptions().dtype(at::kLong).device(h.device());
  const at::Tensor targets = at::cat({at::ones({k}, long_options), at::zeros({k}, long_options)});
  const auto classifier = instance_classifiers->ptr<torch::nn::LinearImpl>(label);
  // After a bf16-autocast forward the embeddings are bf16, and this runs outside autocast: use the
  // weights' dtype.
  const at::Tensor logits = classifier->forward(instances.to(classifier->weight.scalar_type()));
  return options.aux_alpha() * instance_loss_fn->forward(logits, targets);
}

ClamOptions clam_options_from_json(const nlohmann::json& j, int64_t input_dim, int64_t class_count,
                                   bool multi_branch) {
  const std::string ctx =
      std::string("model '") + (multi_branch ? "clam_mb" : "clam_sb") + "'.options";
  require_known_keys(j, model_info(multi_branch ? "clam_mb" : "clam_sb").option_keys, ctx);
  ClamOptions o(input_dim, class_count);
  o.multi_branch(multi_branch);
  if (auto x = model_option<int64_t>(j, "embed_dim", ctx)) o.embed_dim(*x);
  if (auto x = model_option<int64_t>(j, "attention_dim", ctx)) o.attention_dim(*x);
  if (auto x = model_option<double>(j, "dropout", ctx)) o.dropout(*x);
  if (auto x = model_option<std::string>(j, "activation", ctx)) o.activation(*x);
  if (auto x = model_option<int64_t>(j, "k_sample", ctx)) o.k_sample(*x);
  if (auto x = model_option<double>(j, "aux_alpha", ctx)) o.aux_alpha(*x);
  return o;
}

}  // namespace mil
