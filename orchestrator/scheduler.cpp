#include "orchestrator/scheduler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <stdexcept>
#include <utility>

namespace mil::orch {

std::vector<ScheduledJob> scheduled_jobs(const std::vector<JobSpec>& specs) {
  std::vector<ScheduledJob> jobs;
  jobs.reserve(specs.size());
  for (const auto& spec : specs) jobs.push_back(ScheduledJob{spec, spec.id(), /*cost=*/1.0});
  return jobs;
}

Scheduler::Scheduler(std::vector<ScheduledJob> jobs, const std::set<std::string>& already_done,
                     int max_attempts)
    : jobs_(std::move(jobs)), max_attempts_(max_attempts) {
  if (max_attempts_ < 1) throw std::runtime_error("scheduler: max_attempts must be >= 1");
  std::set<std::string> ids;
  for (const auto& job : jobs_) {
    if (!ids.insert(job.id).second) {
      throw std::runtime_error("scheduler: duplicate job id '" + job.id + "'");
    }
    if (!std::isfinite(job.cost)) {
      throw std::runtime_error("scheduler: job '" + job.id + "' has a non-finite cost");
    }
    states_.push_back(already_done.count(job.id) > 0 ? State::kDone : State::kPending);
  }
  attempts_.assign(jobs_.size(), 0);
  std::map<std::string, std::size_t> index_of;
  for (std::size_t i = 0; i < jobs_.size(); ++i) index_of.emplace(jobs_[i].id, i);
  dependencies_.resize(jobs_.size());
  for (std::size_t i = 0; i < jobs_.size(); ++i) {
    for (const auto& dependency : jobs_[i].depends_on) {
      const auto it = index_of.find(dependency);
      if (it != index_of.end()) {
        dependencies_[i].push_back(it->second);
      } else if (already_done.count(dependency) == 0) {
        throw std::runtime_error("scheduler: job '" + jobs_[i].id + "' depends on unknown job '" + dependency + "'");
      }
    }
  }
  order_.resize(jobs_.size());
  std::iota(order_.begin(), order_.end(), std::size_t{0});
  std::stable_sort(order_.begin(), order_.end(),
                   [this](std::size_t a, std::size_t b) { return jobs_[a].cost > jobs_[b].cost; });
}

Assignment Scheduler::next(int worker) {
  if (running_.count(worker) > 0) {
    throw std::runtime_error("scheduler: worker " + std::to_string(worker) +
                             " asked for work while holding job '" + jobs_[running_.at(worker)].id +
                             "'");
  }
  for (std::size_t index : order_) {
    if (states_[index] != State::kPending || !ready(index)) continue;
    states_[index] = State::kRunning;
    ++attempts_[index];
    running_[worker] = index;
    return Assignment{Assignment::Kind::kJob, &jobs_[index]};
  }
  // Nothing ready: wait while a running job can still finish (freeing its dependents) or be requeued.
  if (!running_.empty() && pending_count() > 0) return Assignment{Assignment::Kind::kWait, nullptr};
  for (const auto& [holder, index] : running_) {
    if (attempts_[index] < max_attempts_) return Assignment{Assignment::Kind::kWait, nullptr};
  }
  return Assignment{Assignment::Kind::kStop, nullptr};
}

void Scheduler::complete(int worker, const std::string& job_id, bool ok) {
  const auto it = running_.find(worker);
  if (it == running_.end() || jobs_[it->second].id != job_id) {
    throw std::runtime_error("scheduler: worker " + std::to_string(worker) + " reported job '" +
                             job_id + "' but holds " +
                             (it == running_.end() ? "none" : "'" + jobs_[it->second].id + "'"));
  }
  const std::size_t index = it->second;
  running_.erase(it);
  if (ok) {
    states_[index] = State::kDone;
  } else {
    release_unsuccessful(index);
  }
}

void Scheduler::worker_lost(int worker) {
  const auto it = running_.find(worker);
  if (it == running_.end()) return;
  const std::size_t index = it->second;
  running_.erase(it);
  release_unsuccessful(index);
}

void Scheduler::release_unsuccessful(std::size_t index) {
  states_[index] = attempts_[index] < max_attempts_ ? State::kPending : State::kFailed;
  if (states_[index] == State::kFailed) block_dependents(index);
}

bool Scheduler::ready(std::size_t index) const {
  return std::all_of(dependencies_[index].begin(), dependencies_[index].end(),
                     [this](std::size_t d) { return states_[d] == State::kDone; });
}

void Scheduler::block_dependents(std::size_t failed) {
  for (std::size_t i = 0; i < jobs_.size(); ++i) {
    if (states_[i] != State::kPending) continue;
    const auto& deps = dependencies_[i];
    if (std::find(deps.begin(), deps.end(), failed) == deps.end()) continue;
    states_[i] = State::kFailed;
    blocked_.emplace_back(&jobs_[i], jobs_[failed].id);
    block_dependents(i);
  }
}

std::vector<std::pair<const ScheduledJob*, std::string>> Scheduler::take_blocked() {
  std::vector<std::pair<const ScheduledJob*, std::string>> out;
  out.swap(blocked_);
  return out;
}

std::size_t Scheduler::count(State state) const {
  return static_cast<std::size_t>(std::count(states_.begin(), states_.end(), state));
}

bool Scheduler::finished() const { return pending_count() == 0 && running_count() == 0; }
std::size_t Scheduler::pending_count() const { return count(State::kPending); }
std::size_t Scheduler::running_count() const { return count(State::kRunning); }
std::size_t Scheduler::done_count() const { return count(State::kDone); }
std::size_t Scheduler::failed_count() const { return count(State::kFailed); }

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
