#pragma once
// Trains one aggregator on one split as the reference's engines/common_mil.py does: Adam with
// coupled L2, a per-epoch learning-rate schedule, one bag per step, early stopping, best-epoch
// selection on the validation metric, atomic checkpoints (checkpoint.h) for a bit-identical resume.
#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <c10/core/Device.h>

#include "mil/core/specs.h"
#include "mil/data/bag_dataset.h"

namespace mil {

class MilModelImpl;
class GradientSync;

/// Replaces the plain loss of a training bag for frameworks that wrap the model (MHIM's teacher and
/// masking). fit() calls loss() once per training bag in train mode and after_optimizer_step()
/// after every optimizer step; checkpoints carry extra_state() so a resumed run continues exactly.
class TrainingObjective {
 public:
  virtual ~TrainingObjective() = default;
  /// Training loss of `bag`. `step` counts bags over the nominal run (epoch · training bags +
  /// position); `task_loss` maps logits [1, C] to this bag's task loss (cross-entropy or survival
  /// NLL).
  virtual at::Tensor loss(const Bag& bag, int64_t step,
                          const std::function<at::Tensor(const at::Tensor&)>& task_loss) = 0;
  /// After every optimizer step (MHIM: the teacher EMA), with the step of the bag that completed
  /// it.
  virtual void after_optimizer_step(int64_t step) {}
  /// Tensors besides the model's that checkpoints save and resumes restore in place (MHIM: the
  /// teacher).
  virtual std::vector<std::pair<std::string, at::Tensor>> extra_state() { return {}; }
  /// Numbers to add to each epoch's record (e.g. the mean consistency loss); reset after reading.
  virtual std::map<std::string, double> take_epoch_stats() { return {}; }
  /// A second model the objective trains alongside (MHIM: the momentum teacher), or null. fit()
  /// validates it after the student every epoch, keeps its own best epoch by its own validation
  /// metric (strictly better, as the reference), checkpoints that best state and leaves the model
  /// holding it on return. Its tensors must also be in extra_state() so a resume continues it.
  virtual MilModelImpl* teacher_model() { return nullptr; }
  /// Files the objective read besides the data (MHIM: the teacher's checkpoint) as (name, path),
  /// so that a result can record their hashes.
  virtual std::vector<std::pair<std::string, std::string>> input_files() const { return {}; }
};

/// What one training epoch did.
struct EpochRecord {
  int epoch = 0;                    ///< 0-based.
  double mean_loss = 0.0;           ///< Mean task loss over the epoch's finite steps.
  double lr = 0.0;                  ///< Learning rate used in this epoch.
  double seconds = 0.0;             ///< Wall time of the epoch (training and validation).
  double instances_per_second = 0;  ///< Training throughput.
  int skipped_steps = 0;  ///< Bags whose loss was not finite (no gradient taken from them).
  std::map<std::string, double>
      val;  ///< Validation metrics after the epoch; empty without a validation split.
  std::map<std::string, double>
      train_stats;        ///< Objective-specific means (MHIM: consistency loss, kept tokens).
  bool improved = false;  ///< This epoch's weights became the best so far.
  std::map<std::string, double>
      teacher_val;  ///< The objective's teacher_model() on the validation bags; else empty.
  bool teacher_improved = false;  ///< The teacher's weights became its best so far.
};

void to_json(nlohmann::json& j, const EpochRecord& r);
void from_json(const nlohmann::json& j, EpochRecord& r);

/// Model outputs for a set of bags, with what their metrics need.
struct Predictions {
  std::vector<std::vector<double>> probabilities;  ///< [bags][classes], softmax of the logits.
  std::vector<int> labels;
  std::vector<double> risks;  ///< Survival risk -sum(S) of the hazard logits (see survival.h).
  std::vector<double> event_times;  ///< The bags' event times (survival datasets).
  std::vector<int> event_observed;  ///< 1 - censored.
};

/// Metrics of a prediction set: classification_metrics, or {"c_index"} when `survival`.
std::map<std::string, double> evaluate(const Predictions& predictions, bool survival);

/// One optimizer step as FitOptions::on_step sees it.
struct StepReport {
  int epoch = 0;           ///< 0-based.
  int bags_done = 0;       ///< Bags of the epoch trained so far, this step's included.
  int64_t step = 0;        ///< Step index of the step's last bag, as objectives see it.
  double loss = 0.0;       ///< Training loss of the step's last bag (non-finite: skipped).
  double task_loss = NAN;  ///< Its task loss; NaN when an objective computed the loss.
  double auxiliary_loss =
      NAN;  ///< Its model auxiliary_loss (weighted); NaN when none or objective.
};

/// How fit() runs; none of it changes what it computes, except epoch_order, which replaces the
/// seeded shuffle.
struct FitOptions {
  /// Checkpoint file; empty = no checkpoints. An existing checkpoint of the same run is resumed.
  std::string checkpoint_path;
  int checkpoint_every = 1;  ///< Epochs between checkpoints (and always at the end).
  const std::atomic<bool>* stop_requested =
      nullptr;  ///< Set (e.g. by SIGTERM): finish the bag, checkpoint, return.
  std::function<void(const EpochRecord&)> on_epoch;  ///< After every epoch.
  /// After every training bag: (0-based epoch, bags done in it, bags in it). Cheap and frequent;
  /// keep it so (e.g. a heartbeat that rate-limits itself). Not called while validating.
  std::function<void(int epoch, int bags_done, int bags_total)> on_bag;
  /// Identifies the run inside the checkpoint (e.g. the job id); a checkpoint of another run is an
  /// error.
  std::string run_fingerprint;
  /// After every optimizer step, once the objective's after_optimizer_step ran (e.g. to record the
  /// weights a step produced). Gradients are read in on_bag, before the step.
  std::function<void(const StepReport&)> on_step;
  /// The order of the training bags in `epoch` (a permutation of train_indices); null: the seeded
  /// shuffle. For replaying a recorded run.
  std::function<std::vector<int>(int epoch)> epoch_order;
  /// Computes training losses instead of the plain task loss (and the model's auxiliary loss); not
  /// owned.
  TrainingObjective* objective = nullptr;
  /// Where the model (and the objective's tensors) already live; bags are copied there one at a
  /// time. bf16 autocast applies to this device's type.
  c10::Device device = c10::kCPU;
  /// Data-parallel group of this run; null or size 1 = this process alone. Not owned. Every rank
  /// calls fit() with the same arguments (and the same checkpoint path, read by all, written by
  /// rank 0 only). Each optimizer step takes spec.accumulation bags per rank, interleaved over the
  /// epoch's shuffled order, so S ranks compute what one rank computes with accumulation S x
  /// spec.accumulation (bit-identical for S = 2 without dropout: see
  /// GradientSync::allreduce_gradients). Validation is sharded and its predictions summed, so every
  /// rank takes the same early-stopping decision.
  GradientSync* sync = nullptr;
  /// Also return the model's weights after its last epoch (FitResult::last_weights), taken before
  /// the best epoch's are restored: a teacher checkpoint from the end of training.
  bool keep_last_weights = false;
};

/// What fit() did. When a validation split exists the model holds the best epoch's weights on
/// return.
struct FitResult {
  std::vector<EpochRecord> history;  ///< Every epoch, including those before a resume.
  int best_epoch = -1;           ///< Epoch whose weights were kept; -1 = the last (no validation).
  double best_score = 0.0;       ///< Its validation selection metric.
  std::string selection_metric;  ///< "auc" (binary), "balanced_accuracy" (multi-class); empty
                                 ///< without validation.
  bool stopped_early = false;    ///< Early stopping fired.
  bool interrupted = false;  ///< stop_requested was seen; a checkpoint holds the state to resume.
  int resumed_from_epoch = -1;  ///< First epoch run in this call when resuming, else -1.
  int teacher_best_epoch = -1;  ///< The objective's teacher_model(): epoch of the weights it holds
                                ///< on return (-1 = no teacher, no validation, or never above 0).
  double teacher_best_score = 0.0;  ///< Its validation selection metric there.
  /// The teacher's parameters and buffers (PyTorch names) at the epoch whose student weights the
  /// model holds (best_epoch, else the last), as the reference's best student checkpoint holds them
  /// too. Empty without a teacher, when interrupted, or after resuming from a checkpoint written
  /// before this existed with no improvement since.
  std::vector<std::pair<std::string, at::Tensor>> teacher_at_best_epoch;
  /// The model's parameters and buffers after the last epoch run (with keep_last_weights; empty
  /// otherwise or when interrupted).
  std::vector<std::pair<std::string, at::Tensor>> last_weights;
};

/// Learning rate of 0-based `epoch`, as the reference's timm scheduler stepped once per epoch:
/// cosine lr_min + (lr - lr_min)(1 + cos(pi e / epochs)) / 2, linear warm-up from warmup_lr over
/// warmup_epochs, "step" x0.2 from epochs/2, "const" lr.
double learning_rate_at(const TrainSpec& spec, int epoch);

/// The reference's utils.EarlyStopping: the counter resets when score >= best and grows otherwise;
/// it fires when counter >= patience and the 0-based epoch index > stop_epoch.
class EarlyStopping {
 public:
  EarlyStopping(int patience, int stop_epoch) : patience_(patience), stop_epoch_(stop_epoch) {}
  /// Records `score` for `epoch`; returns true when training should stop.
  bool update(int epoch, double score);
  int counter() const { return counter_; }
  double best() const { return best_; }
  /// For checkpoints: restores counter and best.
  void restore(int counter, double best) { counter_ = counter, best_ = best; }

