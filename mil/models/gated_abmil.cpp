#include "mil/models/gated_abmil.h"

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/dropout.h>

#include "mil/models/fast_dropout.h"
#include "mil/models/model_init.h"

namespace mil {

GatedAbmilImpl::GatedAbmilImpl(GatedAbmilOptions options_) : options(std::move(options_)) {
  TORCH_CHECK(options.input_dim() > 0 && options.class_count() > 1,
              "GatedAbmil needs input_dim > 0 and class_count > 1, got ", options.input_dim(),
              " and ", options.class_count());
  TORCH_CHECK(options.dropout() >= 0.0 && options.dropout() < 1.0,
              "GatedAbmil dropout must be in [0, 1), got ", options.dropout());
  feature = embedding_block(options.input_dim(), options.embed_dim(), options.activation(),
                            options.dropout(), "GatedAbmil");
  attention_a = torch::nn::Sequential(
      torch::nn::Linear(options.embed_dim(), options.attention_dim()), torch::nn::Tanh());
  attention_b = torch::nn::Sequential(
      torch::nn::Linear(options.embed_dim(), options.attention_dim()), torch::nn::Sigmoid());
  if (options.dropout() > 0.0) {
    attention_a->push_back(FastDropout(0.25));
    attention_b->push_back(FastDropout(0.25));
  }
  attention_c = torch::nn::Linear(options.attention_dim(), 1);
  classifier = torch::nn::Sequential(torch::nn::Linear(options.embed_dim(), options.class_count()));
  register_module("feature", feature);
  register_module("attention_a", attention_a);
  register_module("attention_b", attention_b);
  register_module("attention_c", attention_c);
  register_module("classifier", classifier);
  reset_parameters();
}

void GatedAbmilImpl::reset_parameters() { xavier_normal_linears(*this); }

MilOutput GatedAbmilImpl::forward(const at::Tensor& bag) {
  TORCH_CHECK(bag.dim() == 2, "GatedAbmil expects [N, D] bag features, got ", bag.sizes());
  TORCH_CHECK(bag.size(1) == options.input_dim(), "GatedAbmil expects D = ", options.input_dim(),
              ", got ", bag.sizes());
  TORCH_CHECK(bag.size(0) > 0, "GatedAbmil needs at least one instance");
  const at::Tensor h = feature->forward(bag);                                    // [N, d]
  const at::Tensor gated = attention_a->forward(h) * attention_b->forward(h);    // [N, 384]
  const at::Tensor weights = attention_c->forward(gated).squeeze(1).softmax(0);  // [N]
  const at::Tensor embedding = weights.unsqueeze(0).mm(h);                       // [1, d]
  return MilOutput{classifier->forward(embedding), weights, embedding};
}

GatedAbmilOptions gated_abmil_options_from_json(const nlohmann::json& j, int64_t input_dim,
                                                int64_t class_count) {
  return attention_options_from_json(j, GatedAbmilOptions(input_dim, class_count), "gabmil");
}

}  // namespace mil
