#pragma once
// Predicted run time and device memory of a job before it runs, from what is known without reading
// a feature: the dataset's bag and instance counts (probe_dataset), the job's epochs, split and
// precision, and the measured cost of one instance through its model (the cost table of the model
// catalogue). The scheduler hands out jobs longest-predicted-first with these seconds; `mhim plan`
// simulates a cluster with them; the calibrator (cost_calibrator.h) corrects them from finished
// jobs.
//
//   seconds = overhead + epochs x (train instances x train_s + validation instances x eval_s)
//             + (train + validation + test instances) x eval_s          (the final evaluation)
//   train_s, eval_s: the table's seconds per instance on one thread, divided by the job's threads
//
// Expected epochs: with early stopping on a validation split, a job stops somewhere between the
// first epoch allowed to stop (stop_epoch + 2 epochs run) and `epochs`; the prior is the midpoint,
// which the calibrator replaces with what the sweep's finished jobs did.
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mil/core/specs.h"
#include "orchestrator/schedule/cost_estimate.h"

namespace mil::orch {

/// One row of the cost table: what one instance costs one model on one device at one precision.
struct InstanceCost {
  std::string model;    ///< ModelSpec::name, e.g. "transmil".
  std::string variant;  ///< The MHIM aggregator (options.baseline) of mhim and mhim_pure; else "".
  std::string device;   ///< "cpu" or "cuda".
  std::string precision;  ///< TrainSpec::precision: "fp32" or "bf16".
  double train_s =
      0;  ///< Seconds per instance of a training step (forward, loss, backward, update).
  double eval_s = 0;  ///< Seconds per instance of an evaluation forward pass.
  /// Device bytes per instance of a training step's live tensors (activations and their gradients,
  /// the bag itself included); with the model's weights, what a job's largest bag needs on a GPU.
  double bytes_per_instance = 0;
  bool measured = true;  ///< False for a row derived from another (stated in `source`).
  std::string source;    ///< How it was obtained: the command and machine, or the derivation.
};

/// Where the sweep's jobs run, as far as their run time is concerned.
struct RunContext {
  std::string device = "cpu";  ///< "cpu" or "cuda": which rows of the cost table apply.
  int threads = 1;             ///< LibTorch threads per job (CPU rows scale as 1/threads).
  /// Seconds every job spends outside training and evaluation: its process start, loading its bags
  /// and writing its result.
  double overhead_s = 1.0;
  /// For device "cuda" where the table has no cuda row: the model's cpu row (one thread) divided by
  /// this speed-up, an assumption the prediction's basis states; 0 = no fallback (unknown).
  double cuda_speedup = 0;
};

/// What one job computes, in instances.
struct JobWork {
  double epochs = 0;           ///< Expected epochs (expected_epochs()).
  double train_instances = 0;  ///< Per epoch: instances of the training bags.
  double val_instances = 0;    ///< Per epoch: instances of the validation bags.
  double final_instances =
      0;                   ///< Once: the final evaluation of the train, validation and test bags.
  double largest_bag = 0;  ///< Instances of the largest bag (device memory); 0 when unknown.
};

/// Epochs a job is expected to run: `epochs`, or with early stopping on a validation split
/// (val_ratio > 0 or a split file), the midpoint of [min(epochs, stop_epoch + 2), epochs].
double expected_epochs(const TrainSpec& train, const SplitSpec& split);

/// The work of `job` on a dataset of `size`; nullopt when its bags or instances per bag are
/// unknown. Bags outside the test fold ((k - 1) / k) are split into training and validation by
/// val_ratio.
std::optional<JobWork> job_work(const JobSpec& job, const DatasetSize& size);

/// The cost table's row key of a job: the model name, and for mhim / mhim_pure the aggregator, e.g.
/// "transmil", "mhim:selfattn", "mhim_pure:attn" (the MHIM default aggregator is attn).
std::string cost_key(const ModelSpec& model);

/// A job's prediction.
struct JobPrediction {
  double seconds = 0;       ///< Predicted wall seconds.
  double device_bytes = 0;  ///< Predicted peak device bytes of its largest bag; 0 when unknown.
  /// False when the table has no row for its model, device and precision, or its dataset's size is
  /// unknown: `seconds` is then the fallback (every such job costs the same, so order falls back to
  /// the sweep file's).
  bool known = false;
  std::string basis;  ///< Why: "table" or what was missing.
};

/// Predicts jobs from a cost table, probing each dataset once.
class CostModel {
 public:
  using Probe = std::function<DatasetSize(const DatasetSpec&)>;
  /// `table` rows are looked up by (cost_key model and variant, context.device, precision); `probe`
  /// defaults to probe_dataset (tests and `mhim plan --stand-ins` inject sizes).
  CostModel(std::vector<InstanceCost> table, RunContext context, Probe probe = probe_dataset);

  /// The prediction for `job`.
  JobPrediction predict(const JobSpec& job) const;
  /// The table row for `job`'s model on `device` (default: the context's) and its precision, or
  /// null.
  const InstanceCost* row(const JobSpec& job, const std::string& device = "") const;
  /// The dataset size of `spec` (probed once per distinct dataset spec).
  const DatasetSize& size(const DatasetSpec& spec) const;
  const RunContext& context() const { return context_; }
  const std::vector<InstanceCost>& table() const { return table_; }

 private:
  std::vector<InstanceCost> table_;
  RunContext context_;
  Probe probe_;
  mutable std::map<std::string, DatasetSize> sizes_;  ///< By dataset JSON.
};

/// GPU speed-up over one CPU thread assumed where no cuda row is measured (RunContext::
/// cuda_speedup): it orders a GPU sweep's jobs like the cpu rows do, and the calibrator replaces
/// the absolute scale with what the sweep's first jobs took. Not measured (no GPU was available).
constexpr double kAssumedCudaSpeedup = 100;

/// Seconds assumed for a job the table cannot predict: one hour, so that unknown jobs go first (a
/// wrong guess that they are long costs less at the end of a sweep than one that they are short).
constexpr double kUnknownJobSeconds = 3600.0;

/// Device bytes every job needs besides its bags' activations: the CUDA context of its process, its
/// weights, gradients and Adam's two moments (a 2.7 M-parameter model is ~43 MB of those).
constexpr double kJobFixedDeviceBytes = 600e6;

}  // namespace mil::orch
