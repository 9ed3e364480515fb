#pragma once
// `mhim plan`: how long a sweep will take on a cluster, before it is submitted. A discrete-event
// simulation runs the real Scheduler (the same order, dependencies, rank groups and device-memory
// guard that rank 0 uses) with simulated workers, each job taking its predicted seconds:
//
//   - every idle worker asks the Scheduler for work, in rank order, as rank 0 answers them;
//   - running jobs progress at a rate that models sharing: CPU jobs on a node share its cores
//     (rate min(1, cpus / (running jobs x threads))), and k jobs on one GPU each run at
//     min(1, 1 / (k x gpu_busy)) of their lone speed, gpu_busy being the share of the GPU one job
//     keeps busy alone;
//   - when a job ends, its workers (and any worker that was told to wait) ask again.
//
// Pure: no MPI, clock or files, so tests check makespans against hand-computed schedules.
#include <cstddef>
#include <string>
#include <vector>

#include "orchestrator/schedule/scheduler.h"

namespace mil::orch {

/// The machines a plan simulates. Worker ranks only: rank 0 (the orchestrator) holds no GPU and
/// next to no CPU.
struct PlanCluster {
  int nodes = 1;          ///< Nodes.
  int gpus_per_node = 0;  ///< GPUs per node; 0 = CPU workers.
  int jobs_per_gpu = 1;   ///< Worker ranks per GPU (K): GPU sweeps have nodes x gpus x K workers.
  int cpu_workers_per_node = 1;  ///< CPU sweeps: worker ranks per node.
  int cpus_per_node = 0;    ///< Cores per node that CPU jobs share; 0 = as many as they ask for.
  int threads_per_job = 1;  ///< LibTorch threads of a CPU job.
  double gpu_memory_bytes = 0;  ///< Memory of one GPU; 0 = unknown (no memory guard).
  double gpu_busy = 1.0;  ///< Share of a GPU one job keeps busy alone, in (0, 1] (file comment).

  /// Worker ranks in all.
  int workers() const;
};

/// When one job ran in the simulation.
struct PlannedRun {
  std::size_t job = 0;  ///< Index into the jobs given to simulate_plan.
  int worker = 0;       ///< Its (first) worker, 1-based as MPI ranks.
  double start_s = 0;   ///< Seconds from the sweep's start.
  double end_s = 0;     ///< Seconds from the sweep's start.
};

/// What the simulation predicts.
struct PlanResult {
  int workers = 0;         ///< Worker ranks simulated.
  double makespan_s = 0;   ///< Wall seconds from the first job out to the last result.
  double work_s = 0;       ///< Sum over jobs of predicted seconds x ranks (alone, unshared).
  double busy_s = 0;       ///< Sum over workers of the wall seconds they held a job.
  double utilisation = 0;  ///< busy_s / (workers x makespan_s): the share of worker time used.
  /// max(longest dependency chain, work_s / workers): no schedule can finish sooner (without
  /// sharing slow-downs).
  double lower_bound_s = 0;
  std::vector<std::size_t> critical_path;  ///< Job indices of the longest dependency chain.
  double critical_path_s = 0;              ///< Its predicted seconds.
  std::vector<PlannedRun> runs;            ///< Every job that ran, by start time, then worker.
  std::size_t never_ran = 0;  ///< Jobs left when no worker could take any (should stay 0).
};

/// Simulates `jobs` (ScheduledJob::cost orders them, as in the sweep) where job i takes seconds[i]
/// alone and holds device_bytes[i] on its GPU (empty = 0 each) on `cluster`. Throws on size
/// mismatches, a job needing more ranks than there are workers, or gpu_busy outside (0, 1].
PlanResult simulate_plan(const std::vector<ScheduledJob>& jobs, const std::vector<double>& seconds,
                         const std::vector<double>& device_bytes, const PlanCluster& cluster);

/// Successive halving as a sweep's `prune:` key sets it (assumed settings when the sweep has none).
struct HalvingSettings {
  int eta = 3;  ///< The best ceil(n / eta) points of a rung go on (>= 2).
  /// Cumulative fold counts that end each rung, e.g. {1, 3}; the last rung holds every fold. Empty
  /// = one fold per rung.
  std::vector<int> rungs;
};

/// The jobs successive halving would run, for planning: per (dataset, method) bracket of >= 2 grid
/// points (JobSpec::config_id) that no other job depends on, the first ceil(n / eta) points in
/// sweep order stand in for the survivors of each rung (within a bracket the points cost about the
/// same, so which survive barely changes the time), and every job of rung r + 1 waits on every job
/// of rung r of its bracket (the decision needs them all). Other jobs are kept as they are. Returns
/// the indices (into `jobs`) kept, in order; `kept_jobs` receives them with the added dependencies.
std::vector<std::size_t> halving_survivors(const std::vector<ScheduledJob>& jobs,
                                           const HalvingSettings& settings,
                                           std::vector<ScheduledJob>& kept_jobs);

}  // namespace mil::orch
