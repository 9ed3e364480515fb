#include "orchestrator/results/lock_queue.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

#include "mil/core/durable_file.h"
#include "mil/core/json_reader.h"
#include "mil/core/runtime_info.h"

namespace mil::orch {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

std::string env_or_empty(const char* name) {
  const char* value = std::getenv(name);
  return value == nullptr ? std::string() : std::string(value);
}

std::string random_hex() {
  std::random_device entropy;
  std::ostringstream out;
  out << std::hex << entropy() << entropy();
  return out.str();
}

/// Holds an exclusive flock on a file for its lifetime (serialises takeovers and refreshes).
class FolderMutex {
 public:
  explicit FolderMutex(const std::string& path) {
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw_errno("cannot open", path);
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        ::close(fd_);
        throw_errno("cannot flock", path);
      }
    }
  }
  FolderMutex(const FolderMutex&) = delete;
  FolderMutex& operator=(const FolderMutex&) = delete;
  ~FolderMutex() { ::close(fd_); }  // closing releases the flock

 private:
  int fd_ = -1;
};

json record_json(const LockRecord& r) {
  return {{"owner", r.owner}, {"acquired", r.acquired}, {"heartbeat", r.heartbeat}};
}

}  // namespace

void to_json(json& j, const LockOwner& o) {
  j = {{"host", o.host},
       {"pid", o.pid},
       {"token", o.token},
       {"slurm_job_id", o.slurm_job_id},
       {"slurm_array_job_id", o.slurm_array_job_id},
       {"slurm_array_task_id", o.slurm_array_task_id},
       {"slurm_restart_count", o.slurm_restart_count}};
}

void from_json(const json& j, LockOwner& o) {
  o.host = j.at("host").get<std::string>();
  o.pid = j.at("pid").get<int>();
  o.token = j.at("token").get<std::string>();
  o.slurm_job_id = j.value("slurm_job_id", "");
  o.slurm_array_job_id = j.value("slurm_array_job_id", "");
  o.slurm_array_task_id = j.value("slurm_array_task_id", "");
  o.slurm_restart_count = j.value("slurm_restart_count", "");
}

LockOwner this_process_owner() {
  LockOwner o;
  o.host = mil::host_name();
  o.pid = static_cast<int>(::getpid());
  o.token = random_hex();
  o.slurm_job_id = env_or_empty("SLURM_JOB_ID");
  o.slurm_array_job_id = env_or_empty("SLURM_ARRAY_JOB_ID");
  o.slurm_array_task_id = env_or_empty("SLURM_ARRAY_TASK_ID");
  o.slurm_restart_count = env_or_empty("SLURM_RESTART_COUNT");
  return o;
}

std::string run_id_from_environment() {
  const std::string array = env_or_empty("SLURM_ARRAY_JOB_ID");
  return array.empty() ? env_or_empty("SLURM_JOB_ID") : array;
}

LockQueue::LockQueue(ResultsStore& store, std::vector<ScheduledJob> jobs, LockOwner owner,
                     LockQueueOptions options)
    : store_(store),
      jobs_(std::move(jobs)),
      owner_(std::move(owner)),
      options_(std::move(options)) {
  if (!options_.clock) {
    options_.clock = [] {
      return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch())
          .count();
    };
  }
  if (!options_.pid_alive) {
    options_.pid_alive = [](int pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); };
  }
  if (!(options_.lock_timeout_s > 0.0) || !(options_.heartbeat_interval_s > 0.0)) {
    throw std::runtime_error("lock queue: lock_timeout_s and heartbeat_interval_s must be > 0");
  }
  for (const auto& job : jobs_) job_ids_.insert(job.id);
  plan_ = make_prune_plan(jobs_, options_.prune);
  started_at_ = now();
  locks_dir_ = (fs::path(store_.dir()) / "locks").string();
  std::error_code ec;
  fs::create_directories(locks_dir_, ec);
  if (ec)
    throw std::runtime_error("lock queue: cannot create '" + locks_dir_ + "': " + ec.message());
}

double LockQueue::now() const { return options_.clock(); }

std::string LockQueue::lock_path(const std::string& job_id) const {
  return (fs::path(locks_dir_) / (job_id + ".lock")).string();
}

std::optional<LockRecord> LockQueue::read_lock(const std::string& job_id) const {
  const std::string path = lock_path(job_id);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    if (errno == ENOENT || !fs::exists(path)) return std::nullopt;
    throw_errno("cannot open", path);
  }
  in.close();
  LockRecord record;  // an unreadable lock keeps an empty token: stale_reason() calls it unreadable
  try {
    const json j = read_json_file(path);
    record.owner = j.at("owner").get<LockOwner>();
    record.acquired = j.at("acquired").get<double>();
    record.heartbeat = j.at("heartbeat").get<double>();
  } catch (const std::exception&) {
    record = LockRecord{};
  }
  return record;
}

