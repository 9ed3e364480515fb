#pragma once
// The predicted seconds of a sweep's jobs while it runs: the cost model's predictions, corrected by
// the calibrator from the results folder's finished jobs (those of earlier runs at the start, then
// every job as it finishes), and the scheduler priorities they give (priority.h). Rank 0 reports
// each finished job here and re-sorts the scheduler when refresh_due() says the factors moved
// enough; array workers build it once from the results on disk. Pure: no clock, no files.
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include "mil/core/specs.h"
#include "orchestrator/schedule/cost_calibrator.h"
#include "orchestrator/schedule/cost_model.h"
#include "orchestrator/schedule/scheduler.h"

namespace mil::orch {

/// Predictions and priorities of one sweep's jobs.
class SweepCosts {
 public:
  /// Predicts every job of `jobs` (their depends_on decide the priorities) with `model`, and
  /// calibrates with `finished` (ok results of the same results folder, e.g. ResultsStore::
  /// load_all(); others are ignored).
  SweepCosts(const std::vector<ScheduledJob>& jobs, const CostModel& model,
             const std::vector<JobResult>& finished = {});

  /// Uncalibrated prediction of job `index` (parallel to the constructor's jobs).
  const JobPrediction& prediction(std::size_t index) const { return predictions_[index]; }
  /// Calibrated predicted seconds of job `index`.
  double seconds(std::size_t index) const;
  /// Calibrated seconds of every job, in order.
  std::vector<double> all_seconds() const;
  /// Critical-path priorities from all_seconds() (what ScheduledJob::cost should be).
  std::vector<double> priorities() const;
  /// `jobs` (the constructor's) with cost = priorities().
  std::vector<ScheduledJob> prioritized(std::vector<ScheduledJob> jobs) const;
  /// Calibrated seconds of the job with this id; 0 for an unknown id.
  double seconds_of(const std::string& job_id) const;
  /// Predicted device bytes of the job with this id; 0 for an unknown id or an unknown size.
  double device_bytes_of(const std::string& job_id) const;
  /// priorities() of `jobs`, matched by id (for a Scheduler holding the same jobs in any order);
  /// 0 for an id it does not know.
  std::vector<double> priorities_for(const std::vector<ScheduledJob>& jobs) const;

  /// Job `job_id` finished ok after `actual_s` seconds (actual_seconds()); unknown ids are ignored.
  void observe(const std::string& job_id, double actual_s);
  /// True, once, after an observation that brought its group's count to a power of two (1, 2, 4,
  /// ...): early jobs of a group move its factor most, later ones less, so the scheduler is
  /// re-sorted O(log n) times per group, not after every job.
  bool refresh_due();

  /// Observations the calibrator holds.
  const CostCalibrator& calibrator() const { return calibrator_; }

 private:
  /// The calibrator's group of job `index`: its cost key and dataset name.
  std::pair<std::string, std::string> group(std::size_t index) const;

  std::vector<ScheduledJob> jobs_;          ///< As given (ids, dependencies).
  std::vector<JobPrediction> predictions_;  ///< Parallel to jobs_.
  std::map<std::string, std::size_t> index_;
  CostCalibrator calibrator_;
  bool refresh_ = false;
};

/// The predicted seconds of one (dataset, method) group of a sweep.
struct PredictedGroup {
  std::string dataset;  ///< Dataset name.
  std::string method;   ///< Method label (model name unless the sweep set one).
  std::string model;    ///< cost_key() of its first job, e.g. "mhim:selfattn".
  int jobs = 0;         ///< Jobs of the group.
  int unknown = 0;      ///< Jobs the table could not predict (counted at kUnknownJobSeconds).
  double seconds = 0;   ///< Sum of their calibrated predicted seconds.
  double factor = 1;    ///< The calibrator's factor for the group (1 = table only).
  std::string basis;    ///< Why a job is unknown (the first such job's reason); empty when none.
};

/// Groups `jobs` (parallel to `costs`' jobs) by (dataset, method), in first-job order.
std::vector<PredictedGroup> predicted_groups(const std::vector<ScheduledJob>& jobs,
                                             const SweepCosts& costs);

/// A plain-text table of `groups` with the total, for `mhim sweep --dry-run` and `mhim plan`.
std::string format_predicted_groups(const std::vector<PredictedGroup>& groups);

/// Seconds as "1d 02:03:04", "02:03:04" or "12.3 s" (finer than status/board.h's format_duration,
/// for predictions compared with measurements).
std::string format_hms(double seconds);

}  // namespace mil::orch
