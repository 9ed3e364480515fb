#pragma once
// How long a sweep's jobs took against what the scheduler predicted for them: per (dataset,
// method), the sum of runtime.predicted_s (recorded by rank 0 or the array worker when the job
// finished; see orchestrator/schedule/sweep_costs.h) beside the sum of the time each job took
// (actual_seconds). The leaderboard shows it below the results, so a user sees whether `mhim plan`
// can be trusted for the next sweep on the same machines.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mil/core/specs.h"

namespace mil::orch {

/// One (dataset, method) group's ok jobs.
struct RunTimeLine {
  std::string dataset;      ///< Dataset name.
  std::string method;       ///< Method label (model name unless the sweep set one).
  int jobs = 0;             ///< Ok jobs with a measured time.
  int predicted_jobs = 0;   ///< Of those, jobs with a recorded prediction.
  double predicted_s = 0;   ///< Sum of the predictions of the predicted jobs.
  double actual_s = 0;      ///< Sum of the measured seconds of the predicted jobs.
  double all_actual_s = 0;  ///< Sum of the measured seconds of every job of the group.
};

/// Groups the ok results with a measured time by (dataset, method), sorted by dataset then method.
std::vector<RunTimeLine> run_time_lines(const std::vector<JobResult>& results);

/// A Markdown section ("## Run time: predicted vs actual") with one row per line and a total; empty
/// when no result has a measured time.
std::string run_time_markdown(const std::vector<RunTimeLine>& lines);

void to_json(nlohmann::json& j, const RunTimeLine& line);

}  // namespace mil::orch
