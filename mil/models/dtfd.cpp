#include "mil/models/dtfd.h"

#include <vector>

#include <ATen/ATen.h>
#include <torch/nn/modules/activation.h>

#include "mil/core/model_catalog.h"
#include "mil/models/model_init.h"
#include "mil/models/model_options.h"

namespace mil {

DtfdAttentionImpl::DtfdAttentionImpl(int64_t dim, int64_t hidden_dim) {
  attention_V = torch::nn::Sequential(torch::nn::Linear(dim, hidden_dim), torch::nn::Tanh());
  attention_U = torch::nn::Sequential(torch::nn::Linear(dim, hidden_dim), torch::nn::Sigmoid());
  attention_weights = torch::nn::Linear(hidden_dim, 1);
  register_module("attention_V", attention_V);
  register_module("attention_U", attention_U);
  register_module("attention_weights", attention_weights);
}

at::Tensor DtfdAttentionImpl::forward(const at::Tensor& x) {
  return attention_weights->forward(attention_V->forward(x) * attention_U->forward(x)).squeeze(1);
}

DtfdClassifierImpl::DtfdClassifierImpl(int64_t dim, int64_t class_count, double dropout_p) {
  dropout = FastDropout(dropout_p);
  fc = torch::nn::Linear(dim, class_count);
  register_module("dropout", dropout);
  register_module("fc", fc);
}

at::Tensor DtfdClassifierImpl::forward(const at::Tensor& x) {
  return fc->forward(dropout->forward(x));
}

DtfdDimReductionImpl::DtfdDimReductionImpl(int64_t input_dim, int64_t dim,
                                           const std::string& activation, double dropout) {
  fc1 = torch::nn::Linear(torch::nn::LinearOptions(input_dim, dim).bias(false));
  TORCH_CHECK(activation == "relu" || activation == "gelu",
              "Dtfd activation must be relu or gelu, got '", activation, "'");
  activation_and_dropout = torch::nn::Sequential();
  if (activation == "relu") {
    activation_and_dropout->push_back(torch::nn::ReLU());
  } else {
    activation_and_dropout->push_back(torch::nn::GELU());
  }
  if (dropout > 0.0) activation_and_dropout->push_back(FastDropout(dropout));
  register_module("fc1", fc1);
  register_module("activation_and_dropout", activation_and_dropout);
}

at::Tensor DtfdDimReductionImpl::forward(const at::Tensor& x) {
  return activation_and_dropout->forward(fc1->forward(x));
}

DtfdAttentionClassifierImpl::DtfdAttentionClassifierImpl(int64_t dim, int64_t hidden_dim,
                                                         int64_t class_count, double dropout) {
  attention = register_module("attention", DtfdAttention(dim, hidden_dim));
  classifier = register_module("classifier", DtfdClassifier(dim, class_count, dropout));
}

DtfdImpl::DtfdImpl(DtfdOptions options_) : options(std::move(options_)) {
  TORCH_CHECK(options.input_dim() > 0 && options.class_count() > 1,
              "Dtfd needs input_dim > 0 and class_count > 1, got ", options.input_dim(), " and ",
              options.class_count());
  TORCH_CHECK(options.dropout() >= 0.0 && options.dropout() < 1.0,
              "Dtfd dropout must be in [0, 1), got ", options.dropout());
  TORCH_CHECK(options.pseudo_bag_count() > 0, "Dtfd pseudo_bag_count must be > 0, got ",
              options.pseudo_bag_count());
  const int64_t d = options.embed_dim();
  classifier =
      register_module("classifier", DtfdClassifier(d, options.class_count(), options.dropout()));
  attention = register_module("attention", DtfdAttention(d, options.attention_dim()));
  dim_reduction = register_module(
      "dimReduction",
      DtfdDimReduction(options.input_dim(), d, options.activation(), options.dropout()));
  u_classifier = register_module(
      "UClassifier", DtfdAttentionClassifier(d, options.attention_dim(), options.class_count(),
                                             options.dropout()));
  reset_parameters();
}

void DtfdImpl::reset_parameters() { xavier_normal_linears(*this); }

MilOutput DtfdImpl::forward(const at::Tensor& bag) {
  TORCH_CHECK(bag.dim() == 2, "Dtfd expects [N, D] bag features, got ", bag.sizes());
  TORCH_CHECK(bag.size(1) == options.input_dim(), "Dtfd expects D = ", options.input_dim(),
              ", got ", bag.sizes());
  TORCH_CHECK(bag.size(0) > 0, "Dtfd needs at least one instance");
  const int64_t n = bag.size(0);
  const int64_t groups = options.pseudo_bag_count();
  const at::Tensor h = dim_reduction->forward(bag);           // [N, d]
  const at::Tensor attention_logits = attention->forward(h);  // [N]
  // Tier 1: numpy array_split boundaries; softmax within each pseudo-bag; attention-weighted sum
  // (AFS).
  std::vector<at::Tensor> pseudo_features;
  std::vector<at::Tensor> tier1_weights;
  std::vector<int64_t> sizes;
  int64_t start = 0;
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t size = n / groups + (g < n % groups ? 1 : 0);
    const at::Tensor weights = attention_logits.slice(0, start, start + size).softmax(0);  // [size]
    pseudo_features.push_back(
        weights.unsqueeze(0).mm(h.slice(0, start, start + size)));  // [1, d]; zeros if empty
    tier1_weights.push_back(weights);
    sizes.push_back(size);
    start += size;
  }
  const at::Tensor pseudo = at::cat(pseudo_features, 0);  // [G, d]
  // Tier 2: gated attention over the pseudo-features, pooling, classifier.
  const at::Tensor tier2_weights = u_classifier->attention->forward(pseudo).softmax(0);  // [G]
  const at::Tensor embedding = tier2_weights.unsqueeze(0).mm(pseudo);                    // [1, d]
  MilOutput out;
  out.logits = u_classifier->classifier->forward(embedding);
  const at::Tensor group_of_instance =
      at::repeat_interleave(at::tensor(sizes, at::TensorOptions().dtype(at::kLong)))
          .to(tier2_weights.device());  // [N]
  out.instance_scores =
      at::cat(tier1_weights, 0) * tier2_weights.index_select(0, group_of_instance);
  out.embedding = embedding;
  out.instance_embeddings = h;
  return out;
}

DtfdOptions dtfd_options_from_json(const nlohmann::json& j, int64_t input_dim,
                                   int64_t class_count) {
  const std::string ctx = "model 'dtfd'.options";
  require_known_keys(j, model_info("dtfd").option_keys, ctx);
  DtfdOptions o(input_dim, class_count);
  if (auto x = model_option<int64_t>(j, "embed_dim", ctx)) o.embed_dim(*x);
  if (auto x = model_option<int64_t>(j, "attention_dim", ctx)) o.attention_dim(*x);
  if (auto x = model_option<int64_t>(j, "pseudo_bag_count", ctx)) o.pseudo_bag_count(*x);
  if (auto x = model_option<double>(j, "dropout", ctx)) o.dropout(*x);
  if (auto x = model_option<std::string>(j, "activation", ctx)) o.activation(*x);
  return o;
}

}  // namespace mil
