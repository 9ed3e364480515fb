#pragma once
// Rank 0 during a sweep: feeds the pure Scheduler from MPI messages and writes every result once.
// run_orchestrator is the whole interface; its state and steps are the class RankZero, private to
// orchestrator_loop.cpp.
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <mpi.h>
#include <nlohmann/json.hpp>

#include "mil/core/specs.h"
#include "orchestrator/results/store.h"
#include "orchestrator/schedule/device_memory.h"
#include "orchestrator/schedule/sweep_costs.h"
#include "orchestrator/schedule/pruning.h"
#include "orchestrator/status/board.h"

namespace mil::orch {

/// What a sweep run did.
struct SweepOutcome {
  std::size_t jobs = 0;     ///< Jobs in the sweep.
  std::size_t skipped = 0;  ///< Already done by an earlier run (results on disk).
  std::size_t ran_ok = 0;   ///< Run now and succeeded.
  std::size_t failed =
      0;  ///< Run now and failed (errors differing between attempts, or a failed dependency).
  std::size_t quarantined = 0;  ///< Run now and failed the same way on every attempt.
  std::size_t held_back =
      0;                    ///< Quarantined by an earlier run and not rerun (no retry_quarantined).
  std::size_t retries = 0;  ///< Failed attempts that were retried.
  std::size_t interrupted = 0;  ///< Stopped on request with a checkpoint; a rerun resumes them.
  std::size_t heartbeats = 0;   ///< kHeartbeat messages received.
  std::size_t given_back =
      0;  ///< Jobs taken ahead and given back unstarted (protocol.h); each ran later.
  /// Jobs halving stopped on validation (OrchestratorOptions::prune), by this run or an earlier
  /// one: they never run, and count as finished.
  std::size_t pruned = 0;
  /// Worker rank -> its latest heartbeat (payload plus "rank" and "seen_at").
  std::map<int, nlohmann::json> last_heartbeat;
  bool stopped = false;  ///< A stop was requested; jobs may remain for a rerun.
  /// A job running inside worker ranks that stopped beating (OrchestratorOptions::hang_timeout):
  /// its ranks cannot be freed while the MPI world lives, so rank 0 stopped at once with everything
  /// it had received durable, and the caller must end the world (MPI_Abort); a rerun retries that
  /// job.
  std::string hung_job;
  std::string hung_error;  ///< What was journaled for it ("hung: no heartbeat ...").
};

/// Attempts per job unless told otherwise: one retry catches a transient failure (a kill by the OOM
/// killer while a neighbour peaked, a lost node) and resumes from the job's last checkpoint, so it
/// is cheap; a second identical failure is evidence enough to quarantine, and each further attempt
/// of a deterministic failure would cost up to a whole job.
constexpr int kDefaultMaxAttempts = 2;

/// How rank 0 runs a sweep. Plain data; the defaults are `mhim sweep` without options.
struct OrchestratorOptions {
  int max_attempts =
      kDefaultMaxAttempts;  ///< Attempts per job (>= 1); 1 = no retries, no quarantine.
  /// Rerun jobs that an earlier run quarantined (`--retry-failed`); otherwise they stay as they
  /// are.
  bool retry_quarantined = false;
  /// Called for every kHeartbeat with the sending rank and its payload plus "rank" and "seen_at"
  /// (UTC); e.g. for a status page. May be empty. Runs on rank 0's loop: keep it quick.
  std::function<void(int rank, const nlohmann::json& heartbeat)> on_heartbeat;
  /// Told about the sweep, every assignment, heartbeat, result and worker contact (the status page
  /// and the progress line); not owned; may be null.
  StatusBoard* board = nullptr;
  /// Jobs that run inside worker ranks (group jobs always; every job with `jobs_in_worker_ranks`)
  /// and send no heartbeat for this long count as hung; zero never does. Such a job cannot be
  /// killed alone: rank 0 journals a "hung" attempt and returns with `hung_job` set. These attempts
  /// count across runs: a job that hung max_attempts times is quarantined when the next run starts,
  /// without running.
  std::chrono::milliseconds hang_timeout{0};
  bool jobs_in_worker_ranks =
      false;  ///< Workers run one-rank jobs in-process too (`mhim sweep --in-process`).
  /// Predicted seconds of `jobs` and their teacher baselines (schedule/sweep_costs.h): jobs go out
  /// by its critical-path priorities, each ok result calibrates it (the scheduler is re-sorted when
  /// refresh_due()), and every result written records its prediction as runtime.predicted_s. Null:
  /// every job costs 1 (file order). Not owned.
  SweepCosts* costs = nullptr;
  /// Keeps a one-rank job waiting while its predicted device memory does not fit beside the jobs on
  /// the asking worker's GPU (workers name their GPU in their requests, protocol.h step 1); workers
  /// of such a sweep are not given jobs ahead. Null: no guard. Not owned.
  DeviceMemoryGuard* device_memory = nullptr;
  /// Successive halving of each (dataset, method)'s grid points on validation (the sweep's `prune`
  /// key); off by default.
  PruneSpec prune;
  /// For tests: called when durable results have just changed halving's decisions, before rank 0
  /// acts on them (opens the next rung, prunes and journals the losers). May be empty.
  std::function<void()> before_pruning;
};

/// Serves `jobs` to the worker ranks of `comm` (every rank but 0) until all are done or failed,
/// writing each result through `store`, then stops the workers. Jobs with an ok result in `store`
/// are skipped. A failed attempt is retried up to options.max_attempts (journal note "retry" with
/// its error); the last failure is written as the job's result, with status "quarantined" when
/// every attempt failed the same way (error_signature). `logger` receives progress lines and may be
/// empty. Once `stop_requested` is set (SIGTERM/SIGUSR1), no job is handed out any more: running
/// jobs checkpoint and report "interrupted", every worker is stopped, and the outcome says
/// `stopped`. A job with train.ranks R > 1 runs on a group of R workers (scheduler.h places it,
/// protocol.h step 2 sends it); throws before handing out anything when a job needs more ranks than
/// there are workers. A job inside worker ranks that stops beating (options.hang_timeout) is
/// journaled "hung" and ends the loop early with `hung_job` set: workers may still be running, and
/// the caller must end the MPI world. With options.prune, halving (schedule/prune_gate.h) holds
/// back each rung until the one before it is decided, from the durable results only, and journals
/// each job it stops "pruned", exactly once across restarts.
SweepOutcome run_orchestrator(MPI_Comm comm, const std::vector<JobSpec>& jobs, ResultsStore& store,
                              const std::function<void(const std::string&)>& logger,
                              const std::atomic<bool>* stop_requested = nullptr,
                              const OrchestratorOptions& options = {});

}  // namespace mil::orch
