#include "orchestrator/orchestrator_loop.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>
#include <set>
#include <utility>

#include "comm/job_messages.h"
#include "comm/mpi_env.h"
#include "comm/mpi_transport.h"
#include "mil/core/runtime_info.h"
#include "orchestrator/results/group_commit.h"
#include "orchestrator/schedule/cost_calibrator.h"
#include "orchestrator/schedule/job_graph.h"
#include "orchestrator/schedule/prune_gate.h"
#include "orchestrator/schedule/scheduler.h"

namespace mil::orch {
namespace {

using comm::MsgTag;
using Clock = std::chrono::steady_clock;
using Logger = std::function<void(const std::string&)>;

/// Results read late at most: bounds how long a result may wait while frames keep arriving.
constexpr std::size_t kMaxUnreadResults = 64;
/// kWait's retry_ms when nothing is ready: workers with nothing to run ask again this much later.
constexpr int kWaitRetryMs = 50;
/// kWait's retry_ms while a commit is under way: it takes about one sync, so ask again soon.
constexpr int kCommitRetryMs = 2;
/// The longest pause between idle probes: a busy sweep is answered at once, an idle rank 0 costs
/// no core.
constexpr auto kIdleProbeAtMost = std::chrono::milliseconds(5);
/// How often the watched jobs are checked for a hang (their heartbeats come about every 2 s).
constexpr auto kHangCheckEvery = std::chrono::milliseconds(200);

/// A store write submitted to the GroupCommitter, and what rank 0 does once it is durable: only
/// then is a job counted, shown on the board as finished and logged, and only then does an ok job
/// release its dependents and a settled job count for halving. (A retry or an interruption is
/// requeued and shown at once: no result claims it.)
struct AwaitingCommit {
  enum class Kind { kOk, kFinal, kRetry, kInterrupted, kBlocked, kLostAttempt, kPruned };
  Kind kind = Kind::kOk;  ///< What it records, so what settle() does once it is durable.
  int holder = -1;        ///< kOk: the scheduler holder of the job, completed once durable.
  int source = -1;        ///< The worker rank that ran it (-1 for kBlocked).
  std::string job_id;     ///< The job it records.
  std::string status;     ///< What the board and the log say.
  std::string error;      ///< The error, "" when ok; for kPruned, why halving stopped it.
  /// kOk: the validation metric halving ranks the job's grid point by (NaN when none).
  double validation = NAN;
};

/// One job a busy worker holds, to credit its result. The scheduler sees a fresh holder id per
/// assignment, not the rank: an ok job stays held (running) until its result is durable, while its
/// worker already runs the next one.
struct Held {
  const ScheduledJob* job = nullptr;  ///< Owned by the scheduler.
  int holder = -1;                    ///< The scheduler's holder id of this assignment.
  /// False for a group member other than the first: its report never decides the job.
  bool leader = true;
};

/// A job running inside worker ranks: watched for heartbeats (OrchestratorOptions::hang_timeout),
/// and for the death of its ranks when the run is told to stop.
struct Watched {
  Clock::time_point last_seen;  ///< Its latest heartbeat, or its start.
  std::vector<int> ranks;       ///< The worker ranks it runs in.
};

/// A result received and not yet read. Results are read and recorded after the worker's next
/// request is answered (RankZero::take_result), in the order they arrived; every one is read
/// before the loop ends.
struct UnreadResult {
  int source = -1;      ///< The worker rank that sent it.
  Held held;            ///< What that worker held for it.
  std::string payload;  ///< The kResult frame, a JobResult without its spec.
};

/// What earlier runs of the sweep left in the store and its journal.
struct SweepStart {
  /// The sweep's jobs with their dependencies (job_graph.h); moved into the scheduler.
  std::vector<ScheduledJob> scheduled;
  std::set<std::string> done;  ///< Jobs with an ok result: skipped.
  /// Jobs that count as failed without running: quarantined earlier (unless retry_quarantined),
  /// or out of attempts (below).
  std::set<std::string> held_back;
  /// Job id -> the errors of its attempts lost inside worker ranks (hung, or crashed with a rank).
  /// Each ended its run, so they are counted across runs, from the journal.
  std::map<std::string, std::vector<std::string>> lost;
  /// Jobs that used every attempt that way (id, spec), quarantined by this run before any job runs.
  std::vector<std::pair<std::string, JobSpec>> out_of_attempts;
  /// The ok results, for halving to decide from (PruneGate); dropped once it has.
  std::vector<JobResult> ok_results;
  std::set<std::string> journaled_pruned;  ///< Jobs whose last journal line is "pruned".
};

/// The worker ranks of `comm` (all but rank 0). Throws unless there is one, and unless every job
/// fits them: a job needing more ranks would never start.
int count_workers(MPI_Comm comm, const std::vector<JobSpec>& jobs) {
  int size = 1;
  MIL_MPI_CHECK(MPI_Comm_size(comm, &size));
  if (size < 2)
    throw std::runtime_error(
        "a sweep needs at least 2 ranks (rank 0 orchestrates); run it under mpirun -n 3");

  const int workers = size - 1;
  for (const JobSpec& job : jobs) {
    if (job.train.ranks > workers) {
      throw std::runtime_error(
          "job " + job.id() + " (dataset '" + job.dataset.name + "', model '" + job.model.name +
          "', seed " + std::to_string(job.seed) + ", fold " + std::to_string(job.split.fold_index) +
          ") has train.ranks = " + std::to_string(job.train.ranks) + " but the sweep has only " +
          std::to_string(workers) + " worker rank(s); start it with mpirun -n " +
          std::to_string(job.train.ranks + 1) + " or more, or lower train.ranks");
    }
  }
  return workers;
}

/// Schedules `jobs` and reads what earlier runs left of them in `store`.
SweepStart read_sweep_start(const std::vector<JobSpec>& jobs, ResultsStore& store,
                            const OrchestratorOptions& options) {
  SweepStart start;
  start.scheduled = schedule_with_dependencies(jobs);
  if (options.costs != nullptr) {
    const std::vector<double> priorities = options.costs->priorities_for(start.scheduled);
    for (std::size_t i = 0; i < start.scheduled.size(); ++i) {
      start.scheduled[i].cost = priorities[i];
    }
  }
  for (auto& r : store.load_all()) {
    if (r.status == "quarantined" && !options.retry_quarantined) start.held_back.insert(r.job_id);
    if (!r.ok()) continue;
    start.done.insert(r.job_id);
    if (options.prune.enabled) start.ok_results.push_back(std::move(r));
  }
  for (auto& [id, entry] : replay_journal(store.dir() + "/journal.jsonl")) {
    if (entry.status == "pruned") start.journaled_pruned.insert(id);
    if (entry.lost_attempts.empty() || start.done.count(id) || start.held_back.count(id)) continue;
    start.lost[id] = std::move(entry.lost_attempts);
  }
  for (const ScheduledJob& job : start.scheduled) {
    const auto lost = start.lost.find(job.id);
    if (lost == start.lost.end() || int(lost->second.size()) < options.max_attempts) continue;
    start.held_back.insert(job.id);
    start.out_of_attempts.emplace_back(job.id, job.spec);
  }
  return start;
}

/// The result of job `id` that used every attempt inside worker ranks that died or hung, each of
/// which ended its run; `lost` holds their errors, oldest first.
JobResult quarantined_result(const std::string& id, const JobSpec& spec,
                             const std::vector<std::string>& lost) {
  JobResult result;
  result.job_id = id;
  result.config_id = spec.config_id();
  result.spec = spec;
  result.status = "quarantined";
  result.error = lost.back();
  result.runtime = {{"attempt", lost.size()}, {"attempt_errors", lost}};
  return result;
}

/// "1,2,3".
std::string comma_list(const std::vector<int>& ranks) {
  std::string list;
  for (int r : ranks) list += (list.empty() ? "" : ",") + std::to_string(r);
  return list;
}

/// Rank 0 during one run_orchestrator call (orchestrator_loop.h): MPI frames in, Scheduler calls in
/// between, store records out. Construct it, then call run() once.
class RankZero {
 public:
  /// Throws, before anything is handed out or written, when a job needs more ranks than there are
  /// workers; reads what earlier runs left in `store`, which must outlive this object.
  RankZero(MPI_Comm comm, const std::vector<JobSpec>& jobs, ResultsStore& store,
           const Logger& logger, const std::atomic<bool>* stop_requested,
           const OrchestratorOptions& options);

