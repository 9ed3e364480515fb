#include "orchestrator/schedule/plan.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>

#include "orchestrator/schedule/device_memory.h"
#include "orchestrator/schedule/priority.h"

namespace mil::orch {
namespace {

/// Where a simulated worker sits.
struct SimWorker {
  int node = 0;
  int gpu = -1;  ///< Index among all GPUs; -1 = a CPU worker.
};

/// A job running in the simulation.
struct Running {
  std::size_t job = 0;
  std::vector<int> group;  ///< Its workers (ids 1..W).
  double remaining = 0;    ///< Seconds of work left at lone speed.
  double rate = 1;         ///< Lone-speed seconds done per wall second now.
  double start = 0;
};

std::vector<SimWorker> lay_out(const PlanCluster& c) {
  std::vector<SimWorker> workers;
  for (int node = 0; node < c.nodes; ++node) {
    if (c.gpus_per_node > 0) {
      for (int i = 0; i < c.gpus_per_node * c.jobs_per_gpu; ++i) {
        workers.push_back({node, node * c.gpus_per_node + i / c.jobs_per_gpu});
      }
    } else {
      for (int i = 0; i < c.cpu_workers_per_node; ++i) workers.push_back({node, -1});
    }
  }
  return workers;
}

/// Sets every running job's rate from what shares its node's cores or its GPU.
void update_rates(std::vector<Running>& running, const std::vector<SimWorker>& workers,
                  const PlanCluster& c) {
  std::map<int, double> node_threads;  // CPU threads asked for per node
  std::map<int, int> gpu_jobs;         // jobs per GPU
  for (const Running& r : running) {
    for (int w : r.group) {
      const SimWorker& at = workers[std::size_t(w - 1)];
      if (at.gpu >= 0) {
        ++gpu_jobs[at.gpu];
      } else {
        node_threads[at.node] += c.threads_per_job;
      }
    }
  }
  for (Running& r : running) {
    double rate = 1;
    for (int w : r.group) {
      const SimWorker& at = workers[std::size_t(w - 1)];
      if (at.gpu >= 0) {
        rate = std::min(rate, 1.0 / std::max(1.0, gpu_jobs[at.gpu] * c.gpu_busy));
      } else if (c.cpus_per_node > 0) {
        rate = std::min(rate,
                        c.cpus_per_node / std::max<double>(c.cpus_per_node, node_threads[at.node]));
      }
    }
    r.rate = rate;
  }
}

void check_inputs(const std::vector<ScheduledJob>& jobs, const std::vector<double>& seconds,
                  const std::vector<double>& device_bytes, const PlanCluster& c) {
  if (seconds.size() != jobs.size() ||
      (!device_bytes.empty() && device_bytes.size() != jobs.size())) {
    throw std::runtime_error("plan: seconds and device bytes must be given for every job");
  }
  if (c.nodes < 1 || c.jobs_per_gpu < 1 || c.gpus_per_node < 0 || c.threads_per_job < 1 ||
      (c.gpus_per_node == 0 && c.cpu_workers_per_node < 1)) {
    throw std::runtime_error("plan: nodes, jobs per GPU, threads and CPU workers must be >= 1");
  }
  if (!(c.gpu_busy > 0 && c.gpu_busy <= 1))
    throw std::runtime_error("plan: gpu_busy must be in (0, 1]");
  for (const ScheduledJob& job : jobs) {
    if (job.ranks > c.workers()) {
      throw std::runtime_error("plan: job " + job.id + " needs " + std::to_string(job.ranks) +
                               " ranks but the cluster has " + std::to_string(c.workers()) +
                               " workers");
    }
  }
}

}  // namespace

int PlanCluster::workers() const {
  return nodes * (gpus_per_node > 0 ? gpus_per_node * jobs_per_gpu : cpu_workers_per_node);
}

PlanResult simulate_plan(const std::vector<ScheduledJob>& jobs, const std::vector<double>& seconds,
                         const std::vector<double>& device_bytes, const PlanCluster& cluster) {
  check_inputs(jobs, seconds, device_bytes, cluster);
  const std::vector<SimWorker> workers = lay_out(cluster);
  PlanResult result;
  result.workers = int(workers.size());
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    index.emplace(jobs[i].id, i);
    result.work_s += seconds[i] * jobs[i].ranks;
  }
  const std::vector<double> chain = critical_path_priorities(jobs, seconds);
  result.critical_path = critical_path(jobs, chain);
  for (std::size_t i : result.critical_path) result.critical_path_s += seconds[i];
  result.lower_bound_s =
      std::max(result.critical_path_s, result.work_s / std::max(1, result.workers));

