#pragma once
// A test hook for the supervision and hang tests; never set in real runs.

#include "mil/core/specs.h"
#include "worker/job_progress.h"

namespace mil::worker {

/// Reads MHIM_TEST_FAULT, a comma-separated list of faults for jobs on one dataset, once training
/// starts: "abort:<dataset>" (the process aborts), "hang:<dataset>" (it stops making progress, and
/// so stops beating) and "throw:<dataset>" (the job throws, as a failing forward pass would);
/// "throw@R:<dataset>" throws on MPI rank R only (`rank`, -1 outside a sweep), to fail one member
/// of a group job. Called from a job's progress hook, in `mhim train` children and in worker ranks
/// that run jobs in-process.
void inject_test_fault(const JobSpec& spec, const JobProgress& progress, int rank = -1);

}  // namespace mil::worker
