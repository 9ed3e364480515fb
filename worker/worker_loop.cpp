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

/// How often a worker waiting for rank 0's answer probes for it, at most.
constexpr auto kPollInterval = std::chrono::milliseconds(5);

using Clock = std::chrono::steady_clock;
using Logger = std::function<void(const std::string&)>;

/// This rank in `comm`; throws when supervision is asked for without a work folder.
int checked_rank(MPI_Comm comm, const std::string& work_root,
                 const SupervisionOptions* supervision) {
  int rank = 0;
  MIL_MPI_CHECK(MPI_Comm_rank(comm, &rank));
  if (supervision != nullptr && work_root.empty()) {
    throw std::runtime_error("worker " + std::to_string(rank) +
                             ": supervised jobs need a work folder");
  }
  return rank;
}

/// The kRequestJob payload (protocol.h step 1) with `extra` added ("stopping" or "ahead").
/// The pid lets rank 0 see, on a stop, whether this rank died (orchestrator_loop.cpp).
/// `device` (a GPU-packed sweep's, named in an idle worker's request) adds its key and memory.
std::string job_request(int rank, const std::string& host, long pid, const char* extra = nullptr,
                        const WorkerDevice* device = nullptr) {
  nlohmann::json request{{"rank", rank}, {"host", host}, {"pid", pid}};
  if (extra != nullptr) request[extra] = true;
  if (device != nullptr && !device->key.empty()) {
    request["device"] = device->key;
    request["device_memory"] = device->memory_bytes;
  }
  return request.dump();
}

/// One worker rank during one run_worker call (worker_loop.h): asks rank 0 for jobs (some ahead),
/// runs them, reports them. Construct it, then call run() once.
class WorkerLoop {
 public:
  /// Throws when supervision is asked for without a work folder; starts the rank's zygote when
  /// supervised children fork.
  WorkerLoop(MPI_Comm comm, const Logger& log, const std::string& work_root,
             const std::atomic<bool>* stop_requested, const SupervisionOptions* supervision,
             const JobBody& body, const WorkerDevice& device);
  WorkerLoop(const WorkerLoop&) = delete;  // supervised_ points into zygote_
  WorkerLoop& operator=(const WorkerLoop&) = delete;

  /// Runs jobs until rank 0 sends kStop; returns how many.
  int run();

 private:
  /// The next answer of rank 0 to act on: the oldest one to a request sent ahead, else the answer
  /// to a request sent now as an idle worker. Nothing when an answer taken ahead needs no action
  /// (kWait, or a job given back on a stop): then the worker asks again.
  std::optional<comm::Message> next_answer(bool stopping);
  /// Asks for jobs ahead (protocol.h), up to depth_ requests unanswered or answers not yet run.
  void ask_ahead(bool stopping);
  /// Gives a job taken ahead back to rank 0 unstarted (kReturnJob).
  void give_back(const comm::Message& job);
  /// Called while a job runs: once it has run kGiveBackAfter, every job received ahead goes back to
  /// rank 0 (answers still on their way are given back on later calls, or run once their turn
  /// comes).
  void give_back_if_running_long(Clock::time_point started);

  /// Runs the job of a kJob answer and reports it (protocol.h steps 2 to 4).
  void take_job(const comm::Message& job, bool stopping);
  /// A data-parallel job on several worker ranks. It runs in this process even under supervision:
  /// a child process is not in the MPI world, so it could not join the group.
  JobResult run_group_job(const comm::GroupJob& group);
  /// A job on this rank alone: the body, a supervised child process, or this process.
  JobResult run_one_rank_job(const comm::JobTicket& ticket, bool stopping);
  /// Runs `spec` in this process (with `sync`, the group's, for a group job); heartbeats come from
  /// the training loop itself, at most one per report_interval_.
  JobResult run_in_process(const JobSpec& spec, const std::string& work_dir, GradientSync* sync);
  /// Sends kResult (without the spec: rank 0 holds it) and sets how far to ask ahead next.
  void report(JobResult result);

  /// The work folder of job `job_id` ("" without a work root).
  std::string work_dir_of(const std::string& job_id) const {
    return work_root_.empty() ? std::string() : work_root_ + "/" + job_id;
  }
  /// Sends a kHeartbeat (protocol.h step 3) for the running job.
  void send_heartbeat(int epoch, int epochs, double eta_s) const {
    comm::send_message(comm_, comm::kOrchestratorRank, comm::MsgTag::kHeartbeat,
                       heartbeat_payload(job_id_, epoch, epochs, eta_s));
  }

