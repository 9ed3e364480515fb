#pragma once
// The pure job state machine of rank 0: pending -> running -> done | failed, with retries.
// No MPI, sockets or clocks inside, so every failure path (a job fails, a worker vanishes) is
// unit-tested by calling the methods in the order the transport would.
#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "mil/specs.h"

namespace mil::orch {

/// One job as the scheduler sees it.
struct ScheduledJob {
  JobSpec spec;       ///< What to run.
  std::string id;     ///< spec.id(); the key for complete() and resume.
  double cost = 1.0;  ///< Relative expected run time; larger jobs are handed out first.
  /// Ids of jobs that must finish ok before this one starts (an MHIM job's teacher baseline). A job
  /// whose dependency fails for good fails too, without running.
  std::vector<std::string> depends_on;
};

/// The answer to a worker asking for work.
struct Assignment {
  enum class Kind { kJob, kWait, kStop };
  Kind kind = Kind::kStop;  ///< kJob: run `job`; kWait: ask again later; kStop: no more work.
  /// Set for kJob; points into the scheduler (stable for its lifetime).
  const ScheduledJob* job = nullptr;
};

/// ScheduledJobs for `specs` with id = spec.id() and cost 1, in the same order.
std::vector<ScheduledJob> scheduled_jobs(const std::vector<JobSpec>& specs);

/// Hands out jobs to workers (any int id): ready jobs (all dependencies done) largest cost first,
/// retrying failures up to max_attempts.
class Scheduler {
 public:
  /// Jobs whose id is in `already_done` count as done and are never handed out (resume after a
  /// restart). Throws on duplicate ids in `jobs`, a non-finite cost, max_attempts < 1, or a dependency
  /// that is neither a job of `jobs` nor in `already_done`.
  Scheduler(std::vector<ScheduledJob> jobs, const std::set<std::string>& already_done,
            int max_attempts = 1);

  /// kJob with the ready pending job of highest cost (ties: original order), now running on `worker`;
  /// kWait when none is ready but a running job may still finish or be requeued; else kStop.
  /// Throws if `worker` already holds a job.
  Assignment next(int worker);
  /// Records the outcome of the job `worker` holds; a failure is requeued while attempts remain.
  /// Throws if `worker` does not hold `job_id`.
  void complete(int worker, const std::string& job_id, bool ok);
  /// The worker is gone: its job (if any) is requeued while attempts remain, else failed.
  void worker_lost(int worker);

  /// True when nothing is pending and nothing is running.
  bool finished() const;
  /// Jobs waiting to be handed out.
  std::size_t pending_count() const;
  /// Jobs held by a worker.
  std::size_t running_count() const;
  /// Jobs finished ok, including those in `already_done`.
  std::size_t done_count() const;
  /// Jobs that used all their attempts without success.
  std::size_t failed_count() const;
  /// Ids of failed jobs, in original order.
  std::vector<std::string> failed_ids() const;
  /// Worker -> id of the job it holds (for status reports).
  std::map<int, std::string> running_ids() const;
  /// Jobs failed because a dependency failed, since the last call: (job, the failed dependency).
  std::vector<std::pair<const ScheduledJob*, std::string>> take_blocked();

 private:
  enum class State { kPending, kRunning, kDone, kFailed };

  std::size_t count(State state) const;
  /// After an unsuccessful attempt: back to pending while attempts remain, else failed.
  void release_unsuccessful(std::size_t index);
  /// True when every dependency of job `index` is done.
  bool ready(std::size_t index) const;
  /// Marks every pending job that depends (transitively) on failed job `index` as failed.
  void block_dependents(std::size_t index);

  /// Never resized after construction, so Assignment::job stays valid.
  std::vector<ScheduledJob> jobs_;
  std::vector<State> states_;           ///< Parallel to jobs_.
  std::vector<int> attempts_;           ///< Parallel to jobs_: times handed out.
  std::vector<std::size_t> order_;      ///< Indices into jobs_ by cost descending, stable.
  std::map<int, std::size_t> running_;  ///< Worker -> index of its job.
  std::vector<std::vector<std::size_t>> dependencies_;  ///< Parallel to jobs_: indices of unfinished dependencies.
  std::vector<std::pair<const ScheduledJob*, std::string>> blocked_;  ///< Not yet taken by take_blocked().
  int max_attempts_;
};

}  // namespace mil::orch
