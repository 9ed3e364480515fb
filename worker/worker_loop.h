#pragma once
// The loop a worker rank runs during a sweep: ask rank 0 for a job, run it, send the result, repeat
// until told to stop (protocol.h).
#include <atomic>
#include <functional>
#include <string>

#include <mpi.h>

namespace mil::worker {

/// Runs jobs from the orchestrator on `comm` until it sends kStop. Returns the number of jobs run.
/// `log` receives progress lines and may be empty. Each job keeps its checkpoint and best model in
/// `<work_root>/<job id>/` (none when work_root is empty), so a rerun resumes a job that was killed.
/// Once `stop_requested` is set, the running job checkpoints and reports "interrupted", and the
/// worker tells rank 0 it is stopping instead of asking for more work.
int run_worker(MPI_Comm comm, const std::function<void(const std::string&)>& log, const std::string& work_root,
               const std::atomic<bool>* stop_requested = nullptr);

}  // namespace mil::worker