  DeviceMemoryGuard guard;
  for (std::size_t w = 0; w < workers.size(); ++w) {
    if (workers[w].gpu < 0) continue;
    const std::string gpu = std::to_string(workers[w].gpu);
    guard.add_device(gpu, cluster.gpu_memory_bytes);
    guard.assign(int(w) + 1, gpu);
  }
  const auto bytes_of = [&](const ScheduledJob& job) {
    return device_bytes.empty() ? 0.0 : device_bytes[index.at(job.id)];
  };
  Scheduler scheduler(jobs, /*already_done=*/{}, /*max_attempts=*/1);
  std::vector<Running> running;
  std::set<int> idle;  // asking (or told to wait); held and stopped workers are in neither set
  for (std::size_t w = 1; w <= workers.size(); ++w) idle.insert(int(w));
  double now = 0;
  for (;;) {
    // Every idle worker asks, in rank order, as rank 0 would answer a burst of requests.
    for (auto it = idle.begin(); it != idle.end();) {
      const int worker = *it;
      const Assignment a = scheduler.next(
          worker, [&](const ScheduledJob& job) { return guard.fits(worker, bytes_of(job)); });
      if (a.kind == Assignment::Kind::kWait) {
        ++it;
        continue;
      }
      it = idle.erase(it);
      if (a.kind != Assignment::Kind::kJob) continue;  // kHold: taken with a later group; kStop
      const std::size_t job = index.at(a.job->id);
      for (int member : a.group) {
        idle.erase(member);
        guard.start(member, bytes_of(*a.job));
      }
      running.push_back({job, a.group, seconds[job], 1, now});
      it = idle.begin();  // a group may have taken workers before this one
      while (it != idle.end() && *it <= worker) ++it;
    }
    if (running.empty()) break;
    update_rates(running, workers, cluster);
    double step = std::numeric_limits<double>::infinity();
    for (const Running& r : running) step = std::min(step, r.remaining / r.rate);
    now += step;
    std::vector<Running> still;
    for (Running& r : running) {
      r.remaining -= r.rate * step;
      if (r.remaining > 1e-9 * std::max(1.0, seconds[r.job])) {
        still.push_back(r);
        continue;
      }
      result.runs.push_back({r.job, r.group.front(), r.start, now});
      for (int member : r.group) {
        scheduler.complete(member, jobs[r.job].id, /*ok=*/true);
        guard.finish(member);
        result.busy_s += now - r.start;
        idle.insert(member);
      }
    }
    running.swap(still);
  }
  result.makespan_s = now;
  result.never_ran = scheduler.pending_count();
  result.utilisation = now > 0 ? result.busy_s / (result.workers * now) : 0;
  std::sort(result.runs.begin(), result.runs.end(), [](const PlannedRun& a, const PlannedRun& b) {
    return a.start_s != b.start_s ? a.start_s < b.start_s : a.worker < b.worker;
  });
  return result;
}

std::vector<std::size_t> halving_survivors(const std::vector<ScheduledJob>& jobs,
                                           const HalvingSettings& settings,
                                           std::vector<ScheduledJob>& kept_jobs) {
  if (settings.eta < 2) throw std::runtime_error("plan: halving eta must be >= 2");
  // Points (configurations) that some job depends on are never pruned.
  std::set<std::string> depended_on;
  for (const ScheduledJob& job : jobs)
    depended_on.insert(job.depends_on.begin(), job.depends_on.end());
  struct Point {
    std::vector<std::size_t> jobs;
    std::set<int> folds;
    bool exempt = false;
  };
  std::map<std::string, Point> points;  // by config id
  std::vector<std::string> point_order;
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> brackets;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const JobSpec& spec = jobs[i].spec;
    const std::string config = spec.config_id();
    auto [it, inserted] = points.emplace(config, Point{});
    if (inserted) {
      point_order.push_back(config);
      const std::string method = spec.model.method.empty() ? spec.model.name : spec.model.method;
      brackets[{spec.dataset.name, method}].push_back(config);
    }
    it->second.jobs.push_back(i);
    it->second.folds.insert(spec.split.fold_index);
    it->second.exempt |= depended_on.count(jobs[i].id) > 0;
  }
  std::vector<bool> keep(jobs.size(), true);
  std::vector<std::vector<std::string>> extra_deps(jobs.size());
  for (const auto& [key, configs] : brackets) {
    std::vector<std::string> prunable;
    for (const auto& c : configs) {
      if (!points[c].exempt) prunable.push_back(c);
    }
    if (prunable.size() < 2) continue;
    // Rung of every fold, by the fold's place among the point's folds.
    const std::vector<int> folds(points[prunable.front()].folds.begin(),
                                 points[prunable.front()].folds.end());
    std::vector<int> ends = settings.rungs;
    if (ends.empty()) {
      for (std::size_t f = 1; f <= folds.size(); ++f) ends.push_back(int(f));
    }
    if (ends.back() < int(folds.size())) ends.push_back(int(folds.size()));
    const auto rung_of = [&](int fold) {
      const int place = int(std::find(folds.begin(), folds.end(), fold) - folds.begin());
      return int(std::upper_bound(ends.begin(), ends.end(), place) - ends.begin());
    };
    std::size_t alive = prunable.size();
    std::vector<std::string> previous_rung_jobs;
    for (std::size_t rung = 0; rung < ends.size(); ++rung) {
      std::vector<std::string> rung_jobs;
      for (std::size_t p = 0; p < prunable.size(); ++p) {
        for (std::size_t i : points[prunable[p]].jobs) {
          if (rung_of(jobs[i].spec.split.fold_index) != int(rung)) continue;
          if (p >= alive) {
            keep[i] = false;
            continue;
          }
          extra_deps[i] = previous_rung_jobs;
          rung_jobs.push_back(jobs[i].id);
        }
      }
      previous_rung_jobs = rung_jobs;
      alive = (alive + std::size_t(settings.eta) - 1) / std::size_t(settings.eta);
    }
  }
  std::vector<std::size_t> kept;
  kept_jobs.clear();
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    if (!keep[i]) continue;
    kept.push_back(i);
    ScheduledJob job = jobs[i];
    job.depends_on.insert(job.depends_on.end(), extra_deps[i].begin(), extra_deps[i].end());
    kept_jobs.push_back(std::move(job));
  }
  return kept;
}

}  // namespace mil::orch
