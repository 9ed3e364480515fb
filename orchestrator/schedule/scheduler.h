#pragma once
// The pure job state machine of rank 0: pending -> running -> done | failed, with retries.
// No MPI, sockets or clocks inside, so every failure path (a job fails, a worker vanishes) is
// unit-tested by calling the methods in the order the transport would.
//
// Rank groups. A job with ranks R > 1 (data-parallel) runs on R workers at once. Placement is
// strict head-of-line: a worker asking for work is offered the ready pending job that comes first
// in cost order (largest first). When that job needs more workers than are idle, the asking worker
// is held (Assignment kHold: it gets no answer yet) and so are the next ones, until R are held;
// then all R get the job together. A held worker is never given a later, smaller job instead, so
// one-rank jobs cannot starve a group job by always taking the first worker to free up; the price
// is that up to R-1 workers idle while the group forms, for at most the time until enough running
// jobs end. A caller that gives group jobs a higher cost gets them formed first, while every worker
// is idle at the sweep's start (mhim sweep gives every job cost 1: file order). A job whose higher
// cost puts it ahead of the group job while workers are held (a retry, a freed dependent) is served
// first, by the asking worker with as many held workers as it needs.
#include <cstddef>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "mil/core/specs.h"

namespace mil::orch {

/// One job as the scheduler sees it.
struct ScheduledJob {
  JobSpec spec;       ///< What to run.
  std::string id;     ///< spec.id(); the key for complete() and resume.
  double cost = 1.0;  ///< Relative expected run time; larger jobs are handed out first.
  /// Ids of jobs that must finish ok before this one starts (an MHIM job's teacher baseline). A job
  /// whose dependency fails for good fails too, without running.
  std::vector<std::string> depends_on;
  int ranks = 1;  ///< Workers that run it together (spec.train.ranks); >= 1.
  /// Not ready until open(), whatever its dependencies: a later rung of a pruned sweep waits for
  /// the decision on the rung before it (schedule/pruning.h).
  bool gated = false;
};

/// The answer to a worker asking for work.
struct Assignment {
  /// kJob: `group` runs `job`; kWait: ask again later; kStop: no more work; kHold: the worker is
  /// kept idle for a job that needs more workers than are idle now; answer it only when a later
  /// kJob's group names it (or release_held()).
  enum class Kind { kJob, kWait, kStop, kHold };
  Kind kind = Kind::kStop;
  /// Set for kJob; points into the scheduler (stable for its lifetime).
  const ScheduledJob* job = nullptr;
  /// For kJob: the workers that run `job` (job->ranks of them, ascending; the first is the group's
  /// leader, whose report decides the job), the asking worker included. Each must be sent the job.
  std::vector<int> group;
};

/// What became of a job when a worker reported it (Scheduler::complete).
enum class Fate {
  kDone,         ///< Finished ok.
  kRetry,        ///< Failed; back to pending for another attempt.
  kFailed,       ///< Failed on its last attempt, with errors that differ between attempts.
  kQuarantined,  ///< Failed on every one of >= 2 attempts with the same error (error_signature).
  /// Nothing to record: an ok report of a group member that is not the leader (the leader's report
  /// decides the job), or any report of an attempt that already ended (another member failed, was
  /// lost or was stopped first). The worker is free again either way.
  kMember,
};

/// `error` with what varies between runs of the same failure removed: every word holding a '/'
/// (paths) becomes "<path>" and every run of digits "#". Two attempts failed the same way when
/// these are equal.
std::string error_signature(const std::string& error);

/// ScheduledJobs for `specs` with id = spec.id() and cost 1, in the same order.
std::vector<ScheduledJob> scheduled_jobs(const std::vector<JobSpec>& specs);

/// Hands out jobs to workers (any int id): ready jobs (all dependencies done) largest cost first,
/// retrying failures up to max_attempts. next() and complete() take amortised O(1) time outside
/// dependency waits, so no-op sweeps of 100,000 jobs are not quadratic.
class Scheduler {
 public:
  /// Jobs whose id is in `already_done` count as done and are never handed out (resume after a
  /// restart); those in `held_back` (quarantined by an earlier run) count as failed without
  /// running, and their dependents fail too (take_blocked). Throws on duplicate ids in `jobs`, a
  /// non-finite cost, ranks < 1, max_attempts < 1, or a dependency that is neither a job of `jobs`
  /// nor in `already_done`. The caller checks that no job needs more ranks than there are workers
  /// (else its group never forms).
  Scheduler(std::vector<ScheduledJob> jobs, const std::set<std::string>& already_done,
            int max_attempts = 1, const std::set<std::string>& held_back = {});

