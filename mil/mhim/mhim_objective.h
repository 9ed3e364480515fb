#pragma once
// MHIM training (the reference's modules/mhim.py and its `mhim` branch of engines/common_mil.py): a
// momentum teacher scores every instance of the full bag, the student trains on the bag without its
// most salient instances (plus the GRN's recycled tokens), and a consistency loss pulls the
// student's bag embedding toward the teacher's.
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "mil/mhim/masking.h"
#include "mil/mhim/mhim_network.h"
#include "mil/train/trainer.h"

namespace mil {

/// MHIM's training options (the reference's CLI names in parentheses). Defaults follow the v2
/// README.
struct MhimOptions {
  MaskPlan mask;  ///< mask_ratio (v1 random), mask_ratio_l (v1 low), mask_ratio_h, mask_ratio_hr.
  bool mask_ratio_decay =
      false;  ///< (mrh_sche) cosine decay of mask_ratio_h to 0 over the nominal run.
  bool class_aware_scores =
      true;  ///< (attn2score) class-aware instance probability; false: raw attention (v1).
  double temp_t = 0.1;         ///< Teacher temperature of the consistency loss.
  double temp_s = 1.0;         ///< Student temperature (hard-coded 1 in the reference).
  double main_alpha = 1.0;     ///< Weight of the task loss.
  double aux_alpha = 0.5;      ///< Weight of the consistency loss (README 0.5; CLI default 0).
  double momentum = 0.9997;    ///< (mm) teacher EMA momentum.
  bool momentum_ramp = false;  ///< (mm_sche) cosine ramp of the momentum to 1 over the nominal run.
  /// (teacher_init) baseline checkpoint: a .pt file, or a folder holding fold_{k}_model_best.pt;
  /// "random" starts the teacher from the student's init on purpose (the reference falls back to
  /// that silently when loading fails; we fail instead).
  std::string teacher_init;
  /// (ours, off by default) With teacher_init "baseline": "best", the baseline's best validation
  /// epoch (model_best.pt, what the reference's fold_{k}_model_best.pt holds), or "last", its
  /// weights after its last epoch (model_last.pt). Read by the job runner, which finds the file.
  std::string teacher_epoch = "best";
  bool teacher_train_mode =
      true;  ///< The teacher's passes run in train mode (dropout on): a reference quirk we keep.
  std::string student_init =
      "none";  ///< "fc": copy the embedding layer from the teacher checkpoint (v1).
  /// (ours, off by default) Check the teacher's masks against the bags' instance truth
  /// (mil/data/instance_labels.h) and add per-epoch means to the epoch record's train_stats
  /// (mask_* and teacher_auc_*; see MaskTruthStats). Only counts: what the job computes is the same
  /// with it on or off. Bags without truth are not counted.
  bool mask_stats = false;
};

/// What the teacher's masks did to the witnesses over one epoch (mask_stats), summed over the
/// training bags that have instance truth.
struct MaskTruthStats {
  double masked = 0;                 ///< Instances masked in positive bags.
  double masked_witnesses = 0;       ///< Of them, witnesses (hard or easy).
  double hard = 0, masked_hard = 0;  ///< Hard witnesses in positive bags, and masked ones.
  double hard_in_hard_only = 0, masked_hard_in_hard_only = 0;  ///< In bags without easy ones.
  double easy = 0, masked_easy = 0;                            ///< Easy witnesses, and masked ones.
  double hard_only_bags = 0;          ///< Positive bags whose witnesses are all hard.
  double hard_only_bags_emptied = 0;  ///< Of them, bags whose every hard witness was masked.
  double teacher_auc_hard_sum = 0, teacher_auc_easy_sum = 0;  ///< Within-bag AUCs of the scores.
  double teacher_auc_hard_bags = 0, teacher_auc_easy_bags = 0;