  /// Serves the workers until every one is stopped, or until a job hangs; returns once everything
  /// received is durable.
  SweepOutcome run();

 private:
  /// Quarantines the jobs out of attempts and fails their dependents, then logs the sweep's start.
  void start();
  /// One loop turn without a frame: progress the sends, read waiting results, or pause.
  void idle();
  /// Acts on one frame from a worker.
  void dispatch(comm::Message message);
  /// Reads what is left, sends or abandons what is queued, and waits until everything is durable.
  void finish();

  /// Answers a kRequestJob (protocol.h step 1): a job, kWait, kStop, or no answer yet (held).
  void answer_request(int source, const std::string& payload);
  /// Declares the GPU a worker names in its request to the memory guard, once (protocol.h step 1).
  void note_device(int source, const nlohmann::json& request);
  /// The scheduler's answer to idle worker `source` (as `holder`): with a memory guard, only a job
  /// whose predicted device memory fits beside those on the worker's GPU.
  Assignment next_for(int holder, int source);
  /// Sends the assigned job to every member of its group (step 2).
  void send_job(const Assignment& assignment);
  /// Tells `rank` the sweep is over for it.
  void stop_worker(int rank);
  /// Frees the worker of its oldest job at once; its result is read later (read_results).
  void take_result(int source, std::string payload);
  /// Takes back a job taken ahead and returned unstarted (kReturnJob): pending again.
  void take_back_job(int source, const std::string& payload);
  /// Records a kHeartbeat (step 3): advisory, never answered, never fatal.
  void note_heartbeat(int source, const std::string& payload);

  /// Reads and records every unread result, oldest first.
  void read_results();
  /// Decides what `unread`'s result does to its job, and submits what must be recorded.
  void read_result(const UnreadResult& unread);
  /// Teaches the cost model what the ok job `job_id` took; the pending jobs go out in the order
  /// that makes (the scheduler is re-sorted when SweepCosts::refresh_due()).
  void calibrate(const std::string& job_id, const JobResult& result);
  /// `unread`'s result as a JobResult of the job the worker held, whatever the worker sent.
  JobResult parse_result(const UnreadResult& unread) const;
  /// A job stopped on request: requeued, and journaled "interrupted" unless already requeued.
  void record_interrupted(const UnreadResult& unread, const JobResult& result);
  /// A failed attempt: retried, or recorded failed or quarantined, as the scheduler decides.
  void record_failure(const UnreadResult& unread, JobResult result, int attempt);

