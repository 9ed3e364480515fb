#pragma once
// A test hook for the supervision and hang tests; never set in real runs.

#include "mil/specs.h"
#include "worker/job_runner.h"

namespace mil::worker {

/// Reads MHIM_TEST_FAULT, a comma-separated list of "abort:<dataset>" (a job on that dataset aborts once
/// training starts) and "hang:<dataset>" (it stops making progress, and so stops beating). Called from
/// a job's progress hook, in `mhim train` children and in worker ranks that run jobs in-process.
void inject_test_fault(const JobSpec& spec, const JobProgress& progress);

}  // namespace mil::worker
