#include "orchestrator/schedule/scheduler.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <utility>

namespace mil::orch {

std::vector<ScheduledJob> scheduled_jobs(const std::vector<JobSpec>& specs) {
  std::vector<ScheduledJob> jobs;
  jobs.reserve(specs.size());
  for (const auto& spec : specs) {
    jobs.push_back(
        ScheduledJob{spec, spec.id(), /*cost=*/1.0, /*depends_on=*/{}, spec.train.ranks});
  }
  return jobs;
}

std::string error_signature(const std::string& error) {
  std::string out;
  std::size_t i = 0;
  while (i < error.size()) {
    // A word (up to whitespace) holding a '/' is a path: its folders and names vary between
    // attempts.
    if (!std::isspace(static_cast<unsigned char>(error[i]))) {
      std::size_t end = i;
      while (end < error.size() && !std::isspace(static_cast<unsigned char>(error[end]))) ++end;
      if (error.find('/', i) < end) {
        out += "<path>";
        i = end;
        continue;
      }
    }
    if (std::isdigit(static_cast<unsigned char>(error[i]))) {
      while (i < error.size() && std::isdigit(static_cast<unsigned char>(error[i]))) ++i;
      out += '#';
      continue;
    }
    out += error[i++];
  }
  return out;
}

Scheduler::Scheduler(std::vector<ScheduledJob> jobs, const std::set<std::string>& already_done,
                     int max_attempts, const std::set<std::string>& held_back)
    : jobs_(std::move(jobs)), max_attempts_(max_attempts) {
  if (max_attempts_ < 1) throw std::runtime_error("scheduler: max_attempts must be >= 1");
  for (std::size_t i = 0; i < jobs_.size(); ++i) {
    const auto& job = jobs_[i];
    if (!index_of_.emplace(job.id, i).second) {
      throw std::runtime_error("scheduler: duplicate job id '" + job.id + "'");
    }
    if (!std::isfinite(job.cost)) {
      throw std::runtime_error("scheduler: job '" + job.id + "' has a non-finite cost");
    }
    if (job.ranks < 1) {
      throw std::runtime_error("scheduler: job '" + job.id + "' needs " +
                               std::to_string(job.ranks) + " ranks; train.ranks must be >= 1");
    }
    const State state = already_done.count(job.id) > 0 ? State::kDone
                        : held_back.count(job.id) > 0  ? State::kFailed
                                                       : State::kPending;
    states_.push_back(state);
    ++counts_[static_cast<int>(state)];
  }
  attempts_.assign(jobs_.size(), 0);
  errors_.resize(jobs_.size());
  group_.resize(jobs_.size());
  dependencies_.resize(jobs_.size());
  dependents_.resize(jobs_.size());
  for (std::size_t i = 0; i < jobs_.size(); ++i) {
    for (const auto& dependency : jobs_[i].depends_on) {
      const auto it = index_of_.find(dependency);
      if (it != index_of_.end()) {
        dependencies_[i].push_back(it->second);
        dependents_[it->second].push_back(i);
      } else if (already_done.count(dependency) == 0) {
        throw std::runtime_error("scheduler: job '" + jobs_[i].id + "' depends on unknown job '" +
                                 dependency + "'");
      }
    }
  }
  sort_order();
  for (std::size_t i = 0; i < jobs_.size(); ++i) {
    if (held_back.count(jobs_[i].id) > 0 && already_done.count(jobs_[i].id) == 0)
      block_dependents(i);
  }
}

void Scheduler::sort_order() {
  order_.resize(jobs_.size());
  std::iota(order_.begin(), order_.end(), std::size_t{0});
  std::stable_sort(order_.begin(), order_.end(),
                   [this](std::size_t a, std::size_t b) { return jobs_[a].cost > jobs_[b].cost; });
  position_.resize(jobs_.size());
  for (std::size_t p = 0; p < order_.size(); ++p) position_[order_[p]] = p;
  cursor_ = 0;
}

void Scheduler::set_costs(const std::vector<double>& costs) {
  if (costs.size() != jobs_.size()) {
    throw std::runtime_error("scheduler: " + std::to_string(costs.size()) + " costs for " +
                             std::to_string(jobs_.size()) + " jobs");
  }
  for (std::size_t i = 0; i < jobs_.size(); ++i) {
    if (!std::isfinite(costs[i])) {
      throw std::runtime_error("scheduler: job '" + jobs_[i].id + "' has a non-finite cost");
    }
  }
  for (std::size_t i = 0; i < jobs_.size(); ++i) jobs_[i].cost = costs[i];
  sort_order();
}

void Scheduler::set_state(std::size_t index, State state) {
  --counts_[static_cast<int>(states_[index])];
  ++counts_[static_cast<int>(state)];
  states_[index] = state;
  if (state == State::kPending) cursor_ = std::min(cursor_, position_[index]);
}

void Scheduler::check_free(int worker) const {
  if (running_.count(worker) > 0) {
    throw std::runtime_error("scheduler: worker " + std::to_string(worker) +
                             " asked for work while holding job '" + jobs_[running_.at(worker)].id +
                             "'");
  }
  if (std::find(held_.begin(), held_.end(), worker) != held_.end()) {
    throw std::runtime_error("scheduler: worker " + std::to_string(worker) +
                             " asked for work while held for a group");
  }
}

std::size_t Scheduler::first_ready() {
  while (cursor_ < order_.size() && states_[order_[cursor_]] != State::kPending) ++cursor_;
  for (std::size_t p = cursor_; p < order_.size(); ++p) {
    const std::size_t index = order_[p];
    if (states_[index] == State::kPending && ready(index)) return index;
  }
  return order_.size();
}

Assignment Scheduler::start(std::size_t index, std::vector<int> group) {
  std::sort(group.begin(), group.end());
  set_state(index, State::kRunning);
  ++attempts_[index];
  for (int member : group) running_[member] = index;
  group_[index] = group;
  return Assignment{Assignment::Kind::kJob, &jobs_[index], std::move(group)};
}

Assignment Scheduler::next(int worker) {
  check_free(worker);
  const std::size_t index = first_ready();
  if (index < order_.size()) {
    // The head of the line: it gets the asking worker, and held ones, or they all wait for it.
    const auto ranks = static_cast<std::size_t>(jobs_[index].ranks);
    if (held_.size() + 1 < ranks) {
      held_.push_back(worker);
      return Assignment{Assignment::Kind::kHold, nullptr, {}};
    }
    std::vector<int> group(held_.begin(), held_.begin() + static_cast<std::ptrdiff_t>(ranks - 1));
    held_.erase(held_.begin(), held_.begin() + static_cast<std::ptrdiff_t>(ranks - 1));
    group.push_back(worker);
    return start(index, std::move(group));
  }
  // Nothing ready: wait while a running job can still finish (freeing its dependents) or be
  // requeued, or a gated job can still be opened.
  if (!running_.empty() && pending_count() > 0)
    return Assignment{Assignment::Kind::kWait, nullptr, {}};
  if (gated_pending()) return Assignment{Assignment::Kind::kWait, nullptr, {}};
  for (const auto& [holder, index] : running_) {
    if (attempts_[index] < max_attempts_) return Assignment{Assignment::Kind::kWait, nullptr, {}};
  }
  return Assignment{Assignment::Kind::kStop, nullptr, {}};
}

Assignment Scheduler::next(int worker, const Fits& fits) {
  if (!fits) return next(worker);
  check_free(worker);
  const std::size_t head = first_ready();
  if (head == order_.size() || jobs_[head].ranks > 1 || !held_.empty()) return next(worker);
  // The head of the line needs one worker: give this worker the first ready one-rank job that fits.
  bool passed_over = false;
  for (std::size_t p = position_[head]; p < order_.size(); ++p) {
    const std::size_t index = order_[p];
    if (states_[index] != State::kPending || !ready(index) || jobs_[index].ranks > 1) continue;
    if (fits(jobs_[index])) return start(index, {worker});
    passed_over = true;
  }
  if (passed_over) return Assignment{Assignment::Kind::kWait, nullptr, {}};
  return next(worker);
}

Assignment Scheduler::next_ahead(int worker) {
  check_free(worker);
  // Only the head of the line, and only when it needs one worker and no group is forming: a job
  // taken ahead must never overtake a group job that held workers are waiting for.
  const std::size_t index = first_ready();
  if (!held_.empty() || index == order_.size() || jobs_[index].ranks != 1) {
    return Assignment{Assignment::Kind::kWait, nullptr, {}};
  }
  return start(index, {worker});
}

std::size_t Scheduler::take_running(int worker, const std::string& job_id) {
  const auto it = running_.find(worker);
  if (it == running_.end() || jobs_[it->second].id != job_id) {
    throw std::runtime_error("scheduler: worker " + std::to_string(worker) + " reported job '" +
                             job_id + "' but holds " +
                             (it == running_.end() ? "none" : "'" + jobs_[it->second].id + "'"));
  }
  const std::size_t index = it->second;
  running_.erase(it);
  return index;
}

bool Scheduler::in_live_attempt(std::size_t index, int worker) const {
  const auto& group = group_[index];
  return states_[index] == State::kRunning &&
         std::find(group.begin(), group.end(), worker) != group.end();
}

Fate Scheduler::complete(int worker, const std::string& job_id, bool ok, const std::string& error) {
  const std::size_t index = take_running(worker, job_id);
  if (!in_live_attempt(index, worker)) return Fate::kMember;
  if (!ok) {
    group_[index].clear();
    return release_unsuccessful(index, error);
  }
  if (group_[index].front() != worker) return Fate::kMember;  // the leader's report decides
  group_[index].clear();
  set_state(index, State::kDone);
  return Fate::kDone;
}

bool Scheduler::requeue(int worker, const std::string& job_id) {
  const std::size_t index = take_running(worker, job_id);
  if (!in_live_attempt(index, worker)) return false;
  group_[index].clear();
  --attempts_[index];
  set_state(index, State::kPending);
  return true;
}

void Scheduler::worker_lost(int worker) {
  held_.erase(std::remove(held_.begin(), held_.end(), worker), held_.end());
  const auto it = running_.find(worker);
  if (it == running_.end()) return;
  const std::size_t index = it->second;
  running_.erase(it);
  if (!in_live_attempt(index, worker)) return;
  const bool grouped = group_[index].size() > 1;
  group_[index].clear();
  release_unsuccessful(index, "worker " + std::to_string(worker) + " was lost" +
                                  (grouped ? " (a member of the job's rank group)" : ""));
}

std::vector<int> Scheduler::release_held() {
  std::vector<int> out;
  out.swap(held_);
  return out;
}

Fate Scheduler::release_unsuccessful(std::size_t index, const std::string& error) {
  errors_[index].push_back(error);
  if (attempts_[index] < max_attempts_) {
    set_state(index, State::kPending);
    return Fate::kRetry;
  }
  set_state(index, State::kFailed);
  block_dependents(index);
  const auto& errors = errors_[index];
  const bool same =
      errors.size() >= 2 && std::all_of(errors.begin(), errors.end(), [&](const std::string& e) {
        return error_signature(e) == error_signature(errors.front());
      });
  return same ? Fate::kQuarantined : Fate::kFailed;
}

std::vector<std::string> Scheduler::attempt_errors(const std::string& job_id) const {
  const auto it = index_of_.find(job_id);
  return it == index_of_.end() ? std::vector<std::string>{} : errors_[it->second];
}

int Scheduler::attempts(const std::string& job_id) const {
  const auto it = index_of_.find(job_id);
  return it == index_of_.end() ? 0 : attempts_[it->second];
}

bool Scheduler::ready(std::size_t index) const {
  return !jobs_[index].gated &&
         std::all_of(dependencies_[index].begin(), dependencies_[index].end(),
                     [this](std::size_t d) { return states_[d] == State::kDone; });
}

void Scheduler::block_dependents(std::size_t failed) {
  for (std::size_t i = 0; i < jobs_.size(); ++i) {
    if (states_[i] != State::kPending) continue;
    const auto& deps = dependencies_[i];
    if (std::find(deps.begin(), deps.end(), failed) == deps.end()) continue;
    set_state(i, State::kFailed);
    blocked_.emplace_back(&jobs_[i], jobs_[failed].id);
    block_dependents(i);
  }
}

std::size_t Scheduler::index_of(const std::string& job_id) const {
  const auto it = index_of_.find(job_id);
  if (it == index_of_.end()) throw std::runtime_error("scheduler: unknown job '" + job_id + "'");
  return it->second;
}

void Scheduler::open(const std::string& job_id) {
  const std::size_t index = index_of(job_id);
  if (!jobs_[index].gated) return;
  jobs_[index].gated = false;
  if (states_[index] == State::kPending) cursor_ = std::min(cursor_, position_[index]);
}

bool Scheduler::prune(const std::string& job_id) {
  const std::size_t index = index_of(job_id);
  if (states_[index] != State::kPending && states_[index] != State::kRunning) return false;
  if (states_[index] == State::kRunning) {
    throw std::logic_error("scheduler: job '" + job_id + "' cannot be pruned: it runs");
  }
  for (std::size_t dependent : dependents_[index]) {
    if (states_[dependent] != State::kDone && states_[dependent] != State::kPruned) {
      throw std::logic_error("scheduler: job '" + job_id + "' cannot be pruned: job '" +
                             jobs_[dependent].id + "' depends on it");
    }
  }
  set_state(index, State::kPruned);
  return true;
}

bool Scheduler::gated_pending() const {
  for (std::size_t i = 0; i < jobs_.size(); ++i) {
    if (jobs_[i].gated && states_[i] == State::kPending) return true;
  }
  return false;
}

std::vector<std::pair<const ScheduledJob*, std::string>> Scheduler::take_blocked() {
  std::vector<std::pair<const ScheduledJob*, std::string>> out;
  out.swap(blocked_);
  return out;
}

std::size_t Scheduler::count(State state) const { return counts_[static_cast<int>(state)]; }

bool Scheduler::finished() const { return pending_count() == 0 && running_count() == 0; }
std::size_t Scheduler::pending_count() const { return count(State::kPending); }
std::size_t Scheduler::running_count() const { return count(State::kRunning); }
std::size_t Scheduler::done_count() const { return count(State::kDone); }
std::size_t Scheduler::failed_count() const { return count(State::kFailed); }
std::size_t Scheduler::pruned_count() const { return count(State::kPruned); }

std::vector<std::string> Scheduler::failed_ids() const {
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < jobs_.size(); ++i) {
    if (states_[i] == State::kFailed) ids.push_back(jobs_[i].id);
  }
  return ids;
}

std::map<int, std::string> Scheduler::running_ids() const {
  std::map<int, std::string> ids;
  for (const auto& [worker, index] : running_) ids.emplace(worker, jobs_[index].id);
  return ids;
}

}  // namespace mil::orch
