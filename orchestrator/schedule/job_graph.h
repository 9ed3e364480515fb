#pragma once
// Jobs that need other jobs: an MHIM job with teacher_init "baseline" needs the `mhim_pure` job of
// its fold and seed (mil/core/mhim_jobs.h). These functions add the missing baselines to a sweep
// and give the scheduler the dependency edges.
#include <vector>

#include "mil/core/specs.h"
#include "orchestrator/schedule/scheduler.h"

namespace mil::orch {

/// `jobs` with every teacher baseline they need and do not contain, the added baselines first (in
/// the order their dependents appear), then `jobs` unchanged.
std::vector<JobSpec> with_teacher_baselines(const std::vector<JobSpec>& jobs);

/// One ScheduledJob per spec (id = spec.id(), cost 1) with depends_on set to the teacher baseline's
/// id for MHIM jobs that take their teacher from a baseline.
std::vector<ScheduledJob> schedule_with_dependencies(const std::vector<JobSpec>& jobs);

}  // namespace mil::orch
