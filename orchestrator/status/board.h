#pragma once
// What rank 0 knows about a running sweep, for people watching it: job states, running jobs with
// their progress, worker health, throughput and ETA. Pure (no MPI, no sockets) and thread-safe: the
// orchestrator loop writes, the status server and the progress line read snapshots copied under a
// mutex. Time comes from an injectable clock so tests are exact.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mil/core/specs.h"

namespace mil::orch {

/// Wall-clock source of a StatusBoard; tests inject a fake one.
using StatusClock = std::function<std::chrono::system_clock::time_point()>;

/// How a StatusBoard judges time.
struct StatusBoardOptions {
  std::string sweep_name;  ///< Shown in the snapshot and the page title.
  /// A worker not heard from (request, result or heartbeat) for longer than this is "stale".
  double stale_after_s = 300.0;
  /// Whether worker ranks send heartbeats while they train. false: a busy worker that has never
  /// reported progress is not judged stale (without heartbeats it is silent until its result);
  /// true: every worker not heard from for stale_after_s is. Set it once kHeartbeat messages exist.
  bool expect_heartbeats = false;
  /// Window of the recent throughput, which the ETA prefers over the whole-sweep throughput.
  double recent_window_s = 900.0;
  StatusClock clock;  ///< Empty: std::chrono::system_clock::now.
};

/// What the board shows of one job.
struct StatusJobInfo {
  std::string id;          ///< Job id (JobSpec::id()).
  std::string method;      ///< model.method, else model.name.
  std::string dataset;     ///< dataset.name.
  int fold = 0;            ///< split.fold_index.
  std::uint64_t seed = 0;  ///< JobSpec::seed.
};

/// The StatusJobInfo of `spec`.
StatusJobInfo status_job_info(const JobSpec& spec);

/// Jobs per state. Every job of the sweep is in exactly one state, so the eight add up to `total`.
struct StatusCounts {
  std::size_t total = 0;    ///< Jobs in the sweep.
  std::size_t pending = 0;  ///< Not started, or interrupted (a rerun resumes them).
  std::size_t running = 0;  ///< Held by a worker.
  std::size_t done = 0;     ///< Finished ok in this run.
  std::size_t failed =
      0;  ///< Finished failed in this run (including jobs whose dependency failed).
  std::size_t quarantined = 0;  ///< Given up on after repeated crashes.
  std::size_t skipped = 0;      ///< Done by an earlier run (a result on disk); not run again.
  std::size_t committing =
      0;                   ///< Reported by its worker (now free); its result is not durable yet.
  std::size_t pruned = 0;  ///< Never run: successive halving stopped its grid point on validation.
};

/// The small part of a snapshot: what the progress line shows.
struct StatusSummary {
  StatusCounts counts;
  double uptime_s = 0.0;  ///< Since the board was created.
  /// Jobs finished in this run (ok, failed or quarantined) per hour of uptime; unset before the
  /// first.
  std::optional<double> sweep_jobs_per_h;
  /// Jobs finished in the last min(recent_window_s, uptime) seconds, per hour; unset when none.
  std::optional<double> recent_jobs_per_h;
  /// Seconds until pending + running jobs are done at the recent rate (else the sweep rate): 0 when
  /// nothing remains, unset while no rate is known.
  std::optional<double> eta_s;
};

/// An immutable copy of the board: the summary and the whole JSON document of GET /status.json.
struct StatusSnapshot {
  StatusSummary summary;
  nlohmann::json json;  ///< See StatusBoard::snapshot() for its shape.
};

/// The live status of one sweep. Every method may be called from any thread and never throws
/// (a call about an unknown job or rank adds it), so feeding the board cannot break the scheduler.
class StatusBoard {
 public:
  explicit StatusBoard(StatusBoardOptions options = {});

  /// The jobs of the sweep, in order; those in `already_done` are "skipped", the rest "pending".
  /// Call once before the others; a second call replaces the job list.
  void sweep_started(const std::vector<StatusJobInfo>& jobs,
                     const std::set<std::string>& already_done);
  /// `job_id` now runs on worker `rank` (also after a retry: any earlier state is replaced).
  void job_assigned(const std::string& job_id, int rank);
  /// Progress of a running job after epoch `epoch` of `epochs` (1-based), with the worker's
  /// estimate of the seconds left (negative: unknown). Counts as a sign of life of the job's
  /// worker.
  void job_progress(const std::string& job_id, int epoch, int epochs, double eta_s);
  /// The worker of `job_id` reported its result, which rank 0 is making durable: the worker is free
  /// (it counts the job as finished by it), the job shows as "committing" until job_finished().
  void job_reported(const std::string& job_id);
  /// A job ended: status "ok" -> done, "failed" -> failed, "quarantined" -> quarantined,
  /// "interrupted" (stopped with a checkpoint), "retry" (failed, requeued for another attempt) or
  /// "returned" (taken ahead and given back unstarted) -> pending again, "pruned" (never runs:
  /// schedule/pruning.h) -> pruned; anything else counts as failed. `error` is kept for failures.
  void job_finished(const std::string& job_id, const std::string& status, const std::string& error);
  /// Worker `rank` on `host` (empty: keep the host known) was heard from now.
  void worker_seen(int rank, const std::string& host);
  /// Worker `rank` was told to stop; it is never "stale" after that.
  void worker_stopped(int rank);

