#pragma once
// Array mode: independent processes (Slurm array tasks, or any processes on hosts that share the
// results directory) finish one sweep together with no MPI between them. They coordinate through
// files only:
// clang-format off
//   DIR/locks/<job id>.lock   who runs the job: {"host","pid","token","slurm_*","acquired","heartbeat"}
//   DIR/results/<job id>.json written once (ResultsStore::write_exclusive: link(), never overwrite ok)
//   DIR/journal.jsonl         appended with O_APPEND under flock
// clang-format on
// One claim:
//  1. Scan DIR/results and DIR/locks and replay them into a fresh Scheduler (ok results are done,
//     final failures fail their dependents, live locks are jobs running elsewhere); ask it for a
//     ready job, so dependencies (an MHIM job's teacher baseline) and cost order come from it.
//  2. Create the job's lock: a complete file link()ed into place; link fails when a lock exists.
//  3. Re-read the result (a process may have finished the job between scan and lock). Run the job,
//     refreshing the lock's heartbeat; write the result with write_exclusive; remove the lock.
// A lock is stale when its heartbeat is older than the timeout, its pid is dead on this host, or it
// is an earlier run of this same Slurm job (requeued); a stale lock is re-read and replaced under
// DIR/locks/.takeover (flock), and the job resumes from its checkpoint in DIR/work/<job id>/.
// A failed result is final within one submission (same run id, or written after this process
// started); a later submission retries it, as a rerun of an MPI sweep does.
// A pruning sweep (schedule/pruning.h) is decided again at every scan from the result files, by
// every process alike: a job of a rung not decided yet is gated (wait), a pruned one never runs,
// and the first process to see a job pruned journals it "pruned" (once: under DIR/locks/.prune,
// after reading the journal).
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mil/core/specs.h"
#include "orchestrator/results/store.h"
#include "orchestrator/schedule/pruning.h"
#include "orchestrator/schedule/scheduler.h"

namespace mil::orch {

/// Who holds a lock, as written into it.
struct LockOwner {
  std::string host;          ///< Host name; a dead pid only proves staleness on the same host.
  int pid = 0;               ///< Process id on `host`.
  std::string token;         ///< Random per process: tells apart owners that share host and pid.
  std::string slurm_job_id;  ///< SLURM_JOB_ID (unique per array task), empty outside Slurm.
  std::string slurm_array_job_id;   ///< SLURM_ARRAY_JOB_ID, empty outside an array.
  std::string slurm_array_task_id;  ///< SLURM_ARRAY_TASK_ID.
  std::string slurm_restart_count;  ///< SLURM_RESTART_COUNT: how often this Slurm job was requeued.
};
void to_json(nlohmann::json& j, const LockOwner& o);
void from_json(const nlohmann::json& j, LockOwner& o);

/// This process: host, pid, a fresh random token and the SLURM_* variables of its environment.
LockOwner this_process_owner();

/// The run id of this submission from the environment: SLURM_ARRAY_JOB_ID, else SLURM_JOB_ID, else
/// empty (failures then count as final only when written after this process started).
std::string run_id_from_environment();

/// A lock file's content.
struct LockRecord {
  LockOwner owner;         ///< Who holds it.
  double acquired = 0.0;   ///< Clock seconds when it was created.
  double heartbeat = 0.0;  ///< Clock seconds of the last refresh.
};

/// How a LockQueue behaves; defaults suit a cluster.
struct LockQueueOptions {
  double lock_timeout_s = 600.0;       ///< A lock whose heartbeat is older than this is stale.
  double heartbeat_interval_s = 30.0;  ///< How often a running job refreshes its lock.
  std::chrono::milliseconds poll_interval{2000};  ///< Between scans while jobs run elsewhere.
  /// Wall-clock seconds shared by all hosts (heartbeats are compared across hosts); empty = the
  /// system clock. Tests inject one.
  std::function<double()> clock;
  /// Whether `pid` lives on this host; empty = kill(pid, 0). Tests inject one.
  std::function<bool(int pid)> pid_alive;
  std::string run_id;  ///< This submission (run_id_from_environment()); see the file comment.
  PruneSpec prune;     ///< The sweep's successive halving; off by default.
};

/// Answer to try_claim().
struct Claim {
  Assignment::Kind kind =
      Assignment::Kind::kStop;      ///< kJob: run `job`; kWait: retry later; kStop: all finished.
  std::optional<ScheduledJob> job;  ///< Set for kJob; its lock is held by this queue.
  bool taken_over = false;          ///< kJob: the lock was stale and replaced.
};

/// One process's view of a sweep shared through a results directory. Not thread-safe; one per
/// process (tests run two in one process: their owners differ by token).
class LockQueue {
 public:
  /// Creates DIR/locks. `jobs` come from schedule_with_dependencies(); every process must pass the
  /// same sweep. Throws naming the folder when it cannot be created.
  LockQueue(ResultsStore& store, std::vector<ScheduledJob> jobs, LockOwner owner,
            LockQueueOptions options);

