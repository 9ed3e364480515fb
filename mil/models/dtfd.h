#pragma once
// DTFD-MIL (Zhang et al. 2022) as the reference's `modules/dtfd.py::DTFD` with AFS distillation
// (`--model dtfd`): DimReduction (bias-free Linear(D, 512) + ReLU + Dropout(0.25)); the bag is cut
// into 5 pseudo-bags; tier 1 pools each pseudo-bag with gated attention (V: Linear(512, 128) +
// Tanh, U: Linear(512, 128) + Sigmoid, w: Linear(128, 1)) into one pseudo-feature ("AFS"); tier 2
// pools the 5 pseudo-features with its own gated attention and classifies them (Dropout(0.25) +
// Linear(512, C)). The logits are tier 2's. The tier-1 classifier (`classifier.*`) exists, is
// counted and is saved, but as in the reference it never influences the output or the loss (the
// reference's pseudo-bag loss is commented out), so it receives no gradient.
//
// Pseudo-bags are contiguous index ranges as numpy's array_split makes them (the first N mod 5 get
// one extra instance), in training and in evaluation. The reference uses the same split in training
// but shuffles the instances with Python's global RNG before splitting at test time, which makes
// its test predictions irreproducible; we keep the contiguous split so evaluation is deterministic.
// A bag with fewer than 5 instances has empty pseudo-bags whose pseudo-feature is zero, as in the
// reference.
//
// Parameter names match the reference: classifier.fc.*, attention.attention_{V,U}.0.*,
// attention.attention_weights.*, dimReduction.fc1.weight, UClassifier.attention.*,
// UClassifier.classifier.fc.*.
#include <string>

#include <torch/arg.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>

#include "mil/models/fast_dropout.h"
#include "mil/models/mil_model.h"

namespace mil {

/// DTFD's gated attention (the reference's Attention): x [N, L] -> attention logits [N] (not
/// normalised).
class DtfdAttentionImpl : public torch::nn::Module {
 public:
  DtfdAttentionImpl(int64_t dim, int64_t hidden_dim);
  /// x [N, L] -> attention_weights(attention_V(x) ⊙ attention_U(x)) as [N].
  at::Tensor forward(const at::Tensor& x);

  torch::nn::Sequential attention_V{nullptr};  ///< Capitalised as the reference's key.
  torch::nn::Sequential attention_U{nullptr};  ///< Capitalised as the reference's key.
  torch::nn::Linear attention_weights{nullptr};
};
TORCH_MODULE(DtfdAttention);

/// DTFD's classifier (the reference's Classifier_1fc): Dropout(p) then Linear(L, C).
class DtfdClassifierImpl : public torch::nn::Module {
 public:
  DtfdClassifierImpl(int64_t dim, int64_t class_count, double dropout);
  /// x [M, L] -> logits [M, C].
  at::Tensor forward(const at::Tensor& x);

  FastDropout dropout{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(DtfdClassifier);

/// DTFD's instance embedding (the reference's DimReduction): bias-free Linear + activation +
/// Dropout.
class DtfdDimReductionImpl : public torch::nn::Module {
 public:
  DtfdDimReductionImpl(int64_t input_dim, int64_t dim, const std::string& activation,
                       double dropout);
  /// x [N, D] -> [N, L].
  at::Tensor forward(const at::Tensor& x);

  torch::nn::Linear fc1{nullptr};
  torch::nn::Sequential activation_and_dropout{nullptr};
};
TORCH_MODULE(DtfdDimReduction);

/// Tier 2 (the reference's Attention_with_Classifier): attention pooling of the pseudo-features,
/// then a classifier.
class DtfdAttentionClassifierImpl : public torch::nn::Module {
 public:
  DtfdAttentionClassifierImpl(int64_t dim, int64_t hidden_dim, int64_t class_count, double dropout);

  DtfdAttention attention{nullptr};
  DtfdClassifier classifier{nullptr};
};
TORCH_MODULE(DtfdAttentionClassifier);

struct DtfdOptions {
  DtfdOptions(int64_t input_dim, int64_t class_count)
      : input_dim_(input_dim), class_count_(class_count) {}
  /// D, the width of each input instance feature.
  TORCH_ARG(int64_t, input_dim);
  /// C, the number of bag classes.
  TORCH_ARG(int64_t, class_count);
  /// Width of the reduced instance features (the reference's inner_dim, 512).
  TORCH_ARG(int64_t, embed_dim) = 512;
  /// Hidden width of both gated attentions (the reference's fixed 128).
  TORCH_ARG(int64_t, attention_dim) = 128;
  /// Number of pseudo-bags (the reference's group, 5).
  TORCH_ARG(int64_t, pseudo_bag_count) = 5;
  /// Dropout after the reduction and before both classifiers (the reference hard-codes 0.25); 0
  /// removes it.
  TORCH_ARG(double, dropout) = 0.25;
  /// Reduction activation: "relu" (the reference: its builder does not pass --act) or "gelu".
  TORCH_ARG(std::string, activation) = "relu";
};

class DtfdImpl : public MilModelImpl {
 public:
  explicit DtfdImpl(DtfdOptions options);
  /// bag [N, D] -> logits [1, C] (tier 2), instance_scores [N] = each instance's weight in the
  /// tier-2 embedding (its tier-1 weight within its pseudo-bag times its pseudo-bag's tier-2
  /// weight; sums to 1 when no pseudo-bag is empty), embedding [1, 512] (tier-2 pooled),
  /// instance_embeddings [N, 512].
  MilOutput forward(const at::Tensor& bag) override;
  /// Xavier-normal weights and zero biases for every Linear, as the reference's initialize_weights.
  void reset_parameters();

  DtfdOptions options;
  DtfdClassifier classifier{nullptr};
  DtfdAttention attention{nullptr};
  DtfdDimReduction dim_reduction{nullptr};        ///< Registered as "dimReduction".
  DtfdAttentionClassifier u_classifier{nullptr};  ///< Registered as "UClassifier".
};
TORCH_MODULE(Dtfd);

/// Reads DtfdOptions fields (embed_dim, attention_dim, pseudo_bag_count, dropout, activation) from
/// a ModelSpec options object (unknown keys are errors).
DtfdOptions dtfd_options_from_json(const nlohmann::json& options, int64_t input_dim,
                                   int64_t class_count);

}  // namespace mil
