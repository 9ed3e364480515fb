#pragma once
// Rank 0 during a sweep: feeds the pure Scheduler from MPI messages and writes every result once.
#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include <mpi.h>

#include "mil/specs.h"
#include "orchestrator/results_store.h"
#include "orchestrator/status_board.h"

namespace mil::orch {

/// What a sweep run did.
struct SweepOutcome {
  std::size_t jobs = 0;      ///< Jobs in the sweep.
  std::size_t skipped = 0;   ///< Already done by an earlier run (results on disk).
  std::size_t ran_ok = 0;    ///< Run now and succeeded.
  std::size_t failed = 0;    ///< Run now and failed.
  std::size_t interrupted = 0;  ///< Stopped on request with a checkpoint; a rerun resumes them.
  bool stopped = false;      ///< A stop was requested; jobs may remain for a rerun.
};

/// Serves `jobs` to the worker ranks of `comm` (every rank but 0) until all are done or failed, writing
/// each result through `store`, then stops the workers. Jobs with an ok result in `store` are skipped.
/// `logger` receives progress lines and may be empty. Once `stop_requested` is set (SIGTERM/SIGUSR1),
/// no job is handed out any more: running jobs checkpoint and report "interrupted", every worker is
/// stopped, and the outcome says `stopped`. When `board` is set, it is told about the sweep, every
/// assignment, result and worker contact (for the status server and the progress line).
SweepOutcome run_orchestrator(MPI_Comm comm, const std::vector<JobSpec>& jobs, ResultsStore& store,
                              const std::function<void(const std::string&)>& logger,
                              const std::atomic<bool>* stop_requested = nullptr, StatusBoard* board = nullptr);

}  // namespace mil::orch
