#include "mil/models/abmil.h"

#include <torch/nn/modules/activation.h>

#include "mil/models/model_init.h"

namespace mil {

AbmilImpl::AbmilImpl(AbmilOptions options_) : options(std::move(options_)) {
  TORCH_CHECK(options.input_dim() > 0 && options.class_count() > 1,
              "Abmil needs input_dim > 0 and class_count > 1, got ", options.input_dim(), " and ",
              options.class_count());
  TORCH_CHECK(options.dropout() >= 0.0 && options.dropout() < 1.0,
              "Abmil dropout must be in [0, 1), got ", options.dropout());
  feature = embedding_block(options.input_dim(), options.embed_dim(), options.activation(),
                            options.dropout(), "Abmil");
  attention =
      torch::nn::Sequential(torch::nn::Linear(options.embed_dim(), options.attention_dim()),
                            torch::nn::Tanh(), torch::nn::Linear(options.attention_dim(), 1));
  classifier = torch::nn::Linear(options.embed_dim(), options.class_count());
  register_module("feature", feature);
  register_module("attention", attention);
  register_module("classifier", classifier);
  reset_parameters();
}

void AbmilImpl::reset_parameters() { xavier_normal_linears(*this); }

MilOutput AbmilImpl::forward(const at::Tensor& bag) {
  TORCH_CHECK(bag.dim() == 2, "Abmil expects [N, D] bag features, got ", bag.sizes());
  TORCH_CHECK(bag.size(1) == options.input_dim(), "Abmil expects D = ", options.input_dim(),
              ", got ", bag.sizes());
  TORCH_CHECK(bag.size(0) > 0, "Abmil needs at least one instance");
  const at::Tensor h = feature->forward(bag);                              // [N, d]
  const at::Tensor weights = attention->forward(h).squeeze(1).softmax(0);  // [N]
  const at::Tensor embedding = weights.unsqueeze(0).mm(h);                 // [1, d]
  return MilOutput{classifier->forward(embedding), weights, embedding};
}

AbmilOptions abmil_options_from_json(const nlohmann::json& j, int64_t input_dim,
                                     int64_t class_count) {
  return attention_options_from_json(j, AbmilOptions(input_dim, class_count), "abmil");
}

}  // namespace mil