  /// Counts, throughput and ETA at the clock's now.
  StatusSummary summary() const;
  /// Everything at the clock's now. JSON shape:
  // clang-format off
  ///   {"sweep": {"name", "started_at" (ISO 8601 UTC), "now", "uptime_s", "phase"},  phase "starting"
  ///                                                  until sweep_started() lists the jobs, then "running"
  ///    "counts": {"total", "pending", "running", "committing", "done", "failed", "quarantined", "skipped"},
  ///    "progress": {"finished", "fraction"},            finished = done+skipped+failed+quarantined;
  ///                                                    fraction 0 while starting
  ///    "throughput": {"sweep_jobs_per_h", "recent_jobs_per_h", "recent_window_s"},   null = unknown
  ///    "eta_s": number | null,
  ///    "running": [{"job_id", "method", "dataset", "fold", "seed", "rank", "host", "started_at",
  ///                 "elapsed_s", "epoch", "epochs", "eta_s"}],     epoch/epochs/eta_s null until a heartbeat
  ///    "workers": [{"rank", "host", "state" (idle|busy|stale|stopped), "last_seen_age_s", "job_id"
  ///                 (null when idle), "jobs_finished"}],
  ///    "failures": [{"job_id", "status", "error", "method", "dataset", "fold", "seed"}],
  ///    "jobs": [{"id", "state", "method", "dataset", "fold", "seed"}]}           in sweep order
  // clang-format on
  StatusSnapshot snapshot() const;

 private:
  using TimePoint = std::chrono::system_clock::time_point;
  enum class State {
    kPending,
    kRunning,
    kDone,
    kFailed,
    kQuarantined,
    kSkipped,
    kCommitting,
    kPruned
  };
  struct Job {
    StatusJobInfo info;
    State state = State::kPending;
    int rank = -1;                ///< Worker holding it while running.
    TimePoint started{};          ///< When it was last assigned.
    int epoch = -1, epochs = -1;  ///< Last progress; -1 unknown.
    double eta_s = -1.0;          ///< Last progress; negative unknown.
    std::string status, error;    ///< Last finish.
  };
  struct Worker {
    std::string host;
    TimePoint last_seen{};
    std::string job_id;  ///< Empty when idle.
    bool stopped = false;
    bool reported_progress = false;  ///< Has sent progress (a heartbeat) at least once.
    std::size_t jobs_finished = 0;
  };

  TimePoint now() const;
  /// Index of `job_id` in jobs_, adding an entry for an unknown id. Caller holds mutex_.
  std::size_t job_index(const std::string& job_id);
  /// Caller holds mutex_.
  StatusSummary summary_locked(TimePoint now) const;
  /// `job` no longer occupies its worker (the worker is seen at `t` and counts it as finished by it
  /// when it `ran` there); the job's rank is cleared. Caller holds mutex_.
  void leave_worker_locked(Job& job, TimePoint t, bool ran);

  StatusBoardOptions options_;
  TimePoint started_;
  mutable std::mutex mutex_;
  std::vector<Job> jobs_;                     ///< In sweep order.
  std::map<std::string, std::size_t> index_;  ///< Job id -> index into jobs_.
  std::map<int, Worker> workers_;             ///< By rank.
  std::vector<TimePoint> finish_times_;       ///< Of jobs finished in this run, ascending.
  bool listed_ = false;                       ///< sweep_started() was called.
};

/// The text of GET /status.json: `snapshot.json` compact, with invalid UTF-8 (say, a Latin-1 file
/// name in an error) replaced by U+FFFD instead of throwing.
std::string to_status_json(const StatusSnapshot& snapshot);

/// "[#####.....] 12/40 done · 2 running · 1 failed · 30 jobs/h · ETA 5m": the bar fills with the
/// finished share (done, skipped, failed, quarantined); "done" counts done and skipped; "failed"
/// and "quarantined" appear when nonzero; rate and ETA read "?" while unknown. `bar_width` >= 1.
std::string format_progress_line(const StatusSummary& summary, int bar_width = 10);

/// A duration for people: "45s", "5m", "2h 05m", "3d 04h"; "?" for negative or non-finite seconds.
std::string format_duration(double seconds);

}  // namespace mil::orch