std::string LockQueue::stale_reason(const LockRecord& lock) const {
  if (lock.owner.token.empty()) return "unreadable lock file";
  if (lock.owner.token == owner_.token) return "";
  const double age = now() - lock.heartbeat;
  if (!(age <= options_.lock_timeout_s)) {
    return "heartbeat " + std::to_string(static_cast<long long>(std::llround(age))) +
           " s old (timeout " +
           std::to_string(static_cast<long long>(std::llround(options_.lock_timeout_s))) + " s)";
  }
  if (lock.owner.host == owner_.host && !options_.pid_alive(lock.owner.pid)) {
    return "pid " + std::to_string(lock.owner.pid) + " is dead on " + lock.owner.host;
  }
  if (!owner_.slurm_job_id.empty() && lock.owner.slurm_job_id == owner_.slurm_job_id) {
    return "an earlier run of Slurm job " + owner_.slurm_job_id + " (requeued)";
  }
  return "";
}

void LockQueue::write_lock_file(const std::string& path, const LockRecord& record) const {
  const std::string temp = (fs::path(locks_dir_) / ("." + fs::path(path).filename().string() +
                                                    ".new." + owner_.token + "." + random_hex()))
                               .string();
  write_new_file_synced(temp, record_json(record).dump() + "\n");
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    ::unlink(temp.c_str());
    throw_errno("cannot rename '" + temp + "' to", path);
  }
}

bool LockQueue::create_lock(const std::string& job_id) {
  const std::string path = lock_path(job_id);
  const std::string temp =
      (fs::path(locks_dir_) / ("." + job_id + ".lock.new." + owner_.token + "." + random_hex()))
          .string();
  const double t = now();
  write_new_file_synced(temp, record_json(LockRecord{owner_, t, t}).dump() + "\n");
  // link() is the exclusive create that carries content: the lock is never seen half written.
  const int rc = ::link(temp.c_str(), path.c_str());
  const int link_errno = errno;
  ::unlink(temp.c_str());
  if (rc != 0) {
    if (link_errno == EEXIST) return false;
    errno = link_errno;
    throw_errno("cannot create the lock", path);
  }
  return true;
}

bool LockQueue::take_over(const std::string& job_id, const LockRecord& seen) {
  const FolderMutex mutex((fs::path(locks_dir_) / ".takeover").string());
  const auto current = read_lock(job_id);
  if (current) {
    const bool same =
        current->owner.token == seen.owner.token && current->heartbeat == seen.heartbeat;
    if (!same || stale_reason(*current).empty()) return false;
    if (::unlink(lock_path(job_id).c_str()) != 0 && errno != ENOENT)
      throw_errno("cannot remove", lock_path(job_id));
  }
  return create_lock(job_id);
}

bool LockQueue::refresh(const std::string& job_id) {
  const FolderMutex mutex((fs::path(locks_dir_) / ".takeover").string());
  auto current = read_lock(job_id);
  if (!current || current->owner.token != owner_.token) return false;
  current->heartbeat = now();
  write_lock_file(lock_path(job_id), *current);
  return true;
}

void LockQueue::release(const std::string& job_id) {
  const FolderMutex mutex((fs::path(locks_dir_) / ".takeover").string());
  const auto current = read_lock(job_id);
  if (current && current->owner.token == owner_.token) ::unlink(lock_path(job_id).c_str());
}

void LockQueue::scan_results() {
  const fs::path folder = fs::path(store_.dir()) / "results";
  std::set<std::string> present;
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path path = it->path();
    const std::string name = path.filename().string();
    if (name.empty() || name.front() == '.' || path.extension() != ".json") continue;
    const std::string id = path.stem().string();
    if (job_ids_.count(id) == 0) continue;
    std::error_code stat_error;
    const auto size = fs::file_size(path, stat_error);
    const auto mtime = fs::last_write_time(path, stat_error);
    if (stat_error) continue;  // moved aside while listed
    present.insert(id);
    const auto mtime_ticks = static_cast<std::int64_t>(mtime.time_since_epoch().count());
    auto seen = seen_.find(id);
    if (seen != seen_.end() && seen->second.mtime_ticks == mtime_ticks && seen->second.size == size)
      continue;
    if (!std::ifstream(path, std::ios::binary)) continue;  // moved aside while listed
    const json j = read_json_file(path.string());
    SeenResult entry;
    entry.mtime_ticks = mtime_ticks;
    entry.size = size;
    entry.ok = j.value("status", "") == "ok";
    entry.validation = NAN;
    const std::string metric = prune_metric_of(plan_, id);
    if (entry.ok && !metric.empty() && j.contains("metrics")) {
      entry.validation = validation_value(j.at("metrics"), metric);
    }
    if (!entry.ok && j.contains("runtime") && j.at("runtime").contains("queue")) {
      const json& q = j.at("runtime").at("queue");
      const std::string run = q.value("run_id", "");
      entry.final_failure = (!options_.run_id.empty() && run == options_.run_id) ||
                            q.value("written_at", 0.0) >= started_at_;
    }
    seen_[id] = entry;
  }
  if (ec)
    throw std::runtime_error("lock queue: cannot list '" + folder.string() + "': " + ec.message());
  for (auto it = seen_.begin(); it != seen_.end();) {
    it = present.count(it->first) ? std::next(it) : seen_.erase(it);
  }
}

