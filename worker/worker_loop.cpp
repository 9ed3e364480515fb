#include "worker/worker_loop.h"

#include <unistd.h>

#include <algorithm>
#include <deque>
#include <optional>
#include <thread>

#include "comm/mpi_env.h"
#include "comm/mpi_transport.h"
#include "mil/core/runtime_info.h"
#include "mil/core/specs.h"
#include "worker/job_group_comm.h"
#include "worker/job_runner.h"
#include "worker/supervise/test_fault.h"
#include "worker/sync/gradient_sync_factory.h"

namespace mil::worker {
namespace {

/// The kHeartbeat payload (protocol.h).
std::string heartbeat_payload(const std::string& job_id, int epoch, int epochs, double eta_s) {
  return nlohmann::json{{"job_id", job_id}, {"epoch", epoch}, {"epochs", epochs}, {"eta_s", eta_s}}
      .dump();
}

/// A worker whose last job took less than this asks for its next job ahead (protocol.h): for
/// shorter jobs the round trip to rank 0 is a visible share of each job, for longer ones asking
/// ahead gains nothing measurable and only risks a job waiting behind a long one.
constexpr auto kAskAheadBelow = std::chrono::milliseconds(50);
/// A job taken ahead is given back unstarted once the job before it has run this long, so a job
/// never waits long behind one that turned out long while another worker could run it.
constexpr auto kGiveBackAfter = std::chrono::milliseconds(500);
/// How many jobs a worker asks for ahead after a short job: as many as that job's length fits into
/// kAheadHorizon, from 1 to kMaxAheadDepth. Rank 0 takes about 0.1 ms to answer while busy; for
/// jobs of microseconds one job ahead left the worker waiting on every answer (2 ranks, 20k no-op
/// jobs: 1 ahead 3.7 s, 2: 3.0 s, 4: 2.6 s, 8: 2.1 s). Deeper gained nothing while rank 0 sent with
/// blocking MPI_Send; since it queues its sends, 16 beats 8 (12 runs each: 2 ranks 1.61 vs 1.96 s,
/// 4 ranks 1.64 vs 1.77 s). The horizon bounds the work one worker holds back from the others at
/// the end of a sweep.
constexpr auto kAheadHorizon = std::chrono::milliseconds(2);
constexpr int kMaxAheadDepth = 16;

int ahead_depth(std::chrono::steady_clock::duration last_job) {
  if (last_job >= kAskAheadBelow) return 0;
  const auto fits = kAheadHorizon / std::max<std::chrono::steady_clock::duration>(
                                        last_job, std::chrono::microseconds(1));
  return static_cast<int>(std::clamp<decltype(fits)>(fits, 1, kMaxAheadDepth));
}

}  // namespace

int run_worker(MPI_Comm comm, const std::function<void(const std::string&)>& log,
               const std::string& work_root, const std::atomic<bool>* stop_requested,
               const SupervisionOptions* supervision, const JobBody& body) {
  int rank = 0;
  MIL_MPI_CHECK(MPI_Comm_rank(comm, &rank));
  if (supervision != nullptr && work_root.empty()) {
    throw std::runtime_error("worker " + std::to_string(rank) +
                             ": supervised jobs need a work folder");
  }
  const std::string host = host_name();
  // The pid lets rank 0 see, on a stop, whether this rank died (orchestrator_loop.cpp).
  const long pid = static_cast<long>(::getpid());
  const std::string hello = nlohmann::json{{"rank", rank}, {"host", host}, {"pid", pid}}.dump();
  const std::string goodbye =
      nlohmann::json{{"rank", rank}, {"host", host}, {"pid", pid}, {"stopping", true}}.dump();
  const std::string ahead_request =
      nlohmann::json{{"rank", rank}, {"host", host}, {"pid", pid}, {"ahead", true}}.dump();
  const auto report_interval =
      supervision ? supervision->report_interval : std::chrono::milliseconds(2000);
  // Supervised children fork from this rank's zygote, started once here (exec when it cannot
  // serve).
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
  using Clock = std::chrono::steady_clock;
  // Asking ahead (protocol.h): at most ahead_depth() requests unanswered or answers not yet run.
  // Answers are taken in order, some early (while the job before them runs, to give jobs back).
  int depth = 0;  // ahead_depth() of the last job
  int ahead_unanswered = 0;
  std::deque<comm::Message> ahead;  // answers received and not yet acted on, oldest first
  const auto give_back = [&](const comm::Message& job) {
    nlohmann::json payload = nlohmann::json::object();
    try {
      payload["job_id"] = nlohmann::json::parse(job.payload)
                              .at("job_id");  // a JobTicket: only one-rank jobs go ahead
    } catch (const std::exception&) {
      // Rank 0 then takes back the last job it sent to this worker.
    }
    comm::send_message(comm, comm::kOrchestratorRank, comm::MsgTag::kReturnJob, payload.dump());
  };
  // Called while a job runs: once it has run kGiveBackAfter, every job received ahead goes back to
  // rank 0 (answers still on their way are given back on later calls, or run once their turn
  // comes).
  const auto give_back_if_running_long = [&](Clock::time_point started) {
    if (ahead_unanswered == 0 && ahead.empty()) return;
    if (Clock::now() - started < kGiveBackAfter) return;
    while (ahead_unanswered > 0) {
      auto answer = comm::poll_message(comm, comm::kOrchestratorRank);
      if (!answer) break;
      ahead.push_back(std::move(*answer));
      --ahead_unanswered;
    }
    for (const comm::Message& answer : ahead) {
      if (answer.tag == comm::MsgTag::kJob) give_back(answer);
    }
    ahead.clear();
  };
  for (;;) {
    const bool stopping = stop_requested != nullptr && stop_requested->load();
    comm::Message reply;
    if (!ahead.empty() || ahead_unanswered > 0) {
      if (ahead.empty()) {
        ahead.push_back(comm::wait_message(comm, comm::kOrchestratorRank, kPollInterval));
        --ahead_unanswered;
      }
      reply = std::move(ahead.front());
      ahead.pop_front();
      if (reply.tag == comm::MsgTag::kWait)
        continue;  // nothing was ready ahead: ask again as an idle worker
      if (reply.tag == comm::MsgTag::kJob && stopping) {
        give_back(reply);
        continue;
      }
    } else {
      comm::send_message(comm, comm::kOrchestratorRank, comm::MsgTag::kRequestJob,
                         stopping ? goodbye : hello);
      reply = comm::wait_message(comm, comm::kOrchestratorRank, kPollInterval);
    }
    switch (reply.tag) {
      case comm::MsgTag::kStop:
        return jobs_run;
      case comm::MsgTag::kWait: {
        const int retry_ms = nlohmann::json::parse(reply.payload).at("retry_ms").get<int>();
        std::this_thread::sleep_for(std::chrono::milliseconds(retry_ms));
        break;
      }
      case comm::MsgTag::kJob: {
        JobResult result;
        std::string job_id;  // as rank 0 sent it (a group job's is computed here)
        const auto job_started = Clock::now();
        // In this process: beats come from the training loop itself, at most one per interval.
        const auto run_in_process = [&](const JobSpec& spec, const std::string& work_dir,
                                        GradientSync* sync) {
          const auto started = Clock::now();
          auto next_report = started + report_interval;
          options.work_dir = work_dir;
          options.sync = sync;
          options.on_progress = [&](const JobProgress& p) {
            inject_test_fault(spec, p, rank);
            give_back_if_running_long(started);
            const auto now = Clock::now();
            if (now < next_report) return;
            next_report = now + report_interval;
            comm::send_message(comm, comm::kOrchestratorRank, comm::MsgTag::kHeartbeat,
                               heartbeat_payload(job_id, p.epoch, p.epochs, -1));
          };
          JobResult r = run_job(spec, options, cache);
          options.on_progress = nullptr;
          options.sync = nullptr;
          return r;
        };
        try {
          const nlohmann::json payload = nlohmann::json::parse(reply.payload);
          if (comm::is_group_job(payload)) {
            // A data-parallel job on several worker ranks. It runs in this process even under
            // supervision: a child process is not in the MPI world, so it could not join the group.
            const comm::GroupJob group = payload.get<comm::GroupJob>();
            const JobSpec& spec = group.spec;
            job_id = spec.id();
            const std::string work_dir =
                work_root.empty() ? std::string() : work_root + "/" + job_id;
            std::string members;
            for (int r : group.ranks) members += (members.empty() ? "" : ",") + std::to_string(r);
            const bool leader = rank == group.ranks.front();
            if (log && leader) {
              log("[" + job_id + "] runs on ranks " + members + " (a " +
                  std::to_string(group.ranks.size()) + "-rank group), in the worker processes" +
                  (supervision != nullptr ? " (group jobs cannot run in child processes)" : ""));
            }
            if (body) {
              result = body(spec, work_dir, [&] { give_back_if_running_long(job_started); });
            } else {
              result = [&] {
                const JobGroupComm job_comm(comm, group);
                const auto sync = make_gradient_sync(job_comm.comm(), options.device,
                                                     [&](const std::string& line) {
                                                       if (log && leader)
                                                         log("[" + job_id + "] " + line);
                                                     });
                return run_in_process(spec, work_dir, sync.get());
              }();
            }
          } else {
            const comm::JobTicket ticket = payload.get<comm::JobTicket>();
            const JobSpec& spec = ticket.spec;
            job_id = ticket.job_id;
            while (!stopping && ahead_unanswered + int(ahead.size()) < depth) {
              comm::send_message(comm, comm::kOrchestratorRank, comm::MsgTag::kRequestJob,
                                 ahead_request);
              ++ahead_unanswered;
            }
            const std::string work_dir =
                work_root.empty() ? std::string() : work_root + "/" + job_id;
            if (body) {
              result = body(spec, work_dir, [&] { give_back_if_running_long(job_started); });
            } else if (supervision != nullptr) {
              if (log)
                log("[" + job_id + "] started in a child process; output in " + work_dir +
                    "/train.log");
              result = run_supervised_job(
                  spec, work_dir, rank, supervised, stop_requested,
                  [&](const Heartbeat& h) {
                    comm::send_message(comm, comm::kOrchestratorRank, comm::MsgTag::kHeartbeat,
                                       heartbeat_payload(job_id, h.epoch, h.epochs, h.eta_s));
                  },
                  [&] { give_back_if_running_long(job_started); });
            } else {
              result = run_in_process(spec, work_dir, nullptr);
            }
          }
        } catch (const std::exception& e) {
          // The spec could not be read or the group's communicator not built: report it without a
          // job id; rank 0 records it against the job it sent.
          result.status = "failed";
          result.error = std::string("starting the job: ") + e.what();
        }
        if (result.job_id.empty()) result.job_id = job_id;
        // Without the spec: rank 0 holds it (protocol.h).
        comm::send_message(comm, comm::kOrchestratorRank, comm::MsgTag::kResult,
                           result_json_without_spec(result).dump());
        depth = ahead_depth(Clock::now() - job_started);
        ++jobs_run;
        break;
      }
      default:
        throw std::runtime_error("worker " + std::to_string(rank) + ": unexpected message tag " +
                                 std::to_string(static_cast<int>(reply.tag)) +
                                 " from the orchestrator");
    }
  }
}

}  // namespace mil::worker