  /// kJob with the ready pending job of highest cost (ties: original order), now running on
  /// `group` (`worker` and, for a job of R > 1 ranks, R-1 held workers, longest held first); kHold
  /// when that job needs more workers than `worker` and the held ones (see the file comment); kWait
  /// when none is ready but a running job may still finish or be requeued, or a gated job is
  /// pending (the caller must open() or prune() every gated job, else workers wait for ever); else
  /// kStop. Throws if `worker` already holds a job or is held.
  Assignment next(int worker);
  /// Whether a one-rank job may start on the asking worker now (e.g. its predicted device memory
  /// fits beside the jobs running on the worker's GPU); see next(worker, fits).
  using Fits = std::function<bool(const ScheduledJob& job)>;
  /// next(worker), except that a ready one-rank job for which `fits` is false is passed over for
  /// this worker (it waits, keeping its place, until it fits; another worker may take it): kJob
  /// with the first ready job that fits, kWait when ready jobs exist but none fits. A job needing
  /// several workers is placed as by next(worker) (`fits` is not asked). An empty `fits` is
  /// next(worker).
  Assignment next(int worker, const Fits& fits);
  /// Replaces every job's cost (parallel to the jobs given to the constructor) and re-sorts the
  /// order in which ready jobs go out, e.g. after the calibrator learnt from finished jobs. Running
  /// and finished jobs are unaffected. Throws on a size mismatch or a non-finite cost. O(n log n).
  void set_costs(const std::vector<double>& costs);
  /// The jobs in the order given to the constructor (their current costs).
  const std::vector<ScheduledJob>& jobs() const { return jobs_; }
  /// For a worker that asks ahead, while it still runs another job (a different holder id), so that
  /// its next job is in hand when the current one ends: kJob with the job next() would hand out
  /// when that job needs one worker and no worker is held for a group; else kWait. Never holds,
  /// never stops: a worker that is refused asks again with next() once idle.
  Assignment next_ahead(int worker);
  /// Records the report of `worker` on the job it holds and frees the worker. An ok report of a
  /// group job's leader, or a failure (with its `error`) of any member, ends the attempt: done, or
  /// requeued while attempts remain, else failed or quarantined; other reports return kMember.
  /// Throws if `worker` does not hold `job_id`.
  Fate complete(int worker, const std::string& job_id, bool ok, const std::string& error = "");
  /// The job `worker` holds was stopped on request (resumable): back to pending, the attempt not
  /// counted, and true; false (only the worker freed) when its attempt had already ended, e.g.
  /// another member of its group was stopped first. Throws if `worker` does not hold `job_id`.
  bool requeue(int worker, const std::string& job_id);
  /// The worker is gone: it is no longer held, and the attempt it was part of (if any) ends as a
  /// failure: requeued while attempts remain, else failed. The other members of its group stay busy
  /// until they report (kMember).
  void worker_lost(int worker);
  /// Workers held by kHold, longest held first; they are no longer held (e.g. to stop them).
  std::vector<int> release_held();
  /// Workers held by kHold now, longest held first.
  const std::vector<int>& held() const { return held_; }
  /// Errors of the failed attempts of `job_id` so far, in order (empty for an unknown id).
  std::vector<std::string> attempt_errors(const std::string& job_id) const;
  /// Attempts of `job_id` handed out so far (0 for an unknown id).
  int attempts(const std::string& job_id) const;