bool LockQueue::publish(JobResult result) {
  result.runtime["queue"] = {{"run_id", options_.run_id}, {"owner", owner_}, {"written_at", now()}};
  return store_.write_exclusive(result);
}

void LockQueue::write_blocked_results(Scheduler& scheduler) {
  for (const auto& [blocked, dependency] : scheduler.take_blocked()) {
    const auto seen = seen_.find(blocked->id);
    if (seen != seen_.end() && (seen->second.final_failure || attempted_.count(blocked->id)))
      continue;
    JobResult failed = dependency_failed_result(blocked->spec, blocked->id, dependency);
    publish(failed);
    attempted_.insert(blocked->id);
  }
}

std::map<std::string, JobOutcome> LockQueue::prune_outcomes() const {
  std::map<std::string, JobOutcome> outcomes;
  for (const auto& [id, seen] : seen_) {
    if (seen.ok) {
      outcomes.emplace(id, JobOutcome{true, seen.validation});
    } else if (seen.final_failure || attempted_.count(id) > 0) {
      outcomes.emplace(id, JobOutcome{false, NAN});
    }
  }
  return outcomes;
}

void LockQueue::journal_pruned(const std::vector<PrunedJob>& pruned) {
  std::vector<const PrunedJob*> unknown;
  for (const PrunedJob& job : pruned) {
    if (journaled_pruned_.count(job.job_id) == 0) unknown.push_back(&job);
  }
  if (unknown.empty()) return;
  // Every process decides alike; the first to take the mutex journals, the others find its lines.
  const FolderMutex mutex((fs::path(locks_dir_) / ".prune").string());
  const auto journal = replay_journal((fs::path(store_.dir()) / "journal.jsonl").string());
  std::vector<StoreRecord> notes;
  for (const PrunedJob* job : unknown) {
    const auto entry = journal.find(job->job_id);
    if (entry == journal.end() || entry->second.status != "pruned") {
      notes.push_back(StoreRecord::of_note(job->job_id, "pruned", job->detail));
    }
    journaled_pruned_.insert(job->job_id);
  }
  if (!notes.empty()) store_.write_batch(notes);
}

Claim LockQueue::try_claim() {
  scan_results();
  std::set<std::string> done;
  for (const auto& [id, seen] : seen_) {
    if (seen.ok) done.insert(id);
  }
  const auto final_failure = [this](const std::string& id) {
    const auto seen = seen_.find(id);
    return seen != seen_.end() && !seen->second.ok &&
           (seen->second.final_failure || attempted_.count(id) > 0);
  };
  std::vector<ScheduledJob> jobs = jobs_;
  std::vector<PrunedJob> pruned;
  if (!plan_.brackets.empty()) {
    const Pruner pruner(plan_, prune_outcomes());
    for (ScheduledJob& job : jobs) job.gated = pruner.gate(job.id) != JobGate::kOpen;
    pruned = pruner.pruned_jobs();
    journal_pruned(pruned);
  }
  Scheduler scheduler(std::move(jobs), done, /*max_attempts=*/1);
  for (const PrunedJob& job : pruned) scheduler.prune(job.job_id);
  for (int worker = 0;; ++worker) {
    const Assignment assignment = scheduler.next(worker);
    if (assignment.kind == Assignment::Kind::kWait)
      return Claim{Assignment::Kind::kWait, std::nullopt, false};
    if (assignment.kind == Assignment::Kind::kStop) {
      // Jobs held by other processes: wait for them, so their locks can be taken over if they die.
      if (scheduler.running_count() > 0) return Claim{Assignment::Kind::kWait, std::nullopt, false};
      failed_count_ = scheduler.failed_count();
      pruned_count_ = scheduler.pruned_count();
      return Claim{Assignment::Kind::kStop, std::nullopt, false};
    }
    const ScheduledJob& job = *assignment.job;
    if (final_failure(job.id)) {
      scheduler.complete(worker, job.id, /*ok=*/false);
      write_blocked_results(scheduler);
      continue;
    }
    bool taken_over = false;
    if (const auto lock = read_lock(job.id)) {
      if (lock->owner.token == owner_.token || stale_reason(*lock).empty())
        continue;  // runs elsewhere
      if (!take_over(job.id, *lock)) continue;
      taken_over = true;
    } else if (!create_lock(job.id)) {
      continue;  // another process locked it since the read
    }
    // Locked. The job may have finished between the scan and the lock: look again.
    scan_results();
    const auto seen = seen_.find(job.id);
    if (seen != seen_.end() && (seen->second.ok || final_failure(job.id))) {
      release(job.id);
      scheduler.complete(worker, job.id, seen->second.ok);
      write_blocked_results(scheduler);
      continue;
    }
    attempted_.insert(job.id);
    return Claim{Assignment::Kind::kJob, job, taken_over};
  }
}

