#pragma once
// The one interface every aggregator implements. Models are built by mil/models/model_registry.h.
#include <memory>

#include <torch/nn/module.h>

#include "mil/core/specs.h"

namespace mil {

/// What a MIL forward pass returns for one bag: what training needs and what MHIM scores instances
/// by.
struct MilOutput {
  at::Tensor logits;           ///< [1, C] bag logits.
  at::Tensor instance_scores;  ///< [N] per-instance scores (attention weights for ABMIL), summing
                               ///< to 1 where softmaxed.
  at::Tensor embedding;        ///< [1, d] bag embedding fed to the classifier.
  at::Tensor instance_embeddings;  ///< [N, d] the embeddings that were pooled, where the model has
                                   ///< them; else undefined.
  at::Tensor instance_logits;  ///< [N, C] per-instance class logits (DSMIL, mean/max pooling); else
                               ///< undefined.
  /// [K, N] one softmax-over-instances attention row per branch (CLAM_SB: K = 1; CLAM_MB and DSMIL:
  /// K = C, row c for class c), for losses that pick instances by a class's attention; else
  /// undefined.
  at::Tensor class_attention;
};

/// Base of every aggregator: a torch::nn::Module whose forward takes one bag [N, D].
class MilModelImpl : public torch::nn::Module {
 public:
  /// One bag of instance features [N, D] -> logits, instance scores and embedding.
  virtual MilOutput forward(const at::Tensor& bag) = 0;
  /// Model-specific training loss added to the task loss (DSMIL's max-instance cross-entropy,
  /// CLAM's instance clustering loss), already weighted by the model's own option; undefined when
  /// the model has none. `output` is this model's forward on the bag, `label` the bag's class
  /// (survival: its time bin).
  virtual at::Tensor auxiliary_loss(const MilOutput& output, int64_t label) { return {}; }
};

/// Number of trainable parameters (elements), for checks against the reference's counts.
int64_t count_trainable_parameters(const torch::nn::Module& module);

}  // namespace mil