  /// Adds one bag: its truth codes [N], the teacher's scores ([N], or [H, N] averaged over heads)
  /// and the masked instances.
  void add(const at::Tensor& codes, const at::Tensor& scores, const std::vector<int64_t>& masked);
  /// The epoch's means: mask_hard_share (share of hard witnesses masked),
  /// mask_hard_share_hard_only, mask_easy_share, mask_witness_precision (share of masked instances
  /// that are witnesses), mask_hard_only_bags_emptied (share of hard-only bags left without any
  /// witness), and teacher_auc_hard / teacher_auc_easy (the teacher's within-bag instance AUC); a
  /// key is left out when nothing defines it.
  std::map<std::string, double> means() const;
};

/// Reads MhimOptions from a `mhim` model's options; network keys (those of `mhim_pure` in the
/// model catalogue) are skipped, a key outside the catalogue entry of `mhim` is an error naming it.
MhimOptions mhim_options_from_json(const nlohmann::json& options);

/// The checkpoint file `teacher_init` names for `fold_index`: the path itself when it ends in
/// ".pt", else `<teacher_init>/fold_{fold_index}_model_best.pt`, or v1's
/// `fold_{fold_index}_model_best_auc.pt` when only that one exists.
std::string teacher_checkpoint_path(const std::string& teacher_init, int fold_index);

/// Loads a baseline checkpoint into an MHIM network (teacher or student), ours or the reference's
/// (v2, or v1 with patch_to_emb.* keys; see from_reference_names): every feature, aggregator and
/// predictor key must be present with its shape; GRN keys (merge.*) may be absent, as in
/// `mhim_pure` checkpoints. Errors name every offending key and the file.
void load_mhim_checkpoint(MhimNetworkImpl& network, const std::string& path);

/// MHIM's random draws in a training step. A null member draws from LibTorch's default generator; a
/// replay of a recorded run sets both.
struct MhimDraws {
  SubsetDraw mask_subset;  ///< The random part of the mask plan (v1 random masking, R-HAM).
  /// The GRN's order of `survivors` instances: a permutation whose leading share is kept.
  std::function<at::Tensor(int64_t survivors)> grn_order;
};

/// What the last loss() call computed.
struct MhimStepRecord {
  double task_loss = 0.0;         ///< Unweighted task loss (cross-entropy or survival NLL).
  double consistency_loss = 0.0;  ///< Unweighted consistency loss; 0 when aux_alpha is 0.
  int64_t instances = 0;          ///< Instances in the bag.
  int64_t student_tokens = 0;     ///< Tokens the student's aggregator saw (survivors, GRN applied).
  std::vector<int64_t> masked;    ///< Masked instance ids, ascending.
};

class MhimObjective : public TrainingObjective {
 public:
  /// Builds the teacher as a copy of `student` (same init), then loads options.teacher_init for
  /// `fold_index` unless it is "random". `total_steps` = epochs × training bags: the horizon of the
  /// mask-ratio and momentum schedules (the nominal run, whatever early stopping does, as the
  /// reference).
  MhimObjective(MhimNetworkImpl& student, MhimOptions options, int fold_index, int64_t total_steps);

  at::Tensor loss(const Bag& bag, int64_t step,
                  const std::function<at::Tensor(const at::Tensor&)>& task_loss) override;
  /// θ_T ← m·θ_T + (1 − m)·θ_S for every parameter pair in registration order (parameters only,
  /// not buffers, as the reference).
  void after_optimizer_step(int64_t step) override;
  std::vector<std::pair<std::string, at::Tensor>> extra_state() override;
  std::map<std::string, double> take_epoch_stats() override;
  /// The teacher, validated every epoch with its own best checkpoint (as the reference's main.py).
  MilModelImpl* teacher_model() override { return teacher_.get(); }
  /// {"teacher_checkpoint", path} when the teacher was loaded from a checkpoint.
  std::vector<std::pair<std::string, std::string>> input_files() const override;

  /// The momentum teacher.
  MhimNetworkImpl& teacher() { return *teacher_; }
  /// Replaces the random draws of later steps (e.g. to replay a recorded run).
  void set_draws(MhimDraws draws) { draws_ = std::move(draws); }
  /// What the last loss() call computed.
  const MhimStepRecord& last_step() const { return last_step_; }
  /// High-mask ratio at `step` (after the optional decay).
  double high_mask_ratio_at(int64_t step) const;
  /// Teacher momentum at `step` (after the optional ramp).
  double momentum_at(int64_t step) const;

 private:
  MhimNetworkImpl& student_;
  MhimOptions options_;
  int64_t total_steps_;
  std::shared_ptr<MhimNetworkImpl> teacher_;
  MhimDraws draws_;
  MhimStepRecord last_step_;
  std::string teacher_checkpoint_;  ///< The file the teacher was loaded from; empty for "random".
  double consistency_sum_ = 0.0;
  double task_sum_ = 0.0;
  double kept_sum_ = 0.0;
  double instance_sum_ = 0.0;
  int64_t bags_ = 0;
  MaskTruthStats mask_truth_;
};

/// Soft-target cross-entropy (modules/mhim_modules/losses.py): mean over rows of
/// Σ_j −softmax(target/temp_t)_j · log_softmax(student/temp_s)_j, rows being the last axis (the 512
/// embedding channels); target detached.
at::Tensor soft_target_cross_entropy(const at::Tensor& student, const at::Tensor& target,
                                     double temp_t, double temp_s);

}  // namespace mil
