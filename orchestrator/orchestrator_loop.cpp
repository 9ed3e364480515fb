#include "orchestrator/orchestrator_loop.h"

#include <algorithm>
#include <deque>
#include <map>
#include <thread>

#include "comm/job_messages.h"
#include "comm/mpi_env.h"
#include "comm/mpi_transport.h"
#include "mil/core/runtime_info.h"
#include "orchestrator/results/group_commit.h"
#include "orchestrator/schedule/job_graph.h"
#include "orchestrator/schedule/scheduler.h"

namespace mil::orch {
namespace {

/// A store write submitted to the GroupCommitter, and what rank 0 does once it is durable: only
/// then is a job counted, shown on the board as finished and logged, and only then does an ok job
/// release its dependents. (A retry or an interruption is requeued and shown at once: no result
/// claims it.)
struct AwaitingCommit {
  enum class Kind { kOk, kFinal, kRetry, kInterrupted, kBlocked, kLostAttempt };
  Kind kind = Kind::kOk;
  int holder = -1;  ///< kOk: the scheduler holder of the job, completed once durable.
  int source = -1;  ///< The worker rank that ran it (-1 for kBlocked).
  std::string job_id;
  std::string status;  ///< What the board and the log say.
  std::string error;   ///< The error, "" when ok.
};

}  // namespace

using comm::MsgTag;

SweepOutcome run_orchestrator(MPI_Comm comm, const std::vector<JobSpec>& jobs, ResultsStore& store,
                              const std::function<void(const std::string&)>& logger,
                              const std::atomic<bool>* stop_requested,
                              const OrchestratorOptions& options) {
  StatusBoard* const board = options.board;
  const auto stopping = [stop_requested] {
    return stop_requested != nullptr && stop_requested->load();
  };
  const auto log = [&logger](const std::string& line) {
    if (logger) logger(line);
  };
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

  std::vector<ScheduledJob> scheduled = schedule_with_dependencies(jobs);
  std::set<std::string> done, held_back;
  for (const auto& r : store.load_all()) {
    if (r.ok()) done.insert(r.job_id);
    if (r.status == "quarantined" && !options.retry_quarantined) held_back.insert(r.job_id);
  }
  // Attempts lost inside worker ranks (hung, or crashed with a rank) ended their runs, so they are
  // counted across runs, from the journal: a job that used every attempt that way is quarantined
  // now.
  std::map<std::string, std::vector<std::string>> prior_lost;
  std::vector<std::pair<std::string, JobSpec>> quarantined_for_lost_attempts;  // id, spec
  for (auto& [id, entry] : replay_journal(store.dir() + "/journal.jsonl")) {
    if (entry.lost_attempts.empty() || done.count(id) || held_back.count(id)) continue;
    prior_lost[id] = std::move(entry.lost_attempts);
  }
  for (const ScheduledJob& job : scheduled) {
    const auto lost = prior_lost.find(job.id);
    if (lost == prior_lost.end() || int(lost->second.size()) < options.max_attempts) continue;
    held_back.insert(job.id);
    quarantined_for_lost_attempts.emplace_back(job.id, job.spec);
  }
  Scheduler scheduler(std::move(scheduled), done, options.max_attempts, held_back);
  const auto lost_before = [&prior_lost](const std::string& job_id) {
    const auto lost = prior_lost.find(job_id);
    return lost == prior_lost.end() ? 0 : int(lost->second.size());
  };

  SweepOutcome outcome;
  outcome.jobs = jobs.size();
  outcome.skipped = scheduler.done_count();
  // Results become durable in groups (group_commit.h); what a result changes waits for its commit.
  GroupCommitter committer(store);
  std::deque<AwaitingCommit> awaiting;  // in submission order, parallel to the committer's queue
  const auto commit = [&](StoreRecord record, AwaitingCommit then) {
    committer.submit(std::move(record));
    awaiting.push_back(std::move(then));
  };
  const auto write_blocked = [&] {
    for (const auto& [blocked, dependency] : scheduler.take_blocked()) {
      JobResult failed = dependency_failed_result(blocked->spec, blocked->id, dependency);
      AwaitingCommit then{
          AwaitingCommit::Kind::kBlocked, -1, -1, blocked->id, failed.status, failed.error};
      commit(StoreRecord::of_result(std::move(failed)), std::move(then));
    }
  };
  // Acts on every record committed since the last call.
  const auto settle_committed = [&] {
    for (std::size_t durable = committer.committed();
         committer.submitted() - awaiting.size() < durable;) {
      const AwaitingCommit done = std::move(awaiting.front());
      awaiting.pop_front();
      switch (done.kind) {
        case AwaitingCommit::Kind::kOk:
          if (scheduler.complete(done.holder, done.job_id, /*ok=*/true) == Fate::kMember) {
            // A group member failed after the leader's ok arrived and before it was durable: cannot
            // happen while the members agree on failures before the leader finishes (fit() and
            // run_job()), but say so if it ever does.
            log("warning: " + done.job_id +
                " was recorded ok, but a member of its group failed meanwhile");
          }
          ++outcome.ran_ok;
          break;
        case AwaitingCommit::Kind::kFinal:
          ++(done.status == "quarantined" ? outcome.quarantined : outcome.failed);
          break;
        case AwaitingCommit::Kind::kRetry:
          ++outcome.retries;
          break;
        case AwaitingCommit::Kind::kInterrupted:
          ++outcome.interrupted;
          break;
        case AwaitingCommit::Kind::kLostAttempt:
          continue;  // logged when seen; the caller ends the run
        case AwaitingCommit::Kind::kBlocked:
          ++outcome.failed;
          if (board) board->job_finished(done.job_id, done.status, done.error);
          log(done.job_id + " failed: " + done.error);
          continue;
      }
      const bool requeued = done.kind == AwaitingCommit::Kind::kRetry ||
                            done.kind == AwaitingCommit::Kind::kInterrupted;
      if (board && !requeued) board->job_finished(done.job_id, done.status, done.error);
      const std::size_t finished = scheduler.done_count() + scheduler.failed_count();
      log("[" + std::to_string(finished) + "/" + std::to_string(jobs.size()) + "] " + done.job_id +
          " " + done.status +
          (done.source < 0 ? std::string() : " on rank " + std::to_string(done.source)) +
          (done.error.empty() ? "" : ": " + done.error));
    }
  };
  if (board) {
    std::vector<StatusJobInfo> infos;
    for (const JobSpec& spec : jobs) infos.push_back(status_job_info(spec));
    board->sweep_started(infos, done);
  }
  for (const auto& [id, spec] : quarantined_for_lost_attempts) {
    const std::vector<std::string>& lost = prior_lost.at(id);
    JobResult result;
    result.job_id = id;
    result.config_id = spec.config_id();
    result.spec = spec;
    result.status = "quarantined";
    result.error = lost.back();
    result.runtime = {{"attempt", lost.size()}, {"attempt_errors", lost}};
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
  outcome.held_back =
      scheduler.failed_count() - awaiting.size();  // awaiting: quarantined or blocked now
  log("sweep: " + std::to_string(jobs.size()) + " jobs, " + std::to_string(outcome.skipped) +
      " already done, " + std::to_string(size - 1) + " workers, up to " +
      std::to_string(options.max_attempts) + " attempts per job" +
      (outcome.held_back ? "; " + std::to_string(outcome.held_back) +
                               " quarantined earlier and not rerun (--retry-failed reruns them)"
                         : ""));

  // What each busy worker holds, to credit its results. The scheduler sees a fresh holder id per
  // assignment, not the rank: an ok job stays held (running) until its result is durable, while its
  // worker already runs the next one.
  struct Held {
    const ScheduledJob* job = nullptr;
    int holder = -1;
    bool leader =
        true;  ///< False for a group member other than the first: its report never decides the job.
  };
  // Oldest first: the job it runs, then those taken ahead (up to 16, protocol.h).
  std::map<int, std::deque<Held>> jobs_of_worker;
  int next_holder = 0;
  // Holder -> the rank it answers for: a group's members are holders (ids of the requests that were
  // held), and their ranks get the job. Entries of workers answered kJob or kStop are never read
  // again.
  std::map<int, int> rank_of_holder;
  int active_workers = size - 1;
  int groups_formed = 0;  // numbers the tags of group communicators
  // Answers leave without rank 0 waiting on their worker (mpi_transport.h); all have left on
  // return.
  comm::QueuedSender outbox(comm);
  // Jobs running inside worker ranks: watched for heartbeats (OrchestratorOptions::hang_timeout),
  // and for the death of their ranks when the run is told to stop.
  struct Watched {
    std::chrono::steady_clock::time_point last_seen;
    std::vector<int> ranks;
  };
  std::map<std::string, Watched> watched;
  const bool watching = options.hang_timeout.count() > 0;
  const auto watch = [&](const std::string& job_id, std::vector<int> ranks) {
    if (ranks.size() > 1 || options.jobs_in_worker_ranks) {
      watched[job_id] = Watched{std::chrono::steady_clock::now(), std::move(ranks)};
    }
  };
  auto next_hang_check = std::chrono::steady_clock::now();
  // The first watched job silent for longer than hang_timeout: journaled, and the run ends (see
  // above).
  const auto found_hung_job = [&] {
    if (!watching || watched.empty()) return false;  // no clock read in a sweep without such jobs
    const auto now = std::chrono::steady_clock::now();
    if (now < next_hang_check) return false;
    next_hang_check = now + std::chrono::milliseconds(200);
    for (const auto& [job_id, w] : watched) {
      if (now - w.last_seen <= options.hang_timeout) continue;
      std::string ranks;
      for (int r : w.ranks) ranks += (ranks.empty() ? "" : ",") + std::to_string(r);
      const auto silent =
          std::chrono::duration_cast<std::chrono::seconds>(now - w.last_seen).count();
      outcome.hung_job = job_id;
      outcome.hung_error = "hung: no heartbeat for " + std::to_string(silent) +
                           " s (in worker rank" + (w.ranks.size() > 1 ? "s " : " ") + ranks + ")";
      log(job_id + " " + outcome.hung_error +
          "; its ranks cannot be freed while the MPI world lives, so the run "
          "ends here, with every result received so far durable; rerun the same command to retry "
          "it (hung attempts " +
          std::to_string(1 + lost_before(job_id)) + " of --max-attempts " +
          std::to_string(options.max_attempts) + ", after which a run quarantines it)");
      if (board) board->job_finished(job_id, "hung", outcome.hung_error);
      commit(StoreRecord::of_note(job_id, "hung", outcome.hung_error),
             AwaitingCommit{AwaitingCommit::Kind::kLostAttempt, -1, -1, job_id, "hung",
                            outcome.hung_error});
      return true;
    }
    return false;
  };
  // Worker rank -> its host and process id, from its requests (protocol.h).
  std::map<int, std::pair<std::string, long>> process_of_rank;
  const std::string own_host = mil::host_name();
  // When a worker rank dies, mpirun sends SIGTERM to the other ranks and SIGKILL a second later
  // (odls_base_sigkill_timeout); the job that ran inside the dead rank could not report. So at the
  // stop, each job running inside worker ranks of this host whose process is gone is journaled
  // "crashed", which counts towards its quarantine across runs as a hang does. Ranks on other hosts
  // cannot be checked.
  const auto journal_jobs_of_dead_ranks = [&] {
    for (const auto& [job_id, w] : watched) {
      for (int rank : w.ranks) {
        const auto process = process_of_rank.find(rank);
        if (process == process_of_rank.end() || process->second.first != own_host) continue;
        if (process->second.second <= 0 || mil::process_exists(process->second.second)) continue;
        const std::string error = "crashed: worker rank " + std::to_string(rank) + " (pid " +
                                  std::to_string(process->second.second) +
                                  ") died while running it";
        log(job_id + " " + error + " (attempt " + std::to_string(1 + lost_before(job_id)) +
            " of --max-attempts " + std::to_string(options.max_attempts) +
            " counted; the MPI world ends with that rank)");
        if (board) board->job_finished(job_id, "crashed", error);
        commit(
            StoreRecord::of_note(job_id, "crashed", error),
            AwaitingCommit{AwaitingCommit::Kind::kLostAttempt, -1, -1, job_id, "crashed", error});
        break;
      }
    }
    committer.wait_all();  // durable before the SIGKILL that follows
  };
  const auto note_stop = [&] {
    if (outcome.stopped) return;
    log("stop requested: no more jobs are handed out; running jobs checkpoint");
    outcome.stopped = true;
    journal_jobs_of_dead_ranks();
  };
  // Held workers wait for an answer (protocol.h); once a stop is requested they get kStop.
  const auto stop_held_workers = [&] {
    for (int held : scheduler.release_held()) {
      const int rank = rank_of_holder.at(held);
      outbox.send(rank, MsgTag::kStop, "{}");
      if (board) board->worker_stopped(rank);
      --active_workers;
    }
  };
  // Results are read and recorded after the worker's next request is answered (see kResult below),
  // in the order they arrived; every one is read before the loop ends.
  struct UnreadResult {
    int source = -1;
    Held held;
    std::string payload;
  };
  std::deque<UnreadResult> unread;
  constexpr std::size_t kMaxUnreadResults =
      64;  // bounds how long a result may wait while frames keep arriving
  const auto read_result = [&](const UnreadResult& unread_result) {
    const int source = unread_result.source;
    const ScheduledJob& job = *unread_result.held.job;
    const int holder = unread_result.held.holder;
    const bool leader = unread_result.held.leader;
    const std::string job_id = job.id;
    JobResult result;
    try {
      result =
          result_from_json_without_spec(nlohmann::json::parse(unread_result.payload), job.spec);
    } catch (const std::exception& e) {
      result.status = "failed";
      result.error = std::string("unreadable result from worker: ") + e.what();
    }
    if (result.job_id != job_id) {
      // A result that does not name the job it was given is recorded against the job that was sent.
      result.error = "worker " + std::to_string(source) + " returned a result for '" +
                     result.job_id + "' while holding '" + job_id + "'" +
                     (result.error.empty() ? "" : "; " + result.error);
      result.status = "failed";
      result.job_id = job_id;
      result.config_id = job.spec.config_id();
      result.spec = job.spec;
    }
    if (!result.ok() && result.status != "interrupted" && result.error.empty())
      result.error = "no error given";
    // Attempts of this run, after those that hung in earlier runs (each ended its run).
    const int attempt = scheduler.attempts(job_id) + lost_before(job_id);
    if (!result.runtime.is_object()) result.runtime = nlohmann::json::object();
    result.runtime["attempt"] = attempt;
    if (result.status == "interrupted") {
      if (scheduler.requeue(holder, job_id)) {  // no result file: a rerun resumes the job
        if (board)
          board->job_finished(job_id, "interrupted",
                              result.error);  // now: it may be reassigned at once
        AwaitingCommit then{
            AwaitingCommit::Kind::kInterrupted, -1, source, job_id, "interrupted", result.error};
        commit(StoreRecord::of_note(job_id, "interrupted", result.error), std::move(then));
      } else {
        log(job_id + " interrupted on rank " + std::to_string(source) +
            " (a group member; the job was requeued already)");
      }
    } else if (result.ok() && !leader) {
      // A group member's ok: the first rank's report decides and records the job; this one is free.
      if (scheduler.complete(holder, job_id, /*ok=*/true) != Fate::kMember) {
        throw std::logic_error("orchestrator: a group member's report decided job " + job_id);
      }
      log(job_id + " ok on rank " + std::to_string(source) +
          " (a group member; the job is recorded from its first rank)");
    } else if (result.ok()) {
      // Stays held until durable: counted done, and its dependents released, only then.
      if (board) board->job_reported(job_id);
      AwaitingCommit then{AwaitingCommit::Kind::kOk, holder, source, job_id, result.status, ""};
      commit(StoreRecord::of_result(std::move(result)), std::move(then));
    } else {
      // A failure's fate is decided now (a retry needs no durable record); the board hears of it
      // once durable, like any result.
      switch (scheduler.complete(holder, job_id, /*ok=*/false, result.error)) {
        case Fate::kDone:
          throw std::logic_error("orchestrator: a failed attempt of " + job_id +
                                 " was counted done");
        case Fate::kMember:
          // Its group's attempt had ended already (another member failed or was stopped first).
          log(job_id + " " + result.status + " on rank " + std::to_string(source) +
              " (a group member; the attempt had ended): " + result.error);
          break;
        case Fate::kRetry: {
          // No result file yet: the next attempt resumes from the job's checkpoint.
          const std::string detail = "attempt " + std::to_string(attempt) + " of " +
                                     std::to_string(options.max_attempts) + " failed on rank " +
                                     std::to_string(source) + ": " + result.error;
          AwaitingCommit then{AwaitingCommit::Kind::kRetry,
                              -1,
                              source,
                              job_id,
                              "failed (attempt " + std::to_string(attempt) + " of " +
                                  std::to_string(options.max_attempts) + "), retrying",
                              result.error};
          commit(StoreRecord::of_note(job_id, "retry", detail), std::move(then));
          if (board)
            board->job_finished(job_id, "retry",
                                result.error);  // now: it may be reassigned at once
          break;
        }
        case Fate::kQuarantined:
          result.status = "quarantined";
          [[fallthrough]];
        case Fate::kFailed: {
          result.runtime["attempt_errors"] = scheduler.attempt_errors(job_id);
          if (board) board->job_reported(job_id);
          AwaitingCommit then{
              AwaitingCommit::Kind::kFinal, -1, source, job_id, result.status, result.error};
          commit(StoreRecord::of_result(std::move(result)), std::move(then));
          break;
        }
      }
    }
    if (board) board->worker_seen(source, "");
    write_blocked();
  };
  const auto read_results = [&] {
    while (!unread.empty()) {
      const UnreadResult next = std::move(unread.front());
      unread.pop_front();
      read_result(next);
    }
  };
  // Idle probes back off from microseconds to 5 ms: a busy sweep is answered at once, an idle rank
  // 0 costs no core. Workers with nothing ready ask again after kWaitRetryMs.
  comm::Backoff idle(std::chrono::milliseconds(5));
  constexpr int kWaitRetryMs = 50;
  constexpr int kCommitRetryMs = 2;
  while (active_workers > 0) {
    settle_committed();
    if (found_hung_job()) break;
    if (stopping())
      note_stop();  // at once: after a rank's death the SIGKILL follows within a second
    if ((stopping() || outcome.stopped) && !scheduler.held().empty()) {
      note_stop();
      stop_held_workers();
      continue;
    }
    auto message = comm::poll_message(comm);
    if (!message) {
      outbox.progress();
      if (!unread.empty()) {
        read_results();
        continue;
      }
      idle.pause();
      continue;
    }
    idle.reset();
    const int source = message->source;
    if (message->tag == MsgTag::kRequestJob) {
      const nlohmann::json request = nlohmann::json::parse(message->payload);
      const bool worker_stopping = request.value("stopping", false);
      const bool ahead = request.value("ahead", false);  // the worker still runs a job
      const std::string host = request.value("host", std::string());
      if (board) board->worker_seen(source, host);
      if (const long pid = request.value("pid", 0L); pid > 0) process_of_rank[source] = {host, pid};
      if (ahead && (stopping() || outcome.stopped)) {
        // It is told to stop when it asks again as an idle worker, after reporting what it runs.
        outbox.send(source, MsgTag::kWait, R"({"retry_ms":0})");
        continue;
      }
      if (stopping() || worker_stopping) {
        note_stop();
        outbox.send(source, MsgTag::kStop, "{}");
        if (board) board->worker_stopped(source);
        --active_workers;
        continue;
      }
      const int holder = next_holder++;
      rank_of_holder[holder] = source;
      const Assignment assignment = ahead ? scheduler.next_ahead(holder) : scheduler.next(holder);
      switch (assignment.kind) {
        case Assignment::Kind::kJob: {
          const ScheduledJob& job = *assignment.job;
          std::string payload = nlohmann::json(comm::JobTicket{job.id, job.spec}).dump();
          // The scheduler's leader (first holder) gets group rank 0: its report decides the job and
          // only it writes the job's files.
          std::vector<int> ranks;
          for (int member : assignment.group) ranks.push_back(rank_of_holder.at(member));
          if (ranks.size() > 1) {
            comm::GroupJob group{job.spec, ranks,
                                 comm::kFirstGroupTag + groups_formed++ % comm::kGroupTagCount};
            payload = nlohmann::json(group).dump();
            std::string members;
            for (int r : group.ranks) members += (members.empty() ? "" : ",") + std::to_string(r);
            log(job.id + " starts on ranks " + members + " (a " +
                std::to_string(group.ranks.size()) + "-rank group)");
          }
          // A job taken ahead is not running yet: the board hears of it when the job before it
          // reports.
          if (jobs_of_worker[ranks.front()].empty()) {
            if (board) board->job_assigned(job.id, ranks.front());
            watch(job.id, ranks);
          }
          for (std::size_t i = 0; i < ranks.size(); ++i) {
            jobs_of_worker[ranks[i]].push_back(Held{assignment.job, assignment.group[i], i == 0});
            rank_of_holder.erase(assignment.group[i]);
            outbox.send(ranks[i], MsgTag::kJob, payload);
          }
          break;
        }
        case Assignment::Kind::kHold:
          // No answer yet: this worker is kept for a group job until enough workers are idle.
          log("rank " + std::to_string(source) + " held for a group job (" +
              std::to_string(scheduler.held().size()) + " held)");
          break;
        case Assignment::Kind::kWait: {
          rank_of_holder.erase(holder);
          // Waiting for a commit takes about one sync: ask again soon.
          const int retry_ms = ahead                                           ? 0
                               : committer.submitted() > committer.committed() ? kCommitRetryMs
                                                                               : kWaitRetryMs;
          outbox.send(source, MsgTag::kWait, nlohmann::json{{"retry_ms", retry_ms}}.dump());
          break;
        }
        case Assignment::Kind::kStop:
          rank_of_holder.erase(holder);
          outbox.send(source, MsgTag::kStop, "{}");
          if (board) board->worker_stopped(source);
          --active_workers;
          break;
      }
    } else if (message->tag == MsgTag::kResult) {
      auto held = jobs_of_worker.find(source);
      if (held == jobs_of_worker.end()) {
        throw std::runtime_error("orchestrator: result from worker " + std::to_string(source) +
                                 " that holds no job");
      }
      // A worker reports its jobs in the order it got them. It is free at once (its next request
      // follows this frame); reading and recording the result waits until no frame is waiting, so
      // the reply to that request is not held up by it.
      watched.erase(held->second.front().job->id);
      unread.push_back(UnreadResult{source, held->second.front(), std::move(message->payload)});
      held->second.pop_front();
      if (held->second.empty()) {
        jobs_of_worker.erase(held);
      } else {
        // Taken ahead; it runs now.
        if (board) board->job_assigned(held->second.front().job->id, source);
        watch(held->second.front().job->id, {source});
      }
      if (unread.size() >= kMaxUnreadResults) read_results();
    } else if (message->tag == MsgTag::kReturnJob) {
      // A job taken ahead, given back unstarted: pending again at once, no attempt used, nothing to
      // record. It is one the worker holds besides the one it runs (the first); without an id, the
      // last one.
      auto held = jobs_of_worker.find(source);
      const nlohmann::json returned =
          nlohmann::json::parse(message->payload, nullptr, /*allow_exceptions=*/false);
      const auto not_taken_ahead = [&] {
        return std::runtime_error("orchestrator: worker " + std::to_string(source) + " gave back " +
                                  message->payload + ", which is not a job it took ahead");
      };
      if (held == jobs_of_worker.end() || held->second.size() < 2) throw not_taken_ahead();
      std::deque<Held>& jobs = held->second;
      const auto taken =
          returned.is_object() && returned.contains("job_id")
              ? std::find_if(jobs.begin() + 1, jobs.end(),
                             [&](const Held& h) { return returned.at("job_id") == h.job->id; })
              : jobs.end() - 1;
      if (taken == jobs.end()) throw not_taken_ahead();
      const Held job = *taken;
      jobs.erase(taken);
      scheduler.requeue(job.holder, job.job->id);
      ++outcome.given_back;
      if (board) board->job_finished(job.job->id, "returned", "");
    } else if (message->tag == MsgTag::kHeartbeat) {
      // Advisory: a malformed beat is logged, never fatal, and needs no answer (protocol.h step 3).
      nlohmann::json beat =
          nlohmann::json::parse(message->payload, nullptr, /*allow_exceptions=*/false);
      if (!beat.is_object() || !beat.contains("job_id")) {
        log("ignoring a malformed heartbeat from rank " + std::to_string(source));
        continue;
      }
      ++outcome.heartbeats;
      const auto held = jobs_of_worker.find(source);
      if (held == jobs_of_worker.end() || beat.at("job_id") != held->second.front().job->id) {
        log("heartbeat from rank " + std::to_string(source) + " names job " +
            beat.at("job_id").dump() + ", which it does not hold");
      }
      if (beat.at("job_id").is_string()) {
        const auto w = watched.find(beat.at("job_id").get<std::string>());
        if (w != watched.end()) w->second.last_seen = std::chrono::steady_clock::now();
      }
      beat["rank"] = source;
      beat["seen_at"] = mil::utc_timestamp();
      outcome.last_heartbeat[source] = beat;
      if (options.on_heartbeat) options.on_heartbeat(source, beat);
      if (board && beat.at("job_id").is_string()) {
        board->worker_seen(source, "");
        try {
          board->job_progress(beat.at("job_id").get<std::string>(), beat.value("epoch", -1),
                              beat.value("epochs", -1), beat.value("eta_s", -1.0));
        } catch (const nlohmann::json::exception&) {
          log("ignoring a heartbeat with malformed progress from rank " + std::to_string(source));
        }
      }
    } else {
      throw std::runtime_error("orchestrator: unexpected tag " +
                               std::to_string(static_cast<int>(message->tag)) + " from rank " +
                               std::to_string(source));
    }
  }
  read_results();
  if (outcome.hung_job.empty()) {
    outbox.drain();
  } else {
    outbox.abandon();  // the hung ranks may never take what was sent to them; the caller ends the
                       // world
  }
  committer.wait_all();
  settle_committed();
  return outcome;
}

}  // namespace mil::orch