namespace {

/// Refreshes a lock every `interval` from its own thread until destroyed.
class Heartbeat {
 public:
  Heartbeat(LockQueue& queue, std::string job_id, double interval_s,
            const std::function<void(const std::string&)>& log)
      : thread_([this, &queue, job_id = std::move(job_id), interval_s, &log] {
          std::unique_lock<std::mutex> lock(mutex_);
          const auto interval = std::chrono::duration<double>(interval_s);
          while (!cv_.wait_for(lock, interval, [this] { return done_; })) {
            try {
              if (!queue.refresh(job_id) && log)
                log(job_id + ": its lock is no longer ours (taken over as stale)");
            } catch (const std::exception& e) {
              if (log) log(job_id + ": cannot refresh its lock: " + e.what());
            }
          }
        }) {}
  Heartbeat(const Heartbeat&) = delete;
  Heartbeat& operator=(const Heartbeat&) = delete;
  ~Heartbeat() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  ///< Last: starts after the members it uses exist.
};

}  // namespace

LockQueueOutcome run_lock_queue(LockQueue& queue, ResultsStore& store,
                                const std::function<JobResult(const JobSpec&)>& run,
                                const std::function<void(const std::string&)>& logger,
                                const std::atomic<bool>* stop_requested) {
  const auto stopping = [stop_requested] {
    return stop_requested != nullptr && stop_requested->load();
  };
  const std::function<void(const std::string&)> log = [&logger](const std::string& line) {
    if (logger) logger(line);
  };
  LockQueueOutcome outcome;
  bool waiting_logged = false;
  for (;;) {
    if (stopping()) {
      outcome.stopped = true;
      break;
    }
    const Claim claim = queue.try_claim();
    if (claim.kind == Assignment::Kind::kStop) {
      outcome.failed_total = queue.failed_count();
      outcome.pruned_total = queue.pruned_count();
      break;
    }
    if (claim.kind == Assignment::Kind::kWait) {
      if (!waiting_logged)
        log("waiting: the jobs left run in other processes (or wait for one that does)");
      waiting_logged = true;
      const auto until = std::chrono::steady_clock::now() + queue.options().poll_interval;
      while (!stopping() && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
      continue;
    }
    waiting_logged = false;
    const ScheduledJob& job = *claim.job;
    log(job.id + " claimed" +
        (claim.taken_over ? " (its stale lock was taken over; resuming)" : ""));
    JobResult result;
    {
      const Heartbeat heartbeat(queue, job.id, queue.options().heartbeat_interval_s, log);
      result = run(job.spec);
    }
    if (result.status == "interrupted") {
      store.note(job.id, "interrupted", result.error);
      queue.release(job.id);
      ++outcome.interrupted;
      outcome.stopped = true;
      log(job.id + " interrupted: checkpointed; any process resumes it");
      break;
    }
    if (result.job_id != job.id) {
      result.error = "the run returned a result for '" + result.job_id + "'" +
                     (result.error.empty() ? "" : "; " + result.error);
      result.status = "failed";
      result.job_id = job.id;
      result.config_id = job.spec.config_id();
      result.spec = job.spec;
    }
    const bool written = queue.publish(result);
    queue.release(job.id);
    if (!written) {
      ++outcome.lost;
      log(job.id + ": another process wrote its result first; this run's result is dropped");
    } else {
      result.ok() ? ++outcome.ran_ok : ++outcome.ran_failed;
      log(job.id + " " + result.status + (result.ok() ? "" : ": " + result.error));
    }
  }
  return outcome;
}

}  // namespace mil::orch
