#pragma once
// The cost model as `mhim sweep`, `mhim sweep --array` and `mhim plan` build it: the catalogue's
// cost table, the device and threads the jobs run with, and optionally dataset sizes from the
// stand-in profiles (for planning sweeps whose data is not on this machine).
#include <string>
#include <vector>

#include "mil/core/specs.h"
#include "orchestrator/schedule/cost_model.h"
#include "orchestrator/schedule/scheduler.h"
#include "orchestrator/schedule/sweep_costs.h"

namespace mil::app {

/// Where dataset sizes come from.
struct SizeSource {
  /// > 0: a dataset whose root holds no label file and whose name is a stand-in of `mhim synth
  /// --all` (e.g. "camelyon-r50") is sized from the stand-in profile at this scale (1 = the real
  /// cohort's counts), without writing anything.
  double stand_in_scale = 0;
};

/// The cost model for jobs on `context.device` with `context.threads` threads; a cuda context
/// without a speed-up gets orch::kAssumedCudaSpeedup.
orch::CostModel make_cost_model(const orch::RunContext& context, const SizeSource& sizes = {});

/// The sweep's jobs with dependencies (teacher baselines) and costs = critical-path priorities of
/// the calibrated predictions; `costs` receives the predictions. `finished` are the results already
/// in the results folder (calibration).
std::vector<orch::ScheduledJob> costed_jobs(const std::vector<JobSpec>& jobs,
                                            const orch::CostModel& model,
                                            const std::vector<JobResult>& finished,
                                            std::unique_ptr<orch::SweepCosts>& costs);

/// LibTorch threads a worker rank uses when the sweep does not say (app/common.cpp's rule).
int default_worker_threads(int ranks_on_node);

}  // namespace mil::app