  /// Watches a job that runs inside worker `ranks` (see Watched).
  void watch(const std::string& job_id, std::vector<int> ranks);
  /// Journals the first watched job silent for longer than hang_timeout and returns true: the run
  /// ends (see SweepOutcome::hung_job).
  bool found_hung_job();
  /// Notes the stop once: no more jobs are handed out, and jobs of dead ranks are journaled.
  void note_stop();
  /// Journals every watched job whose rank on this host died (see process_of_rank_).
  void journal_jobs_of_dead_ranks();
  /// Held workers wait for an answer (protocol.h); once a stop is requested they get kStop.
  void stop_held_workers();
  /// Attempts of `job_id` lost inside worker ranks in earlier runs.
  int lost_before(const std::string& job_id) const;

  /// Prunes what halving decided from the results of earlier runs (a kill may have come between a
  /// result and its decision, or halfway through journaling it).
  void start_pruning();
  /// A durable record settled a job (ok or failed for good): halving decides what that changes and
  /// rank 0 acts on it.
  void decide_pruning(const AwaitingCommit& done);
  /// Journals the jobs `step` pruned that the journal lacks; shows those an earlier run journaled.
  void journal_pruned(const GateStep& step);

  /// Submits `record`; `then` happens once it is durable (settle_committed).
  void commit(StoreRecord record, AwaitingCommit then);
  /// Records the jobs failed because a dependency failed, since the last call.
  void write_blocked();
  /// Acts on every record committed since the last call, in submission order.
  void settle_committed();
  /// Counts, shows and logs one durable record.
  void settle(const AwaitingCommit& done);

  /// True once a stop was requested (SIGTERM/SIGUSR1).
  bool stopping() const { return stop_requested_ != nullptr && stop_requested_->load(); }
  /// Passes `line` to the logger, if any.
  void log(const std::string& line) const {
    if (logger_) logger_(line);
  }

