#pragma once
// Runs one job (one fold of one config with one seed) in this process. Never throws: a failure of any
// stage becomes a JobResult with status "failed" and the error with its stage, so one bad job never
// takes down the sweep.
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "mil/bag_dataset.h"
#include "mil/specs.h"

namespace mil::worker {

/// How the job runs; none of this changes what it computes.
struct RunOptions {
  int rank = -1;                                  ///< MPI rank running it, recorded in the result (-1 = none).
  std::function<void(const std::string&)> log;    ///< Progress lines; may be empty.
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

/// Loads data, splits, trains and evaluates `spec`; returns its result (ok or failed, never throws).
JobResult run_job(const JobSpec& spec, const RunOptions& options, DatasetCache& cache);

}  // namespace mil::worker
