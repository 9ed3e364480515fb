#include "orchestrator/status/board.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

namespace mil::orch {
namespace {

using TimePoint = std::chrono::system_clock::time_point;

double seconds_between(TimePoint from, TimePoint to) {
  return std::chrono::duration<double>(to - from).count();
}

std::string iso_utc(TimePoint t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

nlohmann::json optional_number(const std::optional<double>& value) {
  return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
}

}  // namespace

StatusJobInfo status_job_info(const JobSpec& spec) {
  StatusJobInfo info;
  info.id = spec.id();
  info.method = spec.model.method.empty() ? spec.model.name : spec.model.method;
  info.dataset = spec.dataset.name;
  info.fold = spec.split.fold_index;
  info.seed = spec.seed;
  return info;
}

StatusBoard::StatusBoard(StatusBoardOptions options) : options_(std::move(options)) {
  if (!options_.clock) options_.clock = [] { return std::chrono::system_clock::now(); };
  started_ = options_.clock();
}

StatusBoard::TimePoint StatusBoard::now() const { return options_.clock(); }

std::size_t StatusBoard::job_index(const std::string& job_id) {
  const auto found = index_.find(job_id);
  if (found != index_.end()) return found->second;
  Job job;
  job.info.id = job_id;
  jobs_.push_back(job);
  index_[job_id] = jobs_.size() - 1;
  return jobs_.size() - 1;
}

void StatusBoard::sweep_started(const std::vector<StatusJobInfo>& jobs,
                                const std::set<std::string>& already_done) {
  try {
    std::lock_guard<std::mutex> lock(mutex_);
    listed_ = true;
    jobs_.clear();
    index_.clear();
    for (const StatusJobInfo& info : jobs) {
      if (index_.count(info.id) != 0) continue;
      Job job;
      job.info = info;
      job.state = already_done.count(info.id) != 0 ? State::kSkipped : State::kPending;
      index_[info.id] = jobs_.size();
      jobs_.push_back(std::move(job));
    }
  } catch (...) {  // allocation failure: the board shows less, the sweep goes on
  }
}

void StatusBoard::job_assigned(const std::string& job_id, int rank) {
  try {
    const TimePoint t = now();
    std::lock_guard<std::mutex> lock(mutex_);
    Job& job = jobs_[job_index(job_id)];
    job.state = State::kRunning;
    job.rank = rank;
    job.started = t;
    job.epoch = job.epochs = -1;
    job.eta_s = -1.0;
    Worker& worker = workers_[rank];
    worker.job_id = job_id;
    worker.last_seen = t;
    worker.stopped = false;
  } catch (...) {
  }
}

void StatusBoard::job_progress(const std::string& job_id, int epoch, int epochs, double eta_s) {
  try {
    const TimePoint t = now();
    std::lock_guard<std::mutex> lock(mutex_);
    Job& job = jobs_[job_index(job_id)];
    job.epoch = epoch;
    job.epochs = epochs;
    job.eta_s = std::isfinite(eta_s) ? eta_s : -1.0;
    if (job.state == State::kRunning && job.rank >= 0) {
      Worker& worker = workers_[job.rank];
      worker.last_seen = t;
      worker.reported_progress = true;
    }
  } catch (...) {
  }
}

void StatusBoard::leave_worker_locked(Job& job, TimePoint t, bool ran) {
  if (job.rank >= 0) {
    auto worker = workers_.find(job.rank);
    if (worker != workers_.end()) {
      if (worker->second.job_id == job.info.id) worker->second.job_id.clear();
      worker->second.last_seen = t;
      if (ran) ++worker->second.jobs_finished;
    }
  }
  job.rank = -1;
}

void StatusBoard::job_reported(const std::string& job_id) {
  try {
    const TimePoint t = now();
    std::lock_guard<std::mutex> lock(mutex_);
    Job& job = jobs_[job_index(job_id)];
    leave_worker_locked(job, t, /*ran=*/true);  // job_finished() then leaves the worker alone
    job.state = State::kCommitting;
  } catch (...) {
  }
}

void StatusBoard::job_finished(const std::string& job_id, const std::string& status,
                               const std::string& error) {
  try {
    const TimePoint t = now();
    std::lock_guard<std::mutex> lock(mutex_);
    Job& job = jobs_[job_index(job_id)];
    if (status ==
        "pruned") {  // it never ran, so it neither frees a worker nor counts as throughput
      job.status = status;
      job.state = State::kPruned;
      return;
    }
    // With group commit a result is reported once durable, when its worker may already run its next
    // job: that job stays the worker's, but this one counts as finished by it all the same.
    leave_worker_locked(job, t, /*ran=*/status != "returned");  // a job given back never ran there
    job.status = status;
    job.error = status == "ok" ? std::string() : error;
    if (status == "interrupted" || status == "retry" || status == "returned") {
      job.state = State::kPending;  // no result: a rerun or another attempt will run it
      return;
    }
    job.state = status == "ok"            ? State::kDone
                : status == "quarantined" ? State::kQuarantined
                                          : State::kFailed;
    finish_times_.insert(std::upper_bound(finish_times_.begin(), finish_times_.end(), t), t);
  } catch (...) {
  }
}

void StatusBoard::worker_seen(int rank, const std::string& host) {
  try {
    const TimePoint t = now();
    std::lock_guard<std::mutex> lock(mutex_);
    Worker& worker = workers_[rank];
    if (!host.empty()) worker.host = host;
    worker.last_seen = t;
  } catch (...) {
  }
}

void StatusBoard::worker_stopped(int rank) {
  try {
    const TimePoint t = now();
    std::lock_guard<std::mutex> lock(mutex_);
    Worker& worker = workers_[rank];
    worker.stopped = true;
    worker.job_id.clear();
    worker.last_seen = t;
  } catch (...) {
  }
}

StatusSummary StatusBoard::summary_locked(TimePoint t) const {
  StatusSummary s;
  StatusCounts& c = s.counts;
  c.total = jobs_.size();
  for (const Job& job : jobs_) {
    switch (job.state) {
      case State::kPending:
        ++c.pending;
        break;
      case State::kRunning:
        ++c.running;
        break;
      case State::kDone:
        ++c.done;
        break;
      case State::kFailed:
        ++c.failed;
        break;
      case State::kQuarantined:
        ++c.quarantined;
        break;
      case State::kSkipped:
        ++c.skipped;
        break;
      case State::kCommitting:
        ++c.committing;
        break;
      case State::kPruned:
        ++c.pruned;
        break;
    }
  }
  s.uptime_s = std::max(0.0, seconds_between(started_, t));
  const std::size_t finished = finish_times_.size();
  if (finished > 0 && s.uptime_s > 0.0) s.sweep_jobs_per_h = finished * 3600.0 / s.uptime_s;
  const double window = std::min(options_.recent_window_s, s.uptime_s);
  if (window > 0.0) {
    const TimePoint window_start =
        t - std::chrono::duration_cast<std::chrono::system_clock::duration>(
                std::chrono::duration<double>(window));
    const auto first = std::upper_bound(finish_times_.begin(), finish_times_.end(), window_start);
    const auto recent = std::distance(first, finish_times_.end());
    if (recent > 0) s.recent_jobs_per_h = recent * 3600.0 / window;
  }
  const std::size_t remaining = c.pending + c.running;
  if (remaining == 0) {
    s.eta_s = 0.0;
  } else if (const auto rate = s.recent_jobs_per_h ? s.recent_jobs_per_h : s.sweep_jobs_per_h) {
    s.eta_s = remaining * 3600.0 / *rate;
  }
  return s;
}

StatusSummary StatusBoard::summary() const {
  const TimePoint t = now();
  std::lock_guard<std::mutex> lock(mutex_);
  return summary_locked(t);
}

StatusSnapshot StatusBoard::snapshot() const {
  static constexpr const char* kStateNames[] = {"pending",     "running", "done",       "failed",
                                                "quarantined", "skipped", "committing", "pruned"};
  const TimePoint t = now();
  StatusSnapshot snap;
  std::vector<Job> jobs_copy;
  std::map<int, Worker> workers_copy;
  bool listed = false;
  {  // copy under the lock, build the document without it: the orchestrator loop waits only for the
     // copy
    std::lock_guard<std::mutex> lock(mutex_);
    snap.summary = summary_locked(t);
    jobs_copy = jobs_;
    workers_copy = workers_;
    listed = listed_;
  }
  const StatusSummary& s = snap.summary;
  const StatusCounts& c = s.counts;
  nlohmann::json& j = snap.json;
  j["sweep"] = {{"name", options_.sweep_name},
                {"started_at", iso_utc(started_)},
                {"now", iso_utc(t)},
                {"uptime_s", s.uptime_s},
                {"phase", listed ? "running" : "starting"}};
  j["counts"] = {{"total", c.total},
                 {"pending", c.pending},
                 {"running", c.running},
                 {"committing", c.committing},
                 {"done", c.done},
                 {"failed", c.failed},
                 {"quarantined", c.quarantined},
                 {"skipped", c.skipped},
                 {"pruned", c.pruned}};
  const std::size_t finished = c.done + c.skipped + c.failed + c.quarantined + c.pruned;
  j["progress"] = {{"finished", finished},
                   {"fraction", !listed        ? 0.0
                                : c.total == 0 ? 1.0
                                               : double(finished) / double(c.total)}};
  j["throughput"] = {{"sweep_jobs_per_h", optional_number(s.sweep_jobs_per_h)},
                     {"recent_jobs_per_h", optional_number(s.recent_jobs_per_h)},
                     {"recent_window_s", options_.recent_window_s}};
  j["eta_s"] = optional_number(s.eta_s);
  const auto host_of = [&workers_copy](int rank) {
    const auto w = workers_copy.find(rank);
    return w == workers_copy.end() ? std::string() : w->second.host;
  };
  nlohmann::json running = nlohmann::json::array(), failures = nlohmann::json::array(),
                 jobs = nlohmann::json::array();
  for (const Job& job : jobs_copy) {
    const StatusJobInfo& i = job.info;
    jobs.push_back({{"id", i.id},
                    {"state", kStateNames[static_cast<int>(job.state)]},
                    {"method", i.method},
                    {"dataset", i.dataset},
                    {"fold", i.fold},
                    {"seed", i.seed}});
    if (job.state == State::kRunning) {
      const auto known = [](int v) { return v >= 0 ? nlohmann::json(v) : nlohmann::json(nullptr); };
      running.push_back(
          {{"job_id", i.id},
           {"method", i.method},
           {"dataset", i.dataset},
           {"fold", i.fold},
           {"seed", i.seed},
           {"rank", job.rank},
           {"host", host_of(job.rank)},
           {"started_at", iso_utc(job.started)},
           {"elapsed_s", seconds_between(job.started, t)},
           {"epoch", known(job.epoch)},
           {"epochs", known(job.epochs)},
           {"eta_s", job.eta_s >= 0.0 ? nlohmann::json(job.eta_s) : nlohmann::json(nullptr)}});
    } else if (job.state == State::kFailed || job.state == State::kQuarantined) {
      failures.push_back({{"job_id", i.id},
                          {"status", job.status},
                          {"error", job.error},
                          {"method", i.method},
                          {"dataset", i.dataset},
                          {"fold", i.fold},
                          {"seed", i.seed}});
    }
  }
  nlohmann::json workers = nlohmann::json::array();
  for (const auto& [rank, w] : workers_copy) {
    const double age = std::max(0.0, seconds_between(w.last_seen, t));
    const bool can_tell = options_.expect_heartbeats || w.job_id.empty() || w.reported_progress;
    const char* state = w.stopped                                  ? "stopped"
                        : can_tell && age > options_.stale_after_s ? "stale"
                        : w.job_id.empty()                         ? "idle"
                                                                   : "busy";
    workers.push_back(
        {{"rank", rank},
         {"host", w.host},
         {"state", state},
         {"last_seen_age_s", age},
         {"job_id", w.job_id.empty() ? nlohmann::json(nullptr) : nlohmann::json(w.job_id)},
         {"jobs_finished", w.jobs_finished}});
  }
  j["running"] = std::move(running);
  j["workers"] = std::move(workers);
  j["failures"] = std::move(failures);
  j["jobs"] = std::move(jobs);
  return snap;
}

std::string to_status_json(const StatusSnapshot& snapshot) {
  return snapshot.json.dump(-1, ' ', /*ensure_ascii=*/false,
                            nlohmann::json::error_handler_t::replace);
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0.0) return "?";
  const long long total = static_cast<long long>(seconds);  // floor: an ETA is rough anyway
  char text[32];
  if (total < 60) {
    std::snprintf(text, sizeof text, "%llds", total);
  } else if (total < 3600) {
    std::snprintf(text, sizeof text, "%lldm", total / 60);
  } else if (total < 86400) {
    std::snprintf(text, sizeof text, "%lldh %02lldm", total / 3600, total % 3600 / 60);
  } else {
    std::snprintf(text, sizeof text, "%lldd %02lldh", total / 86400, total % 86400 / 3600);
  }
  return text;
}

std::string format_progress_line(const StatusSummary& summary, int bar_width) {
  const StatusCounts& c = summary.counts;
  bar_width = std::max(1, bar_width);
  const std::size_t finished = c.done + c.skipped + c.failed + c.quarantined + c.pruned;
  const int filled = c.total == 0 ? bar_width : static_cast<int>(finished * bar_width / c.total);
  std::string line = "[" + std::string(filled, '#') + std::string(bar_width - filled, '.') + "] ";
  line += std::to_string(c.done + c.skipped) + "/" + std::to_string(c.total) + " done";
  line += " \u00b7 " + std::to_string(c.running) + " running";
  if (c.failed > 0) line += " \u00b7 " + std::to_string(c.failed) + " failed";
  if (c.quarantined > 0) line += " \u00b7 " + std::to_string(c.quarantined) + " quarantined";
  if (c.pruned > 0) line += " \u00b7 " + std::to_string(c.pruned) + " pruned";
  const auto rate =
      summary.recent_jobs_per_h ? summary.recent_jobs_per_h : summary.sweep_jobs_per_h;
  char rate_text[32] = "?";
  if (rate) std::snprintf(rate_text, sizeof rate_text, *rate < 10.0 ? "%.1f" : "%.0f", *rate);
  line += std::string(" \u00b7 ") + rate_text + " jobs/h";
  line += " \u00b7 ETA " + (summary.eta_s ? format_duration(*summary.eta_s) : std::string("?"));
  return line;
}

}  // namespace mil::orch
