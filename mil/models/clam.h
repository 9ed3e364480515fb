#pragma once
// CLAM (Lu et al. 2021) as the reference's `modules/clam.py` (`--model clam_sb` / `clam_mb`):
// instance embedding Linear(D, 512) + activation + Dropout, gated attention (L = 512, D = 256: tanh
// branch and sigmoid branch, each with Dropout(0.25) when dropout is on, then Linear(256, K)),
// softmax over instances, attention pooling. CLAM_SB has K = 1 and one Linear(512, C); CLAM_MB has
// K = C attention branches and one Linear(512, 1) per class fed that class's pooled vector. Both
// carry C instance classifiers Linear(512, 2) trained by the instance loss (auxiliary_loss).
// Parameter names match the reference: attention_net.0.*, attention_net.3.attention_{a,b}.0.*,
// attention_net.3.attention_c.* (index 2 without dropout), classifiers.* (MB: classifiers.<c>.*),
// instance_classifiers.<c>.*, and the loss module's buffer instance_loss_fn.labels.
#include <string>

#include <torch/arg.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>

#include "mil/models/mil_model.h"

namespace mil {

/// The reference's SmoothTop1SVM(n_classes, alpha, tau) loss (modules/topk/svm.py) on logits [M, K]
/// and targets [M] (int64): per row, with x'_j = x_j + alpha·[j != y] - x_y, the smooth loss
/// tau·logsumexp(x'/tau), or the hard hinge max_j x'_j when the top-1 logit exceeds the second by
/// at least tau·ln(1000); the mean over rows.
at::Tensor smooth_top1_svm_loss(const at::Tensor& logits, const at::Tensor& targets,
                                double alpha = 1.0, double tau = 1.0);

/// The reference's instance-loss module SmoothTop1SVM(class_count) as a module:
/// smooth_top1_svm_loss plus the `labels` buffer arange(class_count) that reference CLAM
/// state_dicts carry as instance_loss_fn.labels (kept so checkpoints load strictly both ways; the
/// loss itself does not read it).
class SmoothTop1SvmImpl : public torch::nn::Module {
 public:
  explicit SmoothTop1SvmImpl(int64_t class_count = 2, double alpha = 1.0, double tau = 1.0);
  /// logits [M, class_count], targets [M] (int64) -> the mean loss (a scalar).
  at::Tensor forward(const at::Tensor& logits, const at::Tensor& targets);

  at::Tensor labels;
  double alpha;
  double tau;
};
TORCH_MODULE(SmoothTop1Svm);

/// CLAM's gated attention network (the reference's Attn_Net_Gated): h [N, L] -> attention logits
/// [N, K].
class ClamGatedAttentionImpl : public torch::nn::Module {
 public:
  ClamGatedAttentionImpl(int64_t dim, int64_t hidden_dim, int64_t branch_count, bool dropout);
  /// h [N, L] -> attention_c(attention_a(h) ⊙ attention_b(h)) [N, K].
  at::Tensor forward(const at::Tensor& h);

  torch::nn::Sequential attention_a{nullptr};
  torch::nn::Sequential attention_b{nullptr};
  torch::nn::Linear attention_c{nullptr};
};
TORCH_MODULE(ClamGatedAttention);

struct ClamOptions {
  ClamOptions(int64_t input_dim, int64_t class_count)
      : input_dim_(input_dim), class_count_(class_count) {}
  /// D, the width of each input instance feature.
  TORCH_ARG(int64_t, input_dim);
  /// C, the number of bag classes.
  TORCH_ARG(int64_t, class_count);
  /// false: CLAM_SB (one attention branch); true: CLAM_MB (one attention branch and classifier per
  /// class).
  TORCH_ARG(bool, multi_branch) = false;
  /// Width of the instance embedding (the reference's 512).
  TORCH_ARG(int64_t, embed_dim) = 512;
  /// Width of the two gate branches (the reference's "small" size, 256).
  TORCH_ARG(int64_t, attention_dim) = 256;
  /// Dropout after the embedding (= --dropout); when non-zero the gate branches also drop 0.25, as
  /// the reference.
  TORCH_ARG(double, dropout) = 0.25;
  /// Embedding activation: "gelu" (the reference YAML) or "relu".
  TORCH_ARG(std::string, activation) = "gelu";
  /// Instances taken from each end of the true class's attention for the instance loss (the
  /// reference's k_sample). Bags with fewer instances use all of them at both ends (the reference
  /// crashes there).
  TORCH_ARG(int64_t, k_sample) = 8;
  /// Weight of the instance loss added by auxiliary_loss. The reference's default is 0 (its
  /// --aux_alpha defaults to 0, so its instance classifiers never train); the original CLAM weighs
  /// bag and instance losses 0.7 / 0.3.
  TORCH_ARG(double, aux_alpha) = 0.0;
};

class ClamImpl : public MilModelImpl {
 public:
  explicit ClamImpl(ClamOptions options);
  /// bag [N, D] -> logits [1, C], instance_scores [N] (SB: the attention; MB: the predicted class's
  /// attention; each sums to 1), embedding [1, K·512] (the pooled vectors, class-major for MB),
  /// instance_embeddings [N, 512], class_attention [K, N].
  MilOutput forward(const at::Tensor& bag) override;
  /// aux_alpha · the instance loss (non-subtyping, in-class branch only): the label's instance
  /// classifier on the k_sample highest (target 1) and k_sample lowest (target 0) instances of the
  /// attention row (SB: the only row; MB: the label's row), scored by smooth_top1_svm_loss.
  /// Undefined when aux_alpha is 0.
  at::Tensor auxiliary_loss(const MilOutput& output, int64_t label) override;
  /// Xavier-normal weights and zero biases for every Linear, as the reference's initialize_weights.
  void reset_parameters();

  ClamOptions options;
  /// The embedding Linear + activation (+ Dropout) followed by the gated attention, as one
  /// Sequential.
  torch::nn::Sequential attention_net{nullptr};
  /// CLAM_SB's bag classifier Linear(512, C) (registered as "classifiers"); null for MB.
  torch::nn::Linear classifier{nullptr};
  /// CLAM_MB's per-class bag classifiers Linear(512, 1) (registered as "classifiers"); null for SB.
  torch::nn::ModuleList classifiers{nullptr};
  torch::nn::ModuleList instance_classifiers{nullptr};
  SmoothTop1Svm instance_loss_fn{nullptr};
};
TORCH_MODULE(Clam);

/// Reads ClamOptions fields (embed_dim, attention_dim, dropout, activation, k_sample, aux_alpha)
/// from a ModelSpec options object (unknown keys are errors); `multi_branch` selects clam_mb.
ClamOptions clam_options_from_json(const nlohmann::json& options, int64_t input_dim,
                                   int64_t class_count, bool multi_branch);

}  // namespace mil
