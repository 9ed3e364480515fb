#pragma once
// The one interface every aggregator implements, and the factory that builds one from a ModelSpec.
#include <memory>

#include <torch/nn/module.h>

#include "mil/specs.h"

namespace mil {

/// What a MIL forward pass returns for one bag: what training needs and what MHIM scores instances by.
struct MilOutput {
  at::Tensor logits;           ///< [1, C] bag logits.
  at::Tensor instance_scores;  ///< [N] per-instance scores (attention weights for ABMIL), summing to 1 where softmaxed.
  at::Tensor embedding;        ///< [1, d] bag embedding fed to the classifier.
};

/// Base of every aggregator: a torch::nn::Module whose forward takes one bag [N, D].
class MilModelImpl : public torch::nn::Module {
 public:
  /// One bag of instance features [N, D] -> logits, instance scores and embedding.
  virtual MilOutput forward(const at::Tensor& bag) = 0;
};

/// Builds the model `spec.name` for inputs of `input_dim` and `class_count` outputs. Unknown names or
/// options are errors naming them.
std::shared_ptr<MilModelImpl> make_model(const ModelSpec& spec, int64_t input_dim, int64_t class_count);

/// Number of trainable parameters (elements), for checks against the reference's counts.
int64_t count_trainable_parameters(const torch::nn::Module& module);

}  // namespace mil