  MPI_Comm comm_;                                  ///< Rank 0 and the workers.
  const Logger& log_;                              ///< Progress lines; may be empty.
  const std::string& work_root_;                   ///< Holds a folder per job; "" = none.
  const std::atomic<bool>* const stop_requested_;  ///< Set on a stop request; may be null.
  const SupervisionOptions* const supervision_;    ///< Null: jobs run in this process.
  const JobBody& body_;              ///< Replaces the built-in job body; may be empty.
  const int rank_;                   ///< This rank in comm_.
  const std::string host_;           ///< This host, told to rank 0.
  const long pid_;                   ///< This process, told to rank 0.
  const std::string hello_;          ///< The request of an idle worker.
  const std::string goodbye_;        ///< The request of a worker told to stop: it wants kStop.
  const std::string ahead_request_;  ///< The request of a worker that still runs a job.
  /// How often a running job beats (supervision's setting, else 2 s).
  const std::chrono::milliseconds report_interval_;
  /// Supervised children fork from this rank's zygote, started once here (exec when it cannot
  /// serve).
  std::optional<ForkServer> zygote_;
  SupervisionOptions supervised_;  ///< *supervision_, with the zygote when one was started.
  DatasetCache cache_;             ///< The datasets of this worker's recent jobs.
  RunOptions options_;             ///< For run_job: this rank, the log, the stop flag.
  int jobs_run_ = 0;               ///< Jobs received with kJob and reported.
  int depth_ = 0;                  ///< ahead_depth() of the last job.
  int ahead_unanswered_ = 0;       ///< Requests sent ahead and not answered yet.
  /// Answers to requests sent ahead, received and not yet acted on, oldest first. Answers are
  /// taken in order, some early (while the job before them runs, to give jobs back).
  std::deque<comm::Message> ahead_;
  std::string
      job_id_;  ///< The running job's id as rank 0 sent it (a group job's is computed here).
  Clock::time_point job_started_;  ///< When the running job was received.
};

WorkerLoop::WorkerLoop(MPI_Comm comm, const Logger& log, const std::string& work_root,
                       const std::atomic<bool>* stop_requested,
                       const SupervisionOptions* supervision, const JobBody& body,
                       const WorkerDevice& device)
    : comm_(comm),
      log_(log),
      work_root_(work_root),
      stop_requested_(stop_requested),
      supervision_(supervision),
      body_(body),
      rank_(checked_rank(comm, work_root, supervision)),
      host_(host_name()),
      pid_(static_cast<long>(::getpid())),
      hello_(job_request(rank_, host_, pid_, /*extra=*/nullptr, &device)),
      goodbye_(job_request(rank_, host_, pid_, "stopping")),
      ahead_request_(job_request(rank_, host_, pid_, "ahead")),
      report_interval_(supervision ? supervision->report_interval
                                   : std::chrono::milliseconds(2000)) {
  if (supervision_ != nullptr) {
    supervised_ = *supervision_;
    supervised_.device = device.slot.device_name();
    if (supervised_.child_start == ChildStart::kFork && supervised_.fork_server == nullptr &&
        !body_) {
      zygote_.emplace(supervised_.executable, log_, work_root_);
      supervised_.fork_server = &*zygote_;
    }
  }
  options_.rank = rank_;
  options_.log = log_;
  options_.stop_requested = stop_requested_;
  options_.device = c10::Device(device.slot.device_name());
}

int WorkerLoop::run() {
  for (;;) {
    const bool stopping = stop_requested_ != nullptr && stop_requested_->load();
    const std::optional<comm::Message> reply = next_answer(stopping);
    if (!reply) continue;
    switch (reply->tag) {
      case comm::MsgTag::kStop:
        return jobs_run_;
      case comm::MsgTag::kWait: {
        const int retry_ms = nlohmann::json::parse(reply->payload).at("retry_ms").get<int>();
        std::this_thread::sleep_for(std::chrono::milliseconds(retry_ms));
        break;
      }
      case comm::MsgTag::kJob:
        take_job(*reply, stopping);
        break;
      default:
        throw std::runtime_error("worker " + std::to_string(rank_) + ": unexpected message tag " +
                                 std::to_string(static_cast<int>(reply->tag)) +
                                 " from the orchestrator");
    }
  }
}

std::optional<comm::Message> WorkerLoop::next_answer(bool stopping) {
  if (ahead_.empty() && ahead_unanswered_ == 0) {
    comm::send_message(comm_, comm::kOrchestratorRank, comm::MsgTag::kRequestJob,
                       stopping ? goodbye_ : hello_);
    return comm::wait_message(comm_, comm::kOrchestratorRank, kPollInterval);
  }
  if (ahead_.empty()) {
    ahead_.push_back(comm::wait_message(comm_, comm::kOrchestratorRank, kPollInterval));
    --ahead_unanswered_;
  }
  comm::Message reply = std::move(ahead_.front());
  ahead_.pop_front();
  if (reply.tag == comm::MsgTag::kWait)
    return std::nullopt;  // nothing was ready ahead: ask again as an idle worker
  if (reply.tag == comm::MsgTag::kJob && stopping) {
    give_back(reply);
    return std::nullopt;
  }
  return reply;
}

void WorkerLoop::ask_ahead(bool stopping) {
  while (!stopping && ahead_unanswered_ + int(ahead_.size()) < depth_) {
    comm::send_message(comm_, comm::kOrchestratorRank, comm::MsgTag::kRequestJob, ahead_request_);
    ++ahead_unanswered_;
  }
}