  MPI_Comm comm_;                       ///< Rank 0 and the workers (every other rank).
  const std::vector<JobSpec>& jobs_;    ///< The sweep's jobs, as given.
  const OrchestratorOptions& options_;  ///< How to run them.
  StatusBoard* const board_;            ///< options_.board: told about everything; may be null.
  const Logger& logger_;                ///< Progress lines; may be empty.
  const std::atomic<bool>* const stop_requested_;  ///< Set on a stop request; may be null.
  const int workers_;     ///< The worker ranks; every job fits them (checked first).
  SweepStart prior_;      ///< What earlier runs left; its schedule was moved into scheduler_.
  PruneGate pruning_;     ///< Halving over the schedule (gates it before scheduler_ takes it).
  Scheduler scheduler_;   ///< The pure state machine that MPI feeds.
  SweepOutcome outcome_;  ///< What this run did so far; run() returns it.
  /// Makes records durable in groups on its own thread (group_commit.h); what a result changes
  /// waits for its commit.
  GroupCommitter committer_;
  /// What to do once each record is durable, in submission order, parallel to committer_'s queue.
  std::deque<AwaitingCommit> awaiting_;
  /// Worker rank -> what it holds, oldest first: the job it runs, then those taken ahead (up to 16,
  /// protocol.h).
  std::map<int, std::deque<Held>> jobs_of_worker_;
  int next_holder_ = 0;  ///< The holder id of the next request (a fresh one per request).
  /// Holder -> the rank it answers for: a group's members are holders (ids of the requests that
  /// were held), and their ranks get the job. Entries of workers answered kJob or kStop are never
  /// read again.
  std::map<int, int> rank_of_holder_;
  int active_workers_;     ///< Workers not told to stop yet; the loop ends at zero.
  int groups_formed_ = 0;  ///< Numbers the tags of group communicators.
  /// Answers leave without rank 0 waiting on their worker (mpi_transport.h); all have left when
  /// run() returns, unless a job hung.
  comm::QueuedSender outbox_;
  std::map<std::string, Watched> watched_;  ///< Job id -> the watch on it.
  Clock::time_point next_hang_check_;       ///< found_hung_job() looks no sooner.
  /// Worker rank -> its host and process id, from its requests (protocol.h).
  std::map<int, std::pair<std::string, long>> process_of_rank_;
  const std::string own_host_;       ///< Only ranks on this host can be checked for death.
  std::deque<UnreadResult> unread_;  ///< Results received and not read yet, oldest first.
  comm::Backoff idle_;               ///< Paces the probes while no frame arrives.
};

RankZero::RankZero(MPI_Comm comm, const std::vector<JobSpec>& jobs, ResultsStore& store,
                   const Logger& logger, const std::atomic<bool>* stop_requested,
                   const OrchestratorOptions& options)
    : comm_(comm),
      jobs_(jobs),
      options_(options),
      board_(options.board),
      logger_(logger),
      stop_requested_(stop_requested),
      workers_(count_workers(comm, jobs)),
      prior_(read_sweep_start(jobs, store, options)),
      pruning_(options.prune, prior_.scheduled, prior_.ok_results, prior_.held_back,
               std::move(prior_.journaled_pruned)),
      scheduler_(std::move(prior_.scheduled), prior_.done, options.max_attempts, prior_.held_back),
      committer_(store),
      active_workers_(workers_),
      outbox_(comm),
      next_hang_check_(Clock::now()),
      own_host_(mil::host_name()),
      idle_(kIdleProbeAtMost) {
  prior_.ok_results = {};  // halving has decided from them
}

SweepOutcome RankZero::run() {
  start();
  while (active_workers_ > 0) {
    settle_committed();
    if (found_hung_job()) break;
    if (stopping())
      note_stop();  // at once: after a rank's death the SIGKILL follows within a second
    if ((stopping() || outcome_.stopped) && !scheduler_.held().empty()) {
      note_stop();
      stop_held_workers();
      continue;
    }
    if (auto message = comm::poll_message(comm_)) {
      idle_.reset();
      dispatch(std::move(*message));
    } else {
      idle();
    }
  }
  finish();
  return std::move(outcome_);
}

void RankZero::start() {
  outcome_.jobs = jobs_.size();
  outcome_.skipped = scheduler_.done_count();
  if (board_) {
    std::vector<StatusJobInfo> infos;
    for (const JobSpec& spec : jobs_) infos.push_back(status_job_info(spec));
    board_->sweep_started(infos, prior_.done);
  }
  for (const auto& [id, spec] : prior_.out_of_attempts) {
    const std::vector<std::string>& lost = prior_.lost.at(id);
    JobResult result = quarantined_result(id, spec, lost);
    AwaitingCommit then{
        AwaitingCommit::Kind::kFinal,
        -1,
        -1,
        id,
        result.status,
        result.error + " (on each of " + std::to_string(lost.size()) + " earlier runs)"};
    commit(StoreRecord::of_result(std::move(result)), std::move(then));
  }
  write_blocked();  // dependents of jobs quarantined earlier
  outcome_.held_back =
      scheduler_.failed_count() - awaiting_.size();  // awaiting: quarantined or blocked now
  start_pruning();
  log("sweep: " + std::to_string(jobs_.size()) + " jobs, " + std::to_string(outcome_.skipped) +
      " already done, " + std::to_string(workers_) + " workers, up to " +
      std::to_string(options_.max_attempts) + " attempts per job" +
      (outcome_.held_back ? "; " + std::to_string(outcome_.held_back) +
                                " quarantined earlier and not rerun (--retry-failed reruns them)"
                          : "") +
      (pruning_.active() ? "; halving with eta " + std::to_string(options_.prune.eta) + " (" +
                               std::to_string(scheduler_.pruned_count()) + " pruned so far)"
                         : ""));
}

void RankZero::idle() {
  outbox_.progress();
  if (!unread_.empty()) {
    read_results();
    return;
  }
  idle_.pause();
}

void RankZero::dispatch(comm::Message message) {
  switch (message.tag) {
    case MsgTag::kRequestJob:
      return answer_request(message.source, message.payload);
    case MsgTag::kResult:
      return take_result(message.source, std::move(message.payload));
    case MsgTag::kReturnJob:
      return take_back_job(message.source, message.payload);
    case MsgTag::kHeartbeat:
      return note_heartbeat(message.source, message.payload);
    default:
      throw std::runtime_error("orchestrator: unexpected tag " +
                               std::to_string(static_cast<int>(message.tag)) + " from rank " +
                               std::to_string(message.source));
  }
}

void RankZero::finish() {
  read_results();
  if (outcome_.hung_job.empty()) {
    outbox_.drain();
  } else {
    outbox_.abandon();  // the hung ranks may never take what was sent to them; the caller ends the
                        // world
  }
  committer_.wait_all();
  settle_committed();
}

void RankZero::answer_request(int source, const std::string& payload) {
  const nlohmann::json request = nlohmann::json::parse(payload);
  const bool worker_stopping = request.value("stopping", false);
  const bool ahead = request.value("ahead", false);  // the worker still runs a job
  const std::string host = request.value("host", std::string());
  if (board_) board_->worker_seen(source, host);
  if (const long pid = request.value("pid", 0L); pid > 0) process_of_rank_[source] = {host, pid};
  note_device(source, request);
  if (ahead && (stopping() || outcome_.stopped)) {
    // It is told to stop when it asks again as an idle worker, after reporting what it runs.
    outbox_.send(source, MsgTag::kWait, R"({"retry_ms":0})");
    return;
  }
  if (stopping() || worker_stopping) {
    note_stop();
    stop_worker(source);
    return;
  }
  if (ahead && options_.device_memory != nullptr) {
    // A job taken ahead would hold device memory before it runs: not in a packed sweep.
    outbox_.send(source, MsgTag::kWait, R"({"retry_ms":0})");
    return;
  }
  const int holder = next_holder_++;
  rank_of_holder_[holder] = source;
  const Assignment assignment = ahead ? scheduler_.next_ahead(holder) : next_for(holder, source);
  switch (assignment.kind) {
    case Assignment::Kind::kJob:
      send_job(assignment);
      break;
    case Assignment::Kind::kHold:
      // No answer yet: this worker is kept for a group job until enough workers are idle.
      log("rank " + std::to_string(source) + " held for a group job (" +
          std::to_string(scheduler_.held().size()) + " held)");
      break;
    case Assignment::Kind::kWait: {
      rank_of_holder_.erase(holder);
      // Waiting for a commit takes about one sync: ask again soon.
      const int retry_ms = ahead                                             ? 0
                           : committer_.submitted() > committer_.committed() ? kCommitRetryMs
                                                                             : kWaitRetryMs;
      outbox_.send(source, MsgTag::kWait, nlohmann::json{{"retry_ms", retry_ms}}.dump());
      break;
    }
    case Assignment::Kind::kStop:
      rank_of_holder_.erase(holder);
      stop_worker(source);
      break;
  }
}

void RankZero::note_device(int source, const nlohmann::json& request) {
  DeviceMemoryGuard* const guard = options_.device_memory;
  if (guard == nullptr || !request.contains("device") || !guard->device_of(source).empty()) return;
  const std::string device = request.at("device").get<std::string>();
  guard->add_device(device, request.value("device_memory", 0.0));
  guard->assign(source, device);
  log("rank " + std::to_string(source) + " trains on GPU " + device);
}

Assignment RankZero::next_for(int holder, int source) {
  DeviceMemoryGuard* const guard = options_.device_memory;
  if (guard == nullptr) return scheduler_.next(holder);
  return scheduler_.next(holder, [&](const ScheduledJob& job) {
    return guard->fits(source,
                       options_.costs != nullptr ? options_.costs->device_bytes_of(job.id) : 0.0);
  });
}

void RankZero::send_job(const Assignment& assignment) {
  const ScheduledJob& job = *assignment.job;
  std::string payload = nlohmann::json(comm::JobTicket{job.id, job.spec}).dump();
  // The scheduler's leader (first holder) gets group rank 0: its report decides the job and only it
  // writes the job's files.
  std::vector<int> ranks;
  for (int member : assignment.group) ranks.push_back(rank_of_holder_.at(member));
  if (ranks.size() > 1) {
    comm::GroupJob group{job.spec, ranks,
                         comm::kFirstGroupTag + groups_formed_++ % comm::kGroupTagCount};
    payload = nlohmann::json(group).dump();
    log(job.id + " starts on ranks " + comma_list(group.ranks) + " (a " +
        std::to_string(group.ranks.size()) + "-rank group)");
  }
  // A job taken ahead is not running yet: the board hears of it when the job before it reports.
  if (jobs_of_worker_[ranks.front()].empty()) {
    if (board_) board_->job_assigned(job.id, ranks.front());
    watch(job.id, ranks);
  }
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    jobs_of_worker_[ranks[i]].push_back(Held{assignment.job, assignment.group[i], i == 0});
    rank_of_holder_.erase(assignment.group[i]);
    outbox_.send(ranks[i], MsgTag::kJob, payload);
  }
  if (options_.device_memory != nullptr && options_.costs != nullptr) {
    for (int rank : ranks)
      options_.device_memory->start(rank, options_.costs->device_bytes_of(job.id));
  }
}

void RankZero::stop_worker(int rank) {
  outbox_.send(rank, MsgTag::kStop, "{}");
  if (board_) board_->worker_stopped(rank);
  --active_workers_;
}

void RankZero::take_result(int source, std::string payload) {
  auto held = jobs_of_worker_.find(source);
  if (held == jobs_of_worker_.end()) {
    throw std::runtime_error("orchestrator: result from worker " + std::to_string(source) +
                             " that holds no job");
  }
  // A worker reports its jobs in the order it got them. It is free at once (its next request
  // follows this frame); reading and recording the result waits until no frame is waiting, so the
  // reply to that request is not held up by it.
  watched_.erase(held->second.front().job->id);
  // Its device memory is free now, before its next request is answered.
  if (options_.device_memory != nullptr) options_.device_memory->finish(source);
  unread_.push_back(UnreadResult{source, held->second.front(), std::move(payload)});
  held->second.pop_front();
  if (held->second.empty()) {
    jobs_of_worker_.erase(held);
  } else {
    // Taken ahead; it runs now.
    if (board_) board_->job_assigned(held->second.front().job->id, source);
    watch(held->second.front().job->id, {source});
  }
  if (unread_.size() >= kMaxUnreadResults) read_results();
}

void RankZero::take_back_job(int source, const std::string& payload) {
  // Pending again at once, no attempt used, nothing to record. It is one the worker holds besides
  // the one it runs (the first); without an id, the last one.
  auto held = jobs_of_worker_.find(source);
  const nlohmann::json returned =
      nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  const auto not_taken_ahead = [&] {
    return std::runtime_error("orchestrator: worker " + std::to_string(source) + " gave back " +
                              payload + ", which is not a job it took ahead");
  };
  if (held == jobs_of_worker_.end() || held->second.size() < 2) throw not_taken_ahead();
  std::deque<Held>& jobs = held->second;
  const auto taken =
      returned.is_object() && returned.contains("job_id")
          ? std::find_if(jobs.begin() + 1, jobs.end(),
                         [&](const Held& h) { return returned.at("job_id") == h.job->id; })
          : jobs.end() - 1;
  if (taken == jobs.end()) throw not_taken_ahead();
  const Held job = *taken;
  jobs.erase(taken);
  scheduler_.requeue(job.holder, job.job->id);
  ++outcome_.given_back;
  if (board_) board_->job_finished(job.job->id, "returned", "");
}

void RankZero::note_heartbeat(int source, const std::string& payload) {
  nlohmann::json beat = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (!beat.is_object() || !beat.contains("job_id")) {
    log("ignoring a malformed heartbeat from rank " + std::to_string(source));
    return;
  }
  ++outcome_.heartbeats;
  const auto held = jobs_of_worker_.find(source);
  if (held == jobs_of_worker_.end() || beat.at("job_id") != held->second.front().job->id) {
    log("heartbeat from rank " + std::to_string(source) + " names job " + beat.at("job_id").dump() +
        ", which it does not hold");
  }
  if (beat.at("job_id").is_string()) {
    const auto w = watched_.find(beat.at("job_id").get<std::string>());
    if (w != watched_.end()) w->second.last_seen = Clock::now();
  }
  beat["rank"] = source;
  beat["seen_at"] = mil::utc_timestamp();
  outcome_.last_heartbeat[source] = beat;
  if (options_.on_heartbeat) options_.on_heartbeat(source, beat);
  if (board_ && beat.at("job_id").is_string()) {
    board_->worker_seen(source, "");
    try {
      board_->job_progress(beat.at("job_id").get<std::string>(), beat.value("epoch", -1),
                           beat.value("epochs", -1), beat.value("eta_s", -1.0));
    } catch (const nlohmann::json::exception&) {
      log("ignoring a heartbeat with malformed progress from rank " + std::to_string(source));
    }
  }
}

void RankZero::read_results() {
  while (!unread_.empty()) {
    const UnreadResult next = std::move(unread_.front());
    unread_.pop_front();
    read_result(next);
  }
}

void RankZero::read_result(const UnreadResult& unread) {
  const int source = unread.source;
  const int holder = unread.held.holder;
  const std::string& job_id = unread.held.job->id;
  JobResult result = parse_result(unread);
  // Attempts of this run, after those that hung in earlier runs (each ended its run).
  const int attempt = scheduler_.attempts(job_id) + lost_before(job_id);
  if (!result.runtime.is_object()) result.runtime = nlohmann::json::object();
  result.runtime["attempt"] = attempt;
  if (options_.costs != nullptr) result.runtime["predicted_s"] = options_.costs->seconds_of(job_id);
  if (result.status == "interrupted") {
    record_interrupted(unread, result);
  } else if (result.ok() && !unread.held.leader) {
    // A group member's ok: the first rank's report decides and records the job; this one is free.
    if (scheduler_.complete(holder, job_id, /*ok=*/true) != Fate::kMember) {
      throw std::logic_error("orchestrator: a group member's report decided job " + job_id);
    }
    log(job_id + " ok on rank " + std::to_string(source) +
        " (a group member; the job is recorded from its first rank)");
  } else if (result.ok()) {
    // Stays held until durable: counted done, and its dependents released, only then.
    if (board_) board_->job_reported(job_id);
    calibrate(job_id, result);
    AwaitingCommit then{AwaitingCommit::Kind::kOk, holder, source, job_id, result.status, ""};
    then.validation = pruning_.outcome_of(result).validation;
    commit(StoreRecord::of_result(std::move(result)), std::move(then));
  } else {
    record_failure(unread, std::move(result), attempt);
  }
  if (board_) board_->worker_seen(source, "");
  write_blocked();
}

void RankZero::calibrate(const std::string& job_id, const JobResult& result) {
  if (options_.costs == nullptr) return;
  options_.costs->observe(job_id, actual_seconds(result));
  if (options_.costs->refresh_due()) {
    scheduler_.set_costs(options_.costs->priorities_for(scheduler_.jobs()));
  }
}

JobResult RankZero::parse_result(const UnreadResult& unread) const {
  const ScheduledJob& job = *unread.held.job;
  JobResult result;
  try {
    result = result_from_json_without_spec(nlohmann::json::parse(unread.payload), job.spec);
  } catch (const std::exception& e) {
    result.status = "failed";
    result.error = std::string("unreadable result from worker: ") + e.what();
  }
  if (result.job_id != job.id) {
    // A result that does not name the job it was given is recorded against the job that was sent.
    result.error = "worker " + std::to_string(unread.source) + " returned a result for '" +
                   result.job_id + "' while holding '" + job.id + "'" +
                   (result.error.empty() ? "" : "; " + result.error);
    result.status = "failed";
    result.job_id = job.id;
    result.config_id = job.spec.config_id();
    result.spec = job.spec;
  }
  if (!result.ok() && result.status != "interrupted" && result.error.empty())
    result.error = "no error given";
  return result;
}

void RankZero::record_interrupted(const UnreadResult& unread, const JobResult& result) {
  const std::string& job_id = unread.held.job->id;
  if (!scheduler_.requeue(unread.held.holder, job_id)) {
    log(job_id + " interrupted on rank " + std::to_string(unread.source) +
        " (a group member; the job was requeued already)");
    return;
  }
  // No result file: a rerun resumes the job.
  if (board_)
    board_->job_finished(job_id, "interrupted",
                         result.error);  // now: it may be reassigned at once
  AwaitingCommit then{
      AwaitingCommit::Kind::kInterrupted, -1, unread.source, job_id, "interrupted", result.error};
  commit(StoreRecord::of_note(job_id, "interrupted", result.error), std::move(then));
}

void RankZero::record_failure(const UnreadResult& unread, JobResult result, int attempt) {
  // A failure's fate is decided now (a retry needs no durable record); the board hears of it once
  // durable, like any result.
  const int source = unread.source;
  const std::string& job_id = unread.held.job->id;
  switch (scheduler_.complete(unread.held.holder, job_id, /*ok=*/false, result.error)) {
    case Fate::kDone:
      throw std::logic_error("orchestrator: a failed attempt of " + job_id + " was counted done");
    case Fate::kMember:
      // Its group's attempt had ended already (another member failed or was stopped first).
      log(job_id + " " + result.status + " on rank " + std::to_string(source) +
          " (a group member; the attempt had ended): " + result.error);
      break;
    case Fate::kRetry: {
      // No result file yet: the next attempt resumes from the job's checkpoint.
      const std::string of_attempts =
          std::to_string(attempt) + " of " + std::to_string(options_.max_attempts);
      const std::string detail = "attempt " + of_attempts + " failed on rank " +
                                 std::to_string(source) + ": " + result.error;
      AwaitingCommit then{AwaitingCommit::Kind::kRetry,
                          -1,
                          source,
                          job_id,
                          "failed (attempt " + of_attempts + "), retrying",
                          result.error};
      commit(StoreRecord::of_note(job_id, "retry", detail), std::move(then));
      if (board_)
        board_->job_finished(job_id, "retry", result.error);  // now: it may be reassigned at once
      break;
    }
    case Fate::kQuarantined:
      result.status = "quarantined";
      [[fallthrough]];
    case Fate::kFailed: {
      result.runtime["attempt_errors"] = scheduler_.attempt_errors(job_id);
      if (board_) board_->job_reported(job_id);
      AwaitingCommit then{
          AwaitingCommit::Kind::kFinal, -1, source, job_id, result.status, result.error};
      commit(StoreRecord::of_result(std::move(result)), std::move(then));
      break;
    }
  }
}

void RankZero::watch(const std::string& job_id, std::vector<int> ranks) {
  if (ranks.size() > 1 || options_.jobs_in_worker_ranks) {
    watched_[job_id] = Watched{Clock::now(), std::move(ranks)};
  }
}

bool RankZero::found_hung_job() {
  if (options_.hang_timeout.count() <= 0 || watched_.empty())
    return false;  // no clock read in a sweep without such jobs
  const auto now = Clock::now();
  if (now < next_hang_check_) return false;
  next_hang_check_ = now + kHangCheckEvery;
  for (const auto& [job_id, w] : watched_) {
    if (now - w.last_seen <= options_.hang_timeout) continue;
    const auto silent = std::chrono::duration_cast<std::chrono::seconds>(now - w.last_seen).count();
    outcome_.hung_job = job_id;
    outcome_.hung_error = "hung: no heartbeat for " + std::to_string(silent) +
                          " s (in worker rank" + (w.ranks.size() > 1 ? "s " : " ") +
                          comma_list(w.ranks) + ")";
    log(job_id + " " + outcome_.hung_error +
        "; its ranks cannot be freed while the MPI world lives, so the run "
        "ends here, with every result received so far durable; rerun the same command to retry "
        "it (hung attempts " +
        std::to_string(1 + lost_before(job_id)) + " of --max-attempts " +
        std::to_string(options_.max_attempts) + ", after which a run quarantines it)");
    if (board_) board_->job_finished(job_id, "hung", outcome_.hung_error);
    commit(StoreRecord::of_note(job_id, "hung", outcome_.hung_error),
           AwaitingCommit{AwaitingCommit::Kind::kLostAttempt, -1, -1, job_id, "hung",
                          outcome_.hung_error});
    return true;
  }
  return false;
}

void RankZero::note_stop() {
  if (outcome_.stopped) return;
  log("stop requested: no more jobs are handed out; running jobs checkpoint");
  outcome_.stopped = true;
  journal_jobs_of_dead_ranks();
}

// When a worker rank dies, mpirun sends SIGTERM to the other ranks and SIGKILL a second later
// (odls_base_sigkill_timeout); the job that ran inside the dead rank could not report. So at the
// stop, each job running inside worker ranks of this host whose process is gone is journaled
// "crashed", which counts towards its quarantine across runs as a hang does. Ranks on other hosts
// cannot be checked.
void RankZero::journal_jobs_of_dead_ranks() {
  for (const auto& [job_id, w] : watched_) {
    for (int rank : w.ranks) {
      const auto process = process_of_rank_.find(rank);
      if (process == process_of_rank_.end() || process->second.first != own_host_) continue;
      if (process->second.second <= 0 || mil::process_exists(process->second.second)) continue;
      const std::string error = "crashed: worker rank " + std::to_string(rank) + " (pid " +
                                std::to_string(process->second.second) + ") died while running it";
      log(job_id + " " + error + " (attempt " + std::to_string(1 + lost_before(job_id)) +
          " of --max-attempts " + std::to_string(options_.max_attempts) +
          " counted; the MPI world ends with that rank)");
      if (board_) board_->job_finished(job_id, "crashed", error);
      commit(StoreRecord::of_note(job_id, "crashed", error),
             AwaitingCommit{AwaitingCommit::Kind::kLostAttempt, -1, -1, job_id, "crashed", error});
      break;
    }
  }
  committer_.wait_all();  // durable before the SIGKILL that follows
}

void RankZero::stop_held_workers() {
  for (int held : scheduler_.release_held()) stop_worker(rank_of_holder_.at(held));
}

int RankZero::lost_before(const std::string& job_id) const {
  const auto lost = prior_.lost.find(job_id);
  return lost == prior_.lost.end() ? 0 : int(lost->second.size());
}

void RankZero::start_pruning() { journal_pruned(pruning_.start(scheduler_)); }

void RankZero::decide_pruning(const AwaitingCommit& done) {
  using Kind = AwaitingCommit::Kind;
  const bool ok = done.kind == Kind::kOk;
  if (!ok && done.kind != Kind::kFinal && done.kind != Kind::kBlocked) return;
  const PruneChanges changes =
      pruning_.decide(done.job_id, JobOutcome{ok, ok ? done.validation : NAN});
  if (changes.opened.empty() && changes.pruned.empty()) return;
  if (options_.before_pruning) options_.before_pruning();
  const GateStep step = pruning_.apply(scheduler_, changes);
  log("halving after " + done.job_id + ": " + std::to_string(step.opened.size()) +
      " job(s) of the next rung may run, " + std::to_string(step.pruned.size()) + " pruned");
  journal_pruned(step);
}

void RankZero::journal_pruned(const GateStep& step) {
  std::set<std::string> to_journal;
  for (const PrunedJob& job : step.to_journal) {
    to_journal.insert(job.job_id);
    commit(StoreRecord::of_note(job.job_id, "pruned", job.detail),
           AwaitingCommit{AwaitingCommit::Kind::kPruned, -1, -1, job.job_id, "pruned", job.detail});
  }
  for (const PrunedJob& job : step.pruned) {
    if (to_journal.count(job.job_id) > 0) continue;
    ++outcome_.pruned;  // journaled by an earlier run
    if (board_) board_->job_finished(job.job_id, "pruned", job.detail);
  }
}

void RankZero::commit(StoreRecord record, AwaitingCommit then) {
  committer_.submit(std::move(record));
  awaiting_.push_back(std::move(then));
}

void RankZero::write_blocked() {
  for (const auto& [blocked, dependency] : scheduler_.take_blocked()) {
    JobResult failed = dependency_failed_result(blocked->spec, blocked->id, dependency);
    AwaitingCommit then{
        AwaitingCommit::Kind::kBlocked, -1, -1, blocked->id, failed.status, failed.error};
    commit(StoreRecord::of_result(std::move(failed)), std::move(then));
  }
}

void RankZero::settle_committed() {
  for (std::size_t durable = committer_.committed();
       committer_.submitted() - awaiting_.size() < durable;) {
    const AwaitingCommit done = std::move(awaiting_.front());
    awaiting_.pop_front();
    settle(done);
    decide_pruning(done);
  }
}

void RankZero::settle(const AwaitingCommit& done) {
  switch (done.kind) {
    case AwaitingCommit::Kind::kOk:
      if (scheduler_.complete(done.holder, done.job_id, /*ok=*/true) == Fate::kMember) {
        // A group member failed after the leader's ok arrived and before it was durable: cannot
        // happen while the members agree on failures before the leader finishes (fit() and
        // run_job()), but say so if it ever does.
        log("warning: " + done.job_id +
            " was recorded ok, but a member of its group failed meanwhile");
      }
      ++outcome_.ran_ok;
      break;
    case AwaitingCommit::Kind::kFinal:
      ++(done.status == "quarantined" ? outcome_.quarantined : outcome_.failed);
      break;
    case AwaitingCommit::Kind::kRetry:
      ++outcome_.retries;
      break;
    case AwaitingCommit::Kind::kInterrupted:
      ++outcome_.interrupted;
      break;
    case AwaitingCommit::Kind::kPruned:
      ++outcome_.pruned;
      break;
    case AwaitingCommit::Kind::kLostAttempt:
      return;  // logged when seen; the caller ends the run
    case AwaitingCommit::Kind::kBlocked:
      ++outcome_.failed;
      if (board_) board_->job_finished(done.job_id, done.status, done.error);
      log(done.job_id + " failed: " + done.error);
      return;
  }
  const bool requeued =
      done.kind == AwaitingCommit::Kind::kRetry || done.kind == AwaitingCommit::Kind::kInterrupted;
  if (board_ && !requeued) board_->job_finished(done.job_id, done.status, done.error);
  const std::size_t finished =
      scheduler_.done_count() + scheduler_.failed_count() + scheduler_.pruned_count();
  log("[" + std::to_string(finished) + "/" + std::to_string(jobs_.size()) + "] " + done.job_id +
      " " + done.status +
      (done.source < 0 ? std::string() : " on rank " + std::to_string(done.source)) +
      (done.error.empty() ? "" : ": " + done.error));
}

}  // namespace

SweepOutcome run_orchestrator(MPI_Comm comm, const std::vector<JobSpec>& jobs, ResultsStore& store,
                              const std::function<void(const std::string&)>& logger,
                              const std::atomic<bool>* stop_requested,
                              const OrchestratorOptions& options) {
  return RankZero(comm, jobs, store, logger, stop_requested, options).run();
}

}  // namespace mil::orch
