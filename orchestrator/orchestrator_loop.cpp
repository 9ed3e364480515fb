#include "orchestrator/orchestrator_loop.h"

#include <map>
#include <thread>

#include "orchestrator/job_graph.h"
#include "orchestrator/scheduler.h"
#include "worker/runtime_info.h"
#include "worker/mpi_env.h"
#include "worker/mpi_transport.h"

namespace mil::orch {

using worker::MsgTag;

SweepOutcome run_orchestrator(MPI_Comm comm, const std::vector<JobSpec>& jobs, ResultsStore& store,
                              const std::function<void(const std::string&)>& logger,
                              const std::atomic<bool>* stop_requested, StatusBoard* board) {
  const auto stopping = [stop_requested] { return stop_requested != nullptr && stop_requested->load(); };
  const auto log = [&logger](const std::string& line) {
    if (logger) logger(line);
  };
  int size = 1;
  MIL_MPI_CHECK(MPI_Comm_size(comm, &size));
  if (size < 2) throw std::runtime_error("a sweep needs at least 2 ranks (rank 0 orchestrates); run it under mpirun -n 3");

  std::vector<ScheduledJob> scheduled = schedule_with_dependencies(jobs);
  const std::set<std::string> done = store.completed_ids();
  Scheduler scheduler(std::move(scheduled), done);

  SweepOutcome outcome;
  outcome.jobs = jobs.size();
  outcome.skipped = scheduler.done_count();
  if (board) {
    std::vector<StatusJobInfo> infos;
    for (const JobSpec& spec : jobs) infos.push_back(status_job_info(spec));
    board->sweep_started(infos, done);
  }
  log("sweep: " + std::to_string(jobs.size()) + " jobs, " + std::to_string(outcome.skipped) +
      " already done, " + std::to_string(size - 1) + " workers");

  std::map<int, const ScheduledJob*> job_of_worker;  // what each busy worker holds, to credit its result
  int active_workers = size - 1;
  constexpr auto kIdleSleep = std::chrono::milliseconds(5);
  constexpr int kWaitRetryMs = 200;
  while (active_workers > 0) {
    auto message = worker::poll_message(comm);
    if (!message) {
      std::this_thread::sleep_for(kIdleSleep);
      continue;
    }
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
        case Assignment::Kind::kJob:
          job_of_worker[source] = assignment.job;
          if (board) board->job_assigned(assignment.job->id, source);
          worker::send_message(comm, source, MsgTag::kJob, nlohmann::json(assignment.job->spec).dump());
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
      if (result.status == "interrupted") {
        store.note(job_id, "interrupted", result.error);  // no result file: a rerun resumes the job
        ++outcome.interrupted;
      } else {
        store.write(result);
        result.ok() ? ++outcome.ran_ok : ++outcome.failed;
      }
      scheduler.complete(source, job_id, result.ok());
      if (board) {
        board->worker_seen(source, "");
        board->job_finished(job_id, result.status, result.error);
      }
      for (const auto& [blocked, dependency] : scheduler.take_blocked()) {
        JobResult failed;
        failed.job_id = blocked->id;
        failed.config_id = blocked->spec.config_id();
        failed.spec = blocked->spec;
        failed.status = "failed";
        failed.error = "not run: the job it depends on (" + dependency + ", its teacher baseline) failed";
        failed.runtime = {{"finished_at", worker::utc_timestamp()}};
        store.write(failed);
        ++outcome.failed;
        if (board) board->job_finished(failed.job_id, failed.status, failed.error);
        log(blocked->id + " failed: " + failed.error);
      }
      const std::size_t finished = scheduler.done_count() + scheduler.failed_count();
      log("[" + std::to_string(finished) + "/" + std::to_string(jobs.size()) + "] " + job_id + " " + result.status +
          " on rank " + std::to_string(source) + (result.ok() ? "" : ": " + result.error));
    } else {
      throw std::runtime_error("orchestrator: unexpected tag " + std::to_string(static_cast<int>(message->tag)) +
                               " from rank " + std::to_string(source));
    }
  }
  return outcome;
}

}  // namespace mil::orch