 private:
  int patience_;
  int stop_epoch_;
  int counter_ = 0;
  double best_ = -1e300;
};

/// Seeds LibTorch's default generator (model init, dropout). Call before building the model so that
/// the same seed gives the same initial weights.
void seed_torch(std::uint64_t seed);

/// Trains `model` on `train_indices` of `bags`, validating on `val_indices` (may be empty) after
/// every epoch. Bag order is reshuffled each epoch from `seed`, independently of torch's generator.
/// spec.loss must be resolved ("ce" or "nll_surv"; "auto" is read as "ce").
FitResult fit(MilModelImpl& model, const TrainSpec& spec, const std::vector<Bag>& bags,
              const std::vector<int>& train_indices, const std::vector<int>& val_indices,
              std::uint64_t seed, const FitOptions& options = {});

/// Eval-mode forward of every bag in `indices`, without gradients, on `device` (where the model
/// is).
Predictions predict(MilModelImpl& model, const std::vector<Bag>& bags,
                    const std::vector<int>& indices, c10::Device device = c10::kCPU);
/// predict() over a data-parallel group: each rank runs every size()-th bag of `indices` and the
/// predictions are summed over the group, so every rank returns all of them, in order.
Predictions predict_sharded(MilModelImpl& model, const std::vector<Bag>& bags,
                            const std::vector<int>& indices, c10::Device device,
                            GradientSync* sync);

/// The metric that selects checkpoints and drives early stopping: "c_index" for survival, "auc" for
/// two classes, else "balanced_accuracy" (the reference's macro accuracy).
std::string selection_metric_for(int class_count, bool survival);

}  // namespace mil
