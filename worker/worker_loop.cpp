#include "worker/worker_loop.h"

#include <unistd.h>

#include <optional>
#include <thread>

#include "mil/specs.h"
#include "worker/gradient_sync_factory.h"
#include "worker/job_group.h"
#include "worker/job_runner.h"
#include "worker/mpi_env.h"
#include "worker/mpi_transport.h"
#include "worker/runtime_info.h"

namespace mil::worker {
namespace {

/// The kHeartbeat payload (protocol.h).
std::string heartbeat_payload(const std::string& job_id, int epoch, int epochs, double eta_s) {
  return nlohmann::json{{"job_id", job_id}, {"epoch", epoch}, {"epochs", epochs}, {"eta_s", eta_s}}.dump();
}

}  // namespace

int run_worker(MPI_Comm comm, const std::function<void(const std::string&)>& log, const std::string& work_root,
               const std::atomic<bool>* stop_requested, const SupervisionOptions* supervision, const JobBody& body) {
  int rank = 0;
  MIL_MPI_CHECK(MPI_Comm_rank(comm, &rank));
  if (supervision != nullptr && work_root.empty()) {
    throw std::runtime_error("worker " + std::to_string(rank) + ": supervised jobs need a work folder");
  }
  const std::string host = host_name();
  const std::string hello = nlohmann::json{{"rank", rank}, {"host", host}}.dump();
  const std::string goodbye = nlohmann::json{{"rank", rank}, {"host", host}, {"stopping", true}}.dump();
  const auto report_interval = supervision ? supervision->report_interval : std::chrono::milliseconds(2000);
  // Supervised children fork from this rank's zygote, started once here (exec when it cannot serve).
  std::optional<ForkServer> zygote;
  SupervisionOptions supervised;
  if (supervision != nullptr) {
    supervised = *supervision;
    if (supervised.child_start == ChildStart::kFork && supervised.fork_server == nullptr && !body) {
      zygote.emplace(supervised.executable, log, work_root);
      supervised.fork_server = &*zygote;
    }
  }
  DatasetCache cache;
  RunOptions options;
  options.rank = rank;
  options.log = log;
  options.stop_requested = stop_requested;
  int jobs_run = 0;
  constexpr auto kPollInterval = std::chrono::milliseconds(5);
  for (;;) {
    const bool stopping = stop_requested != nullptr && stop_requested->load();
    send_message(comm, kOrchestratorRank, MsgTag::kRequestJob, stopping ? goodbye : hello);
    const Message reply = wait_message(comm, kOrchestratorRank, kPollInterval);
    switch (reply.tag) {
      case MsgTag::kStop:
        return jobs_run;
      case MsgTag::kWait: {
        const int retry_ms = nlohmann::json::parse(reply.payload).at("retry_ms").get<int>();
        std::this_thread::sleep_for(std::chrono::milliseconds(retry_ms));
        break;
      }
      case MsgTag::kJob: {
        JobResult result;
        // In this process: beats come from the training loop itself, at most one per interval.
        const auto run_in_process = [&](const JobSpec& spec, const std::string& work_dir, GradientSync* sync) {
          auto next_report = std::chrono::steady_clock::now() + report_interval;
          options.work_dir = work_dir;
          options.sync = sync;
          options.on_progress = [&](const JobProgress& p) {
            const auto now = std::chrono::steady_clock::now();
            if (now < next_report) return;
            next_report = now + report_interval;
            send_message(comm, kOrchestratorRank, MsgTag::kHeartbeat, heartbeat_payload(spec.id(), p.epoch, p.epochs, -1));
          };
          JobResult r = run_job(spec, options, cache);
          options.on_progress = nullptr;
          options.sync = nullptr;
          return r;
        };
        try {
          const nlohmann::json payload = nlohmann::json::parse(reply.payload);
          if (is_group_job(payload)) {
            // A data-parallel job on several worker ranks. It runs in this process even under
            // supervision: a child process is not in the MPI world, so it could not join the group.
            const GroupJob group = payload.get<GroupJob>();
            const JobSpec& spec = group.spec;
            const std::string work_dir = work_root.empty() ? std::string() : work_root + "/" + spec.id();
            std::string members;
            for (int r : group.ranks) members += (members.empty() ? "" : ",") + std::to_string(r);
            const bool leader = rank == group.ranks.front();
            if (log && leader) {
              log("[" + spec.id() + "] runs on ranks " + members + " (a " + std::to_string(group.ranks.size()) +
                  "-rank group), in the worker processes" +
                  (supervision != nullptr ? " (group jobs cannot run in child processes)" : ""));
            }
            if (body) {
              result = body(spec, work_dir);
            } else {
              result = [&] {
                const JobGroupComm job_comm(comm, group);
                const auto sync = make_gradient_sync(job_comm.comm(), options.device, [&](const std::string& line) {
                  if (log && leader) log("[" + spec.id() + "] " + line);
                });
                return run_in_process(spec, work_dir, sync.get());
              }();
            }
          } else {
            const JobSpec spec = payload.get<JobSpec>();
            const std::string work_dir = work_root.empty() ? std::string() : work_root + "/" + spec.id();
            if (body) {
              result = body(spec, work_dir);
            } else if (supervision != nullptr) {
              if (log) log("[" + spec.id() + "] started in a child process; output in " + work_dir + "/train.log");
              result = run_supervised_job(spec, work_dir, rank, supervised, stop_requested, [&](const Heartbeat& h) {
                send_message(comm, kOrchestratorRank, MsgTag::kHeartbeat,
                             heartbeat_payload(spec.id(), h.epoch, h.epochs, h.eta_s));
              });
            } else {
              result = run_in_process(spec, work_dir, nullptr);
            }
          }
        } catch (const std::exception& e) {
          // The spec could not be read or the group's communicator not built: report it without a job id;
          // rank 0 records it against the job it sent.
          result.status = "failed";
          result.error = std::string("starting the job: ") + e.what();
        }
        send_message(comm, kOrchestratorRank, MsgTag::kResult, nlohmann::json(result).dump());
        ++jobs_run;
        break;
      }
      default:
        throw std::runtime_error("worker " + std::to_string(rank) + ": unexpected message tag " +
                                 std::to_string(static_cast<int>(reply.tag)) + " from the orchestrator");
    }
  }
}

}  // namespace mil::worker
