#include "orchestrator/schedule/priority.h"

#include <map>
#include <stdexcept>

namespace mil::orch {
namespace {

/// dependents[i]: indices of the jobs that name job i in their depends_on.
std::vector<std::vector<std::size_t>> dependents_of(const std::vector<ScheduledJob>& jobs) {
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < jobs.size(); ++i) index.emplace(jobs[i].id, i);
  std::vector<std::vector<std::size_t>> dependents(jobs.size());
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    for (const std::string& dependency : jobs[i].depends_on) {
      const auto it = index.find(dependency);
      if (it != index.end()) dependents[it->second].push_back(i);
    }
  }
  return dependents;
}

}  // namespace

std::vector<double> critical_path_priorities(const std::vector<ScheduledJob>& jobs,
                                             const std::vector<double>& seconds) {
  if (seconds.size() != jobs.size()) {
    throw std::runtime_error("priorities: " + std::to_string(seconds.size()) + " costs for " +
                             std::to_string(jobs.size()) + " jobs");
  }
  const auto dependents = dependents_of(jobs);
  enum class Mark { kNew, kOpen, kDone };
  std::vector<Mark> marks(jobs.size(), Mark::kNew);
  std::vector<double> priority(jobs.size(), 0.0);
  // Iterative depth-first search: a job is finished once all its dependents are.
  for (std::size_t root = 0; root < jobs.size(); ++root) {
    if (marks[root] != Mark::kNew) continue;
    std::vector<std::pair<std::size_t, std::size_t>> stack = {{root, 0}};  // job, next dependent
    marks[root] = Mark::kOpen;
    while (!stack.empty()) {
      auto& [job, next] = stack.back();
      if (next < dependents[job].size()) {
        const std::size_t child = dependents[job][next++];
        if (marks[child] == Mark::kOpen) {
          throw std::runtime_error("priorities: the dependencies of job '" + jobs[child].id +
                                   "' form a cycle");
        }
        if (marks[child] == Mark::kNew) {
          marks[child] = Mark::kOpen;
          stack.emplace_back(child, 0);
        }
        continue;
      }
      double longest = 0;
      for (std::size_t child : dependents[job]) longest = std::max(longest, priority[child]);
      priority[job] = seconds[job] + longest;
      marks[job] = Mark::kDone;
      stack.pop_back();
    }
  }
  return priority;
}

void prioritize(std::vector<ScheduledJob>& jobs, const std::vector<double>& seconds) {
  const std::vector<double> priority = critical_path_priorities(jobs, seconds);
  for (std::size_t i = 0; i < jobs.size(); ++i) jobs[i].cost = priority[i];
}

std::vector<std::size_t> critical_path(const std::vector<ScheduledJob>& jobs,
                                       const std::vector<double>& priorities) {
  std::vector<std::size_t> path;
  if (jobs.empty()) return path;
  const auto dependents = dependents_of(jobs);
  std::size_t at = 0;
  for (std::size_t i = 1; i < jobs.size(); ++i) {
    if (priorities[i] > priorities[at]) at = i;
  }
  for (;;) {
    path.push_back(at);
    if (dependents[at].empty()) return path;
    std::size_t best = dependents[at].front();
    for (std::size_t child : dependents[at]) {
      if (priorities[child] > priorities[best]) best = child;
    }
    at = best;
  }
}

}  // namespace mil::orch