  /// Scans the directory and claims the next ready job (its lock held until release()), or says to
  /// wait (jobs run elsewhere; nothing is ready) or to stop (every job has an ok or final failed
  /// result). Jobs whose dependency failed for good get their failed result written here.
  Claim try_claim();
  /// Rewrites the heartbeat of the lock of `job_id`; false when the lock is no longer ours.
  bool refresh(const std::string& job_id);
  /// Removes the lock of `job_id` if it is still ours.
  void release(const std::string& job_id);
  /// Writes `result` once (ResultsStore::write_exclusive) with runtime.queue = {run_id, owner,
  /// written_at}; false when another process's result stays.
  bool publish(JobResult result);

  /// Jobs with a final failed result at the last scan that returned kStop.
  std::size_t failed_count() const { return failed_count_; }
  /// Jobs pruned at the last scan that returned kStop.
  std::size_t pruned_count() const { return pruned_count_; }
  /// DIR/locks/<job_id>.lock.
  std::string lock_path(const std::string& job_id) const;
  /// The lock of `job_id`, or nothing when there is none (or it vanished while read).
  std::optional<LockRecord> read_lock(const std::string& job_id) const;
  /// Why the lock is stale ("heartbeat 700 s old", "pid 12 is dead", "an earlier run of Slurm job
  /// 7"), or empty when it is live.
  std::string stale_reason(const LockRecord& lock) const;
  /// The owner written into this queue's locks.
  const LockOwner& owner() const { return owner_; }
  /// The options, with the default clock and pid check filled in.
  const LockQueueOptions& options() const { return options_; }

 private:
  /// What the scan knows of one result file.
  struct SeenResult {
    /// The file's last write time (file_clock ticks) and size when it was read: it is read again
    /// when either changes (compared as a pair: any sum of the two can collide, and overflow).
    std::int64_t mtime_ticks = 0;
    std::uintmax_t size = 0;  ///< See mtime_ticks.
    bool ok = false;
    bool final_failure = false;  ///< Failed in this submission (see the file comment).
    double validation = 0.0;     ///< Its validation metric for pruning (NaN when none or not ok).
  };
  double now() const;
  void scan_results();
  /// Creates the lock of `job_id` (link of a complete file); false when one exists.
  bool create_lock(const std::string& job_id);
  /// Replaces the stale lock `seen` of `job_id` under the takeover flock; false when it changed.
  bool take_over(const std::string& job_id, const LockRecord& seen);
  void write_lock_file(const std::string& path, const LockRecord& record) const;
  void write_blocked_results(Scheduler& scheduler);
  /// The scanned results as halving sees them: ok ones, and failures final in this submission.
  std::map<std::string, JobOutcome> prune_outcomes() const;
  /// Journals "pruned" for each of `pruned` that the journal does not say is pruned yet.
  void journal_pruned(const std::vector<PrunedJob>& pruned);

  ResultsStore& store_;
  std::vector<ScheduledJob> jobs_;
  std::set<std::string> job_ids_;
  LockOwner owner_;
  LockQueueOptions options_;
  double started_at_ = 0.0;  ///< clock() at construction.
  std::string locks_dir_;
  std::map<std::string, SeenResult> seen_;  ///< job id -> last scan of its result file.
  std::set<std::string> attempted_;  ///< Jobs this process ran (their failures are final here).
  std::size_t failed_count_ = 0;
  std::size_t pruned_count_ = 0;
  PrunePlan plan_;                          ///< Halving over jobs_ (no brackets when off).
  std::set<std::string> journaled_pruned_;  ///< Pruned jobs known to be journaled so.
};

/// What run_lock_queue() did in this process.
struct LockQueueOutcome {
  std::size_t ran_ok = 0;       ///< Jobs run here that succeeded.
  std::size_t ran_failed = 0;   ///< Jobs run here that failed.
  std::size_t interrupted = 0;  ///< Stopped on request with a checkpoint; released for any process.
  std::size_t lost = 0;         ///< Run here, but another process's result was written first.
  std::size_t failed_total = 0;  ///< Jobs of the sweep with a final failed result at the end.
  std::size_t pruned_total = 0;  ///< Jobs of the sweep pruned at the end (never run).
  bool stopped = false;          ///< A stop was requested; jobs may remain.
};

/// Claims and runs jobs until try_claim() says stop or `stop_requested` is set, refreshing the held
/// lock from a heartbeat thread while `run` works. `run` must not throw (worker::run_job does not);
/// a result with status "interrupted" is journaled, its lock released and the loop ends.
LockQueueOutcome run_lock_queue(LockQueue& queue, ResultsStore& store,
                                const std::function<JobResult(const JobSpec&)>& run,
                                const std::function<void(const std::string&)>& log,
                                const std::atomic<bool>* stop_requested = nullptr);

}  // namespace mil::orch
