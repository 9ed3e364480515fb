#pragma once
// MHIM's `attn` aggregator (the reference's DAttention wrapping Attention, in
// modules/mhim_modules/baseline.py): bias-free Linear(d, 128) + activation + Linear(128, 1),
// softmax over instances, attention pooling. Keys: attention.attention.0.weight,
// attention.attention.2.weight.
#include <string>

#include <torch/arg.h>
#include <torch/nn/modules/container/sequential.h>

#include "mil/mhim/aggregator.h"

namespace mil {

struct MhimAttentionOptions {
  explicit MhimAttentionOptions(int64_t dim) : dim_(dim) {}
  /// d, the width of the instance embeddings.
  TORCH_ARG(int64_t, dim);
  /// Hidden width of the attention network (the reference's fixed D = 128).
  TORCH_ARG(int64_t, attention_dim) = 128;
  /// Activation between the two attention layers (`--da_act`): "relu" (reference default), "gelu",
  /// "tanh".
  TORCH_ARG(std::string, activation) = "relu";
};

/// The inner `Attention` module, so parameter names nest as the reference's
/// (`attention.attention.*`).
class MhimAttentionInnerImpl : public torch::nn::Module {
 public:
  explicit MhimAttentionInnerImpl(const MhimAttentionOptions& options);
  torch::nn::Sequential attention{nullptr};
};
TORCH_MODULE(MhimAttentionInner);

class MhimAttentionImpl : public MhimAggregatorImpl {
 public:
  explicit MhimAttentionImpl(MhimAttentionOptions options);
  /// instances [N, d] -> embedding [1, d]; with scores: attention [N] (softmax) and contributions
  /// a_i·h_i.
  AggregatorOutput forward(const at::Tensor& instances, bool want_scores) override;

  MhimAttentionOptions options;
  MhimAttentionInner attention{nullptr};
};
TORCH_MODULE(MhimAttention);

}  // namespace mil
