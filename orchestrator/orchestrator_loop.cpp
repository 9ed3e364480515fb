#include "orchestrator/orchestrator_loop.h"

#include <map>
#include <thread>

#include "orchestrator/job_graph.h"
#include "orchestrator/scheduler.h"
#include "worker/job_group.h"
#include "worker/runtime_info.h"
#include "worker/mpi_env.h"
#include "worker/mpi_transport.h"

namespace mil::orch {

using worker::MsgTag;

SweepOutcome run_orchestrator(MPI_Comm comm, const std::vector<JobSpec>& jobs, ResultsStore& store,
                              const std::function<void(const std::string&)>& logger,
                              const std::atomic<bool>* stop_requested, const OrchestratorOptions& options) {
  StatusBoard* const board = options.board;
  const auto stopping = [stop_requested] { return stop_requested != nullptr && stop_requested->load(); };
  const auto log = [&logger](const std::string& line) {
    if (logger) logger(line);
  };
  int size = 1;
  MIL_MPI_CHECK(MPI_Comm_size(comm, &size));
  if (size < 2) throw std::runtime_error("a sweep needs at least 2 ranks (rank 0 orchestrates); run it under mpirun -n 3");

  const int workers = size - 1;
  for (const JobSpec& job : jobs) {
    if (job.train.ranks > workers) {
      throw std::runtime_error("job " + job.id() + " (dataset '" + job.dataset.name + "', model '" + job.model.name +
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
  Scheduler scheduler(std::move(scheduled), done, options.max_attempts, held_back);

  SweepOutcome outcome;
  outcome.jobs = jobs.size();
  outcome.skipped = scheduler.done_count();
  const auto write_blocked = [&] {
    for (const auto& [blocked, dependency] : scheduler.take_blocked()) {
      const JobResult failed = dependency_failed_result(blocked->spec, blocked->id, dependency);
      store.write(failed);
      ++outcome.failed;
      if (board) board->job_finished(failed.job_id, failed.status, failed.error);
      log(blocked->id + " failed: " + failed.error);
    }
  };
  if (board) {
    std::vector<StatusJobInfo> infos;
    for (const JobSpec& spec : jobs) infos.push_back(status_job_info(spec));
    board->sweep_started(infos, done);
  }
  write_blocked();  // dependents of jobs quarantined earlier
  outcome.held_back = scheduler.failed_count() - outcome.failed;
  log("sweep: " + std::to_string(jobs.size()) + " jobs, " + std::to_string(outcome.skipped) +
      " already done, " + std::to_string(size - 1) + " workers, up to " + std::to_string(options.max_attempts) +
      " attempts per job" +
      (outcome.held_back ? "; " + std::to_string(outcome.held_back) +
                               " quarantined earlier and not rerun (--retry-failed reruns them)"
                         : ""));

  std::map<int, const ScheduledJob*> job_of_worker;  // what each busy worker holds, to credit its result
  int active_workers = size - 1;
  int groups_formed = 0;  // numbers the tags of group communicators
  // Held workers wait for an answer (protocol.h); once a stop is requested they get kStop.
  const auto stop_held_workers = [&] {
    for (int held : scheduler.release_held()) {
      worker::send_message(comm, held, MsgTag::kStop, "{}");
      if (board) board->worker_stopped(held);
      --active_workers;
    }
  };
  // Idle probes back off from microseconds to 5 ms: a busy sweep is answered at once, an idle rank 0
  // costs no core. Workers with nothing ready ask again after kWaitRetryMs.
  worker::Backoff idle(std::chrono::milliseconds(5));
  constexpr int kWaitRetryMs = 50;
  while (active_workers > 0) {
    if ((stopping() || outcome.stopped) && !scheduler.held().empty()) {
      if (!outcome.stopped) log("stop requested: no more jobs are handed out; running jobs checkpoint");
      outcome.stopped = true;
      stop_held_workers();
      continue;
    }
    auto message = worker::poll_message(comm);
    if (!message) {
      idle.pause();
      continue;
    }
    idle.reset();
    const int source = message->source;
    if (message->tag == MsgTag::kRequestJob) {
      const nlohmann::json request = nlohmann::json::parse(message->payload);
      const bool worker_stopping = request.value("stopping", false);
      if (board) board->worker_seen(source, request.value("host", std::string()));
      if (stopping() || worker_stopping) {
        if (!outcome.stopped) log("stop requested: no more jobs are handed out; running jobs checkpoint");
        outcome.stopped = true;
        worker::send_message(comm, source, MsgTag::kStop, "{}");
        if (board) board->worker_stopped(source);
        --active_workers;
        continue;
      }
      const Assignment assignment = scheduler.next(source);
      switch (assignment.kind) {
        case Assignment::Kind::kJob: {
          const ScheduledJob& job = *assignment.job;
          std::string payload = nlohmann::json(job.spec).dump();
          if (assignment.group.size() > 1) {
            worker::GroupJob group{job.spec, assignment.group,
                                   worker::kFirstGroupTag + groups_formed++ % worker::kGroupTagCount};
            payload = nlohmann::json(group).dump();
            std::string members;
            for (int r : group.ranks) members += (members.empty() ? "" : ",") + std::to_string(r);
            log(job.id + " starts on ranks " + members + " (a " + std::to_string(group.ranks.size()) + "-rank group)");
          }
          if (board) board->job_assigned(job.id, assignment.group.front());
          for (int member : assignment.group) {
            job_of_worker[member] = assignment.job;
            worker::send_message(comm, member, MsgTag::kJob, payload);
          }
          break;
        }
        case Assignment::Kind::kHold:
          // No answer yet: this worker is kept for a group job until enough workers are idle.
          log("rank " + std::to_string(source) + " held for a group job (" + std::to_string(scheduler.held().size()) +
              " held)");
          break;
        case Assignment::Kind::kWait:
          worker::send_message(comm, source, MsgTag::kWait, nlohmann::json{{"retry_ms", kWaitRetryMs}}.dump());
          break;
        case Assignment::Kind::kStop:
          worker::send_message(comm, source, MsgTag::kStop, "{}");
          if (board) board->worker_stopped(source);
          --active_workers;
          break;
      }
    } else if (message->tag == MsgTag::kResult) {
      auto held = job_of_worker.find(source);
      if (held == job_of_worker.end()) {
        throw std::runtime_error("orchestrator: result from worker " + std::to_string(source) + " that holds no job");
      }
      const ScheduledJob& job = *held->second;
      const std::string job_id = job.id;
      job_of_worker.erase(held);
      JobResult result;
      try {
        result = nlohmann::json::parse(message->payload).get<JobResult>();
      } catch (const std::exception& e) {
        result.status = "failed";
        result.error = std::string("unreadable result from worker: ") + e.what();
      }
      if (result.job_id != job_id) {
        // A result that does not name the job it was given is recorded against the job that was sent.
        result.error = "worker " + std::to_string(source) + " returned a result for '" + result.job_id +
                       "' while holding '" + job_id + "'" + (result.error.empty() ? "" : "; " + result.error);
        result.status = "failed";
        result.job_id = job_id;
        result.config_id = job.spec.config_id();
        result.spec = job.spec;
      }
      if (!result.ok() && result.status != "interrupted" && result.error.empty()) result.error = "no error given";
      const int attempt = scheduler.attempts(job_id);
      if (!result.runtime.is_object()) result.runtime = nlohmann::json::object();
      result.runtime["attempt"] = attempt;
      std::string status = result.status;
      if (result.status == "interrupted") {
        if (scheduler.requeue(source, job_id)) {
          store.note(job_id, "interrupted", result.error);  // no result file: a rerun resumes the job
          ++outcome.interrupted;
          if (board) board->job_finished(job_id, "interrupted", result.error);
        } else {
          status = "interrupted (a group member; the job was requeued already)";
        }
      } else {
        switch (scheduler.complete(source, job_id, result.ok(), result.error)) {
          case Fate::kMember:
            // A group member whose report does not decide the job: it is free, nothing is recorded.
            if (board) board->worker_seen(source, "");
            log(job_id + " " + result.status + " on rank " + std::to_string(source) +
                " (a group member; the job is recorded from its first rank)");
            continue;
          case Fate::kDone:
            store.write(result);
            ++outcome.ran_ok;
            if (board) board->job_finished(job_id, result.status, result.error);
            break;
          case Fate::kRetry:
            // No result file yet: the next attempt resumes from the job's checkpoint.
            store.note(job_id, "retry",
                       "attempt " + std::to_string(attempt) + " of " + std::to_string(options.max_attempts) +
                           " failed on rank " + std::to_string(source) + ": " + result.error);
            ++outcome.retries;
            if (board) board->job_finished(job_id, "retry", result.error);
            status = "failed (attempt " + std::to_string(attempt) + " of " + std::to_string(options.max_attempts) +
                     "), retrying";
            break;
          case Fate::kQuarantined:
            result.status = status = "quarantined";
            result.runtime["attempt_errors"] = scheduler.attempt_errors(job_id);
            store.write(result);
            ++outcome.quarantined;
            if (board) board->job_finished(job_id, "quarantined", result.error);
            break;
          case Fate::kFailed:
            result.runtime["attempt_errors"] = scheduler.attempt_errors(job_id);
            store.write(result);
            ++outcome.failed;
            if (board) board->job_finished(job_id, "failed", result.error);
            break;
        }
        if (board) board->worker_seen(source, "");
      }
      write_blocked();
      const std::size_t finished = scheduler.done_count() + scheduler.failed_count();
      log("[" + std::to_string(finished) + "/" + std::to_string(jobs.size()) + "] " + job_id + " " + status +
          " on rank " + std::to_string(source) + (result.ok() ? "" : ": " + result.error));
    } else if (message->tag == MsgTag::kHeartbeat) {
      // Advisory: a malformed beat is logged, never fatal, and needs no answer (protocol.h step 3).
      nlohmann::json beat = nlohmann::json::parse(message->payload, nullptr, /*allow_exceptions=*/false);
      if (!beat.is_object() || !beat.contains("job_id")) {
        log("ignoring a malformed heartbeat from rank " + std::to_string(source));
        continue;
      }
      ++outcome.heartbeats;
      const auto held = job_of_worker.find(source);
      if (held == job_of_worker.end() || beat.at("job_id") != held->second->id) {
        log("heartbeat from rank " + std::to_string(source) + " names job " + beat.at("job_id").dump() +
            ", which it does not hold");
      }
      beat["rank"] = source;
      beat["seen_at"] = worker::utc_timestamp();
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
      throw std::runtime_error("orchestrator: unexpected tag " + std::to_string(static_cast<int>(message->tag)) +
                               " from rank " + std::to_string(source));
    }
  }
  return outcome;
}

}  // namespace mil::orch
