#pragma once
// ABMIL (Ilse et al. 2018) as the reference's `modules/abmil.py::DAttention`: instance embedding
// Linear(D, 512) + activation + Dropout, tanh attention Linear(512, 128) -> Linear(128, 1), softmax
// over instances, attention pooling, Linear(512, C). Parameter names match the reference's
// state_dict: feature.0.{weight,bias}, attention.0.*, attention.2.*, classifier.*.
#include <string>

#include <torch/arg.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>

#include "mil/models/mil_model.h"

namespace mil {

struct AbmilOptions {
  AbmilOptions(int64_t input_dim, int64_t class_count)
      : input_dim_(input_dim), class_count_(class_count) {}
  /// D, the width of each input instance feature.
  TORCH_ARG(int64_t, input_dim);
  /// C, the number of bag classes.
  TORCH_ARG(int64_t, class_count);
  /// Width of the instance embedding and of the bag embedding (the reference's inner_dim).
  TORCH_ARG(int64_t, embed_dim) = 512;
  /// Hidden width of the attention network (the reference's D).
  TORCH_ARG(int64_t, attention_dim) = 128;
  /// Dropout after the instance embedding; 0 removes it. (The reference hard-codes 0.25 when
  /// non-zero.)
  TORCH_ARG(double, dropout) = 0.25;
  /// Embedding activation: "gelu" (the reference YAML's choice) or "relu".
  TORCH_ARG(std::string, activation) = "gelu";
};

class AbmilImpl : public MilModelImpl {
 public:
  explicit AbmilImpl(AbmilOptions options);
  /// bag [N, D] -> logits [1, C], attention weights [N] (sum 1), embedding [1, embed_dim].
  MilOutput forward(const at::Tensor& bag) override;
  /// Xavier-normal weights and zero biases, as the reference's initialize_weights.
  void reset_parameters();

  AbmilOptions options;
  torch::nn::Sequential feature{nullptr};
  torch::nn::Sequential attention{nullptr};
  torch::nn::Linear classifier{nullptr};
};
TORCH_MODULE(Abmil);

/// Reads AbmilOptions fields from a ModelSpec options object (unknown keys are errors).
AbmilOptions abmil_options_from_json(const nlohmann::json& options, int64_t input_dim,
                                     int64_t class_count);

}  // namespace mil