void WorkerLoop::give_back(const comm::Message& job) {
  nlohmann::json payload = nlohmann::json::object();
  try {
    payload["job_id"] = nlohmann::json::parse(job.payload)
                            .at("job_id");  // a JobTicket: only one-rank jobs go ahead
  } catch (const std::exception&) {
    // Rank 0 then takes back the last job it sent to this worker.
  }
  comm::send_message(comm_, comm::kOrchestratorRank, comm::MsgTag::kReturnJob, payload.dump());
}

void WorkerLoop::give_back_if_running_long(Clock::time_point started) {
  if (ahead_unanswered_ == 0 && ahead_.empty()) return;
  if (Clock::now() - started < kGiveBackAfter) return;
  while (ahead_unanswered_ > 0) {
    auto answer = comm::poll_message(comm_, comm::kOrchestratorRank);
    if (!answer) break;
    ahead_.push_back(std::move(*answer));
    --ahead_unanswered_;
  }
  for (const comm::Message& answer : ahead_) {
    if (answer.tag == comm::MsgTag::kJob) give_back(answer);
  }
  ahead_.clear();
}

void WorkerLoop::take_job(const comm::Message& job, bool stopping) {
  job_id_.clear();
  job_started_ = Clock::now();
  JobResult result;
  try {
    const nlohmann::json payload = nlohmann::json::parse(job.payload);
    result = comm::is_group_job(payload)
                 ? run_group_job(payload.get<comm::GroupJob>())
                 : run_one_rank_job(payload.get<comm::JobTicket>(), stopping);
  } catch (const std::exception& e) {
    // The spec could not be read or the group's communicator not built: report it without a job
    // id; rank 0 records it against the job it sent.
    result.status = "failed";
    result.error = std::string("starting the job: ") + e.what();
  }
  report(std::move(result));
}

JobResult WorkerLoop::run_group_job(const comm::GroupJob& group) {
  const JobSpec& spec = group.spec;
  job_id_ = spec.id();
  const std::string work_dir = work_dir_of(job_id_);
  std::string members;
  for (int r : group.ranks) members += (members.empty() ? "" : ",") + std::to_string(r);
  const bool leader = rank_ == group.ranks.front();
  if (log_ && leader) {
    log_("[" + job_id_ + "] runs on ranks " + members + " (a " +
         std::to_string(group.ranks.size()) + "-rank group), in the worker processes" +
         (supervision_ != nullptr ? " (group jobs cannot run in child processes)" : ""));
  }
  if (body_) return body_(spec, work_dir, [this] { give_back_if_running_long(job_started_); });
  const JobGroupComm job_comm(comm_, group);
  const auto sync =
      make_gradient_sync(job_comm.comm(), options_.device, [&](const std::string& line) {
        if (log_ && leader) log_("[" + job_id_ + "] " + line);
      });
  return run_in_process(spec, work_dir, sync.get());
}

JobResult WorkerLoop::run_one_rank_job(const comm::JobTicket& ticket, bool stopping) {
  const JobSpec& spec = ticket.spec;
  job_id_ = ticket.job_id;
  ask_ahead(stopping);
  const std::string work_dir = work_dir_of(job_id_);
  if (body_) return body_(spec, work_dir, [this] { give_back_if_running_long(job_started_); });
  if (supervision_ == nullptr) return run_in_process(spec, work_dir, nullptr);
  if (log_)
    log_("[" + job_id_ + "] started in a child process; output in " + work_dir + "/train.log");
  return run_supervised_job(
      spec, work_dir, rank_, supervised_, stop_requested_,
      [this](const Heartbeat& h) { send_heartbeat(h.epoch, h.epochs, h.eta_s); },
      [this] { give_back_if_running_long(job_started_); });
}

JobResult WorkerLoop::run_in_process(const JobSpec& spec, const std::string& work_dir,
                                     GradientSync* sync) {
  const auto started = Clock::now();
  auto next_report = started + report_interval_;
  options_.work_dir = work_dir;
  options_.sync = sync;
  options_.on_progress = [&](const JobProgress& p) {
    inject_test_fault(spec, p, rank_);
    give_back_if_running_long(started);
    const auto now = Clock::now();
    if (now < next_report) return;
    next_report = now + report_interval_;
    send_heartbeat(p.epoch, p.epochs, -1);
  };
  JobResult result = run_job(spec, options_, cache_);
  options_.on_progress = nullptr;
  options_.sync = nullptr;
  return result;
}

void WorkerLoop::report(JobResult result) {
  if (result.job_id.empty()) result.job_id = job_id_;
  comm::send_message(comm_, comm::kOrchestratorRank, comm::MsgTag::kResult,
                     result_json_without_spec(result).dump());
  depth_ = ahead_depth(Clock::now() - job_started_);
  ++jobs_run_;
}

}  // namespace

int run_worker(MPI_Comm comm, const std::function<void(const std::string&)>& log,
               const std::string& work_root, const std::atomic<bool>* stop_requested,
               const SupervisionOptions* supervision, const JobBody& body,
               const WorkerDevice& device) {
  return WorkerLoop(comm, log, work_root, stop_requested, supervision, body, device).run();
}

}  // namespace mil::worker