  /// True when nothing is pending (gated jobs included) and nothing is running.
  bool finished() const;
  /// Jobs waiting to be handed out.
  std::size_t pending_count() const;
  /// Jobs held by a worker.
  std::size_t running_count() const;
  /// Jobs finished ok, including those in `already_done`.
  std::size_t done_count() const;
  /// Jobs that used all their attempts without success (quarantined and held back ones included).
  std::size_t failed_count() const;
  /// Ids of failed jobs (quarantined and held back ones included), in original order.
  std::vector<std::string> failed_ids() const;
  /// Worker -> id of the job it holds (for status reports); every member of a group.
  std::map<int, std::string> running_ids() const;
  /// Lifts the gate of pending job `job_id` (ScheduledJob::gated): it is ready once its
  /// dependencies are done. No-op for a job that is not gated; throws for an unknown id.
  void open(const std::string& job_id);
  /// Pending job `job_id` will never run (halving stopped its grid point): it leaves the sweep
  /// without counting as done or failed, and true. No-op and false for a job that is done, failed
  /// or pruned already; throws for an unknown id, a job that runs, or one that a job neither done
  /// nor pruned depends on.
  bool prune(const std::string& job_id);
  /// Jobs pruned.
  std::size_t pruned_count() const;
  /// Jobs failed because a dependency failed, since the last call: (job, the failed dependency).
  std::vector<std::pair<const ScheduledJob*, std::string>> take_blocked();

 private:
  enum class State { kPending, kRunning, kDone, kFailed, kPruned };

  std::size_t count(State state) const;
  /// True when a gated job is still pending: it may yet be opened, so workers wait instead of
  /// stopping.
  bool gated_pending() const;
  /// The index of `job_id` in jobs_; throws for an unknown id.
  std::size_t index_of(const std::string& job_id) const;
  /// Throws if `worker` holds a job or is held.
  void check_free(int worker) const;
  /// The ready pending job that comes first in cost order, or jobs_.size() when none is ready.
  std::size_t first_ready();
  /// Sorts order_ by cost, descending and stable, and rebuilds position_.
  void sort_order();
  /// Job `index` now runs on `group` (any order; stored ascending).
  Assignment start(std::size_t index, std::vector<int> group);
  /// Moves job `index` to `state`, keeping counts_ and cursor_ current.
  void set_state(std::size_t index, State state);
  /// The index of the job `worker` holds, checked to be `job_id`; removes it from running_.
  std::size_t take_running(int worker, const std::string& job_id);
  /// True when `worker` is a member of the attempt of job `index` that is running now.
  bool in_live_attempt(std::size_t index, int worker) const;
  /// After an unsuccessful attempt: back to pending while attempts remain, else failed.
  Fate release_unsuccessful(std::size_t index, const std::string& error);
  /// True when every dependency of job `index` is done.
  bool ready(std::size_t index) const;
  /// Marks every pending job that depends (transitively) on failed job `index` as failed.
  void block_dependents(std::size_t index);

  /// Never resized after construction, so Assignment::job stays valid.
  std::vector<ScheduledJob> jobs_;
  std::vector<State> states_;                     ///< Parallel to jobs_.
  std::vector<int> attempts_;                     ///< Parallel to jobs_: times handed out.
  std::vector<std::vector<std::string>> errors_;  ///< Parallel to jobs_: errors of failed attempts.
  std::vector<std::size_t> order_;           ///< Indices into jobs_ by cost descending, stable.
  std::vector<std::size_t> position_;        ///< Parallel to jobs_: its place in order_.
  std::size_t cursor_ = 0;                   ///< No pending job sits before this place in order_.
  std::size_t counts_[5] = {0, 0, 0, 0, 0};  ///< Jobs per State.
  std::map<std::string, std::size_t> index_of_;  ///< Job id -> index into jobs_.
  std::map<int, std::size_t>
      running_;  ///< Worker -> index of its job (also after its attempt ended).
  /// Parallel to jobs_: the workers of the running attempt (leader first); empty when none runs.
  std::vector<std::vector<int>> group_;
  std::vector<int> held_;  ///< Workers answered kHold, longest held first.
  std::vector<std::vector<std::size_t>>
      dependents_;  ///< Parallel to jobs_: the jobs that depend on it.
  std::vector<std::vector<std::size_t>>
      dependencies_;  ///< Parallel to jobs_: indices of unfinished dependencies.
  std::vector<std::pair<const ScheduledJob*, std::string>>
      blocked_;  ///< Not yet taken by take_blocked().
  int max_attempts_;
};

}  // namespace mil::orch
