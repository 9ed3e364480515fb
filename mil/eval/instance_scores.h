#pragma once
// Per-instance scores of a trained model, in the three forms a heatmap can show:
//  - attention: the model's own instance scores (MilOutput::instance_scores: softmax attention for
//    ABMIL-style models, TransMIL's class-token attention averaged over heads);
//  - class-aware: MHIM's class-aware instance probability (the reference's attn2score) for one
//    class: softmax over classes of W·(a_i h_i) + b, the bag classifier applied to the instance's
//    contribution to the pooled embedding; where a model classifies instances itself (DSMIL,
//    mean/max pooling) the softmax of its instance logits. The reference's teacher takes the max
//    over classes, which scores a confident negative as high as a confident positive; a picture
//    needs the class it shows, so here it is one class's probability;
//  - logit: the class's logit of the instance alone: the model's instance logits where it has
//    them, else the bag classifier applied to the instance's embedding (ABMIL-style models; for
//    MHIM's TransMIL-style aggregator, to its contribution).
#include <string>

#include <ATen/core/Tensor.h>

#include "mil/models/mil_model.h"

namespace mil {

/// Which per-instance score to compute.
enum class ScoreKind { kAttention, kClassAware, kLogit };

/// "attention", "class-aware" or "logit"; throws std::invalid_argument listing them otherwise.
ScoreKind parse_score_kind(const std::string& name);
/// The name parse_score_kind reads.
std::string score_kind_name(ScoreKind kind);

/// A bag through a model in eval mode.
struct ScoredBag {
  at::Tensor logits;  ///< [1, C] bag logits.
  /// [N] float64 per-instance scores of the requested kind; undefined for attention scores of a
  /// model that gives none.
  at::Tensor scores;
};

/// Runs `model` (which must be in eval mode, under no-grad) on `features` [N, D] and computes
/// `kind` scores for class `target_class`. Throws std::invalid_argument naming the model and the
/// kinds it supports when it cannot give `kind`.
ScoredBag score_instances(MilModelImpl& model, const at::Tensor& features, ScoreKind kind,
                          int64_t target_class);

}  // namespace mil
