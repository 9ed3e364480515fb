#pragma once
// The aggregators MHIM wraps (the reference's `online_encoder`, from
// modules/mhim_modules/baseline.py): each pools a sequence of 512-d instance embeddings into a bag
// embedding and, on request, says how much each instance mattered, in the two forms MHIM scores
// instances by (raw attention, or the per-instance contributions that the class-aware score of
// modules/mhim_modules/scoring.py classifies).
#include <memory>
#include <string>

#include <torch/nn/module.h>
#include <nlohmann/json_fwd.hpp>

namespace mil {

/// One aggregator pass over a bag's instance embeddings.
struct AggregatorOutput {
  /// [1, d] bag embedding (ABMIL: attention-pooled; TransMIL: LayerNorm-ed class token). DSMIL: [1,
  /// C, d], its per-class bag representation B.
  at::Tensor embedding;
  /// [1, C] logits when the aggregator classifies by itself (DSMIL: 0.5·bag + 0.5·max-instance
  /// logits); undefined when MHIM's predictor turns `embedding` into logits.
  at::Tensor logits;
  /// Only when scores were requested. The v1 instance scores: [N] (ABMIL softmax attention, DSMIL)
  /// or [H, N] (TransMIL layer-1 class-token attention of every head).
  at::Tensor attention;
  /// Only when scores were requested, for the class-aware score: [N, d] per-instance contributions
  /// that MHIM passes through its predictor (ABMIL a_i·h_i; TransMIL to_out(concat_h
  /// A[h,i]·V[h,i,:])). DSMIL leaves it undefined and fills `instance_logits`.
  at::Tensor contributions;
  /// [N, C] instance-classifier logits (DSMIL); undefined otherwise.
  at::Tensor instance_logits;
};

/// Base of the MHIM aggregators. Parameter names below this module match the reference's
/// `online_encoder.*` keys so teacher checkpoints move both ways.
class MhimAggregatorImpl : public torch::nn::Module {
 public:
  /// instances [N, d] -> output; `want_scores` fills `attention` and
  /// `contributions`/`instance_logits`.
  virtual AggregatorOutput forward(const at::Tensor& instances, bool want_scores) = 0;
};

/// Builds the reference aggregator `name` ("attn", "selfattn", "dsmil") for embeddings of width
/// `dim` and `class_count` classes; `options` holds its own keys (unknown keys are errors).
std::shared_ptr<MhimAggregatorImpl> make_mhim_aggregator(const std::string& name, int64_t dim,
                                                         int64_t class_count,
                                                         const nlohmann::json& options);

}  // namespace mil
