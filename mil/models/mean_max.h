#pragma once
// Instance-level baselines as the reference's `modules/mean_max.py` (`--model meanmil` / `maxmil`):
// every instance goes through Linear(D, 512) + activation + Dropout + Linear(512, C), and the bag
// logits are the mean (MeanMIL) or the element-wise max (MaxMIL) of the instance logits over the
// bag. Parameter names match the reference: head.0.* and head.3.* (head.2.* without dropout).
#include <string>

#include <torch/arg.h>
#include <torch/nn/modules/container/sequential.h>

#include "mil/models/mil_model.h"

namespace mil {

struct MeanMaxMilOptions {
  MeanMaxMilOptions(int64_t input_dim, int64_t class_count)
      : input_dim_(input_dim), class_count_(class_count) {}
  /// D, the width of each input instance feature.
  TORCH_ARG(int64_t, input_dim);
  /// C, the number of bag classes.
  TORCH_ARG(int64_t, class_count);
  /// "mean" (MeanMIL) or "max" (MaxMIL): how instance logits become bag logits.
  TORCH_ARG(std::string, pooling) = "mean";
  /// Width of the per-instance hidden layer (the reference's fixed 512).
  TORCH_ARG(int64_t, hidden_dim) = 512;
  /// Dropout after the hidden activation; 0 removes it. (The reference hard-codes 0.25 when
  /// non-zero.)
  TORCH_ARG(double, dropout) = 0.25;
  /// Hidden activation: "gelu" (the reference YAML) or "relu".
  TORCH_ARG(std::string, activation) = "gelu";
};

class MeanMaxMilImpl : public MilModelImpl {
 public:
  explicit MeanMaxMilImpl(MeanMaxMilOptions options);
  /// bag [N, D] -> logits [1, C], instance_logits [N, C], instance_embeddings [N, 512] (the hidden
  /// layer), instance_scores [N] = each instance's share of the pooling (mean: 1/N; max: the
  /// fraction of classes whose maximum it holds; both sum to 1). embedding [1, 512] is the mean
  /// hidden vector for MeanMIL (the bag logits are exactly its classification) and undefined for
  /// MaxMIL.
  MilOutput forward(const at::Tensor& bag) override;
  /// Xavier-normal weights and zero biases, as the reference's initialize_weights.
  void reset_parameters();

  MeanMaxMilOptions options;
  torch::nn::Sequential head{nullptr};
};
TORCH_MODULE(MeanMaxMil);

/// Reads MeanMaxMilOptions fields (hidden_dim, dropout, activation) from a ModelSpec options object
/// (unknown keys are errors); `pooling` is "mean" for meanmil and "max" for maxmil.
MeanMaxMilOptions mean_max_mil_options_from_json(const nlohmann::json& options, int64_t input_dim,
                                                 int64_t class_count, const std::string& pooling);

}  // namespace mil
