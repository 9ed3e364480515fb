#pragma once
// Gated ABMIL (Ilse et al. 2018) as the reference's `modules/abmil.py::AttentionGated` (`--model
// gabmil`): instance embedding Linear(D, 512) + activation + Dropout, then a = tanh(Linear(512,
// 384)), b = sigmoid(Linear(512, 384)) (each followed by Dropout(0.25) when dropout is on),
// attention Linear(384, 1)(a * b), softmax over instances, pooling, Linear(512, C). Parameter names
// match the reference: feature.0.*, attention_a.0.*, attention_b.0.*, attention_c.*,
// classifier.0.*.
#include <string>

#include <torch/arg.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>

#include "mil/models/mil_model.h"

namespace mil {

struct GatedAbmilOptions {
  GatedAbmilOptions(int64_t input_dim, int64_t class_count)
      : input_dim_(input_dim), class_count_(class_count) {}
  /// D, the width of each input instance feature.
  TORCH_ARG(int64_t, input_dim);
  /// C, the number of bag classes.
  TORCH_ARG(int64_t, class_count);
  /// Width of the instance and bag embeddings (the reference's inner_dim L).
  TORCH_ARG(int64_t, embed_dim) = 512;
  /// Width of the two gate branches (the reference's D = 384).
  TORCH_ARG(int64_t, attention_dim) = 384;
  /// Dropout after the embedding; when non-zero the gate branches also drop 0.25, as the reference.
  TORCH_ARG(double, dropout) = 0.25;
  /// Embedding activation: "gelu" (the reference YAML) or "relu".
  TORCH_ARG(std::string, activation) = "gelu";
};

class GatedAbmilImpl : public MilModelImpl {
 public:
  explicit GatedAbmilImpl(GatedAbmilOptions options);
  /// bag [N, D] -> logits [1, C], attention weights [N] (sum 1), embedding [1, embed_dim].
  MilOutput forward(const at::Tensor& bag) override;
  /// Xavier-normal weights and zero biases, as the reference's initialize_weights.
  void reset_parameters();

  GatedAbmilOptions options;
  torch::nn::Sequential feature{nullptr};
  torch::nn::Sequential attention_a{nullptr};
  torch::nn::Sequential attention_b{nullptr};
  torch::nn::Linear attention_c{nullptr};
  torch::nn::Sequential classifier{nullptr};
};
TORCH_MODULE(GatedAbmil);

/// Reads GatedAbmilOptions fields from a ModelSpec options object (unknown keys are errors).
GatedAbmilOptions gated_abmil_options_from_json(const nlohmann::json& options, int64_t input_dim,
                                                int64_t class_count);

}  // namespace mil
