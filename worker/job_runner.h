#pragma once
// Runs one job (one fold of one config with one seed) in this process. Never throws: a failure of
// any stage becomes a JobResult with status "failed" and the error with its stage, so one bad job
// never takes down the sweep.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <c10/core/Device.h>

#include "mil/core/specs.h"
#include "worker/job_progress.h"

// Declared here, defined in mil: this header stays free of LibTorch's tensor and module headers,
// so the supervision, heartbeat and CLI files that only start jobs do not parse them.
namespace mil {
struct BagDataset;
struct EpochRecord;
class GradientSync;
}  // namespace mil

namespace mil::worker {

/// How the job runs; none of this changes what it computes.
struct RunOptions {
  int rank = -1;  ///< MPI rank running it, recorded in the result (-1 = none).
  std::function<void(const std::string&)> log;  ///< Progress lines; may be empty.
  /// Folder for this job's files: checkpoint.pt (resumed when present; removed once the job is
  /// done), model_best.pt, epochs.jsonl and config.json (the resolved spec). Empty = no files, no
  /// resume.
  std::string work_dir;
  int checkpoint_every = 1;  ///< Epochs between checkpoints.
  const std::atomic<bool>* stop_requested =
      nullptr;  ///< Set by SIGTERM: checkpoint and return "interrupted".
  /// Called after every epoch with the job's progress (for progress bars); may be empty.
  std::function<void(const EpochRecord& record, int epochs)> on_epoch;
  /// Where the model trains (CPU, or a CUDA device); recorded in the result.
  c10::Device device = c10::kCPU;
  /// Data-parallel group of this job (every rank calls run_job with the same spec); null = alone.
  /// Only its rank 0 writes the work dir's files; a rank that fails aborts the group so peers do
  /// not hang.
  GradientSync* sync = nullptr;
  /// Called when a stage starts and after every training bag (so a hung computation stops calling
  /// it); may be empty. Must be cheap: rate-limit anything costly inside.
  std::function<void(const JobProgress& progress)> on_progress;
};

/// Keeps the most recently used datasets of a worker in memory, so the folds of one benchmark load
/// their bags once. Not thread-safe; one per worker.
class DatasetCache {
 public:
  explicit DatasetCache(std::size_t capacity = 2) : capacity_(capacity) {}
  /// The dataset for `spec` and `repetition`, loaded on first use.
  std::shared_ptr<const BagDataset> get(const DatasetSpec& spec, int repetition);

 private:
  std::size_t capacity_;
  std::uint64_t clock_ = 0;
  std::map<std::string, std::pair<std::uint64_t, std::shared_ptr<const BagDataset>>> entries_;
};

/// Loads data, splits, trains and evaluates `spec`; returns its result, never throws. Status is
/// "ok", "failed" (with the stage and cause in `error`), or "interrupted" (stop requested; rerun to
/// resume).
JobResult run_job(const JobSpec& spec, const RunOptions& options, DatasetCache& cache);

}  // namespace mil::worker
