#pragma once
// The order in which the scheduler hands out jobs: longest predicted first (LPT), with every job
// ahead of the jobs that wait on it. A job's priority is the length of the longest chain of work it
// starts: its own predicted seconds plus the largest priority among its dependents (the critical
// path, "highest level first"). A teacher baseline therefore goes out ahead of every job it gates
// and ahead of independent jobs shorter than itself plus its longest MHIM job, and with no
// dependencies the order is plain LPT. Ties keep the sweep file's order (the Scheduler sorts
// stably).
#include <string>
#include <vector>

#include "orchestrator/schedule/scheduler.h"

namespace mil::orch {

/// Per job of `jobs`: seconds[i] plus the largest priority of the jobs whose depends_on names job i
/// (dependencies outside `jobs` are ignored). Throws when the sizes differ or the dependencies form
/// a cycle (naming a job on it).
std::vector<double> critical_path_priorities(const std::vector<ScheduledJob>& jobs,
                                             const std::vector<double>& seconds);

/// Sets every job's cost to its critical_path_priorities() entry.
void prioritize(std::vector<ScheduledJob>& jobs, const std::vector<double>& seconds);

/// The chain of job indices behind the largest priority: the job with the highest priority, then at
/// each step the dependent with the highest priority, down to a job nothing waits on.
std::vector<std::size_t> critical_path(const std::vector<ScheduledJob>& jobs,
                                       const std::vector<double>& priorities);

}  // namespace mil::orch
