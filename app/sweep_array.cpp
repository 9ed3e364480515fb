// `mhim sweep --array`: one standalone worker of a sweep shared through the results directory's
// lock files. No MPI: any number of these (Slurm array tasks, processes on several hosts) finish
// the sweep together, each job exactly once (orchestrator/results/lock_queue.h).
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <memory>
#include <sstream>

#include "app/commands.h"
#include "app/cost_setup.h"
#include "mil/core/durable_file.h"
#include "orchestrator/leaderboard/leaderboard.h"
#include "orchestrator/results/lock_queue.h"
#include "orchestrator/results/store.h"
#include "orchestrator/schedule/job_graph.h"
#include "orchestrator/sweep/sweep.h"
#include "worker/device_placement.h"
#include "worker/job_runner.h"

namespace mil::app {
namespace {

/// "array task 3" under Slurm, else "host:pid": who wrote a log line.
std::string worker_name(const orch::LockOwner& owner) {
  if (!owner.slurm_array_task_id.empty()) return "array task " + owner.slurm_array_task_id;
  return owner.host + ":" + std::to_string(owner.pid);
}

void log_line(const std::string& who, const std::string& line) {
  const std::time_t now = std::time(nullptr);
  char stamp[16];
  std::strftime(stamp, sizeof stamp, "%H:%M:%S", std::localtime(&now));
  std::fprintf(stderr, "%s [%s] %s\n", stamp, who.c_str(), line.c_str());
  std::fflush(stderr);
}

/// The manifest is the same for every worker of one sweep: write it only when it differs, so that
/// concurrent starts rarely rewrite it (each write is an atomic rename anyway).
void write_manifest_if_changed(orch::ResultsStore& store, const std::vector<JobSpec>& jobs) {
  std::vector<std::string> ids, old_ids;
  for (const auto& job : jobs) ids.push_back(job.id());
  try {
    for (const auto& job : store.load_manifest()) old_ids.push_back(job.id());
  } catch (const std::exception&) {
    old_ids.clear();  // another version's manifest: rewrite it
  }
  if (ids != old_ids) store.write_manifest(jobs);
}

}  // namespace

int run_sweep_array(const std::string& sweep_path, const std::vector<std::string>& overrides,
                    const std::string& results_dir, int requested_threads, double lock_timeout_s) {
  const std::atomic<bool>* stop_requested = install_stop_handlers();
  const orch::LockOwner owner = orch::this_process_owner();
  const std::string who = worker_name(owner);
  const auto log = [&who](const std::string& line) { log_line(who, line); };
  const auto start = std::chrono::steady_clock::now();

  const orch::SweepSpec sweep = orch::load_sweep(sweep_path, overrides);
  const std::vector<JobSpec> jobs = orch::with_teacher_baselines(orch::expand(sweep));
  for (const JobSpec& job : jobs) {
    // Array workers are separate processes without a shared MPI world, so they cannot form rank
    // groups.
    if (job.train.ranks > 1) {
      throw std::runtime_error(sweep_path + ": job " + job.id() + " (dataset '" + job.dataset.name +
                               "', model '" + job.model.name + "', fold " +
                               std::to_string(job.split.fold_index) +
                               ") has train.ranks = " + std::to_string(job.train.ranks) +
                               "; array mode runs every job in one process: "
                               "run this sweep under mpirun instead");
    }
  }
  orch::ResultsStore store(results_dir);
  write_manifest_if_changed(store, jobs);
  if (orch::read_sweep_name(results_dir) != sweep.name)
    orch::write_sweep_name(results_dir, sweep.name);

  orch::LockQueueOptions options;
  options.lock_timeout_s = lock_timeout_s;
  options.heartbeat_interval_s = std::min(30.0, lock_timeout_s / 4);
  options.run_id = orch::run_id_from_environment();
  options.prune = sweep.prune;
  const int threads = configure_threads(requested_threads, 1);
  // The same order as an MPI sweep's: longest predicted first, calibrated by the results on disk.
  orch::RunContext context;
  context.device = worker::visible_cuda_devices() > 0 ? "cuda" : "cpu";
  context.threads = threads;
  std::unique_ptr<orch::SweepCosts> costs;
  orch::LockQueue queue(store, costed_jobs(jobs, make_cost_model(context), store.load_all(), costs),
                        owner, options);

  log("array worker ready: sweep '" + sweep.name + "', " + std::to_string(jobs.size()) + " jobs, " +
      std::to_string(threads) + " LibTorch threads, results in " + results_dir);
  worker::DatasetCache cache;
  worker::RunOptions run_options;
  run_options.log = log;
  run_options.stop_requested = stop_requested;
  if (context.device == "cuda") run_options.device = c10::Device(c10::kCUDA, 0);  // its one GPU
  const auto run = [&](const JobSpec& spec) {
    run_options.work_dir = results_dir + "/work/" + spec.id();
    JobResult result = worker::run_job(spec, run_options, cache);
    result.runtime["predicted_s"] = costs->seconds_of(spec.id());
    return result;
  };
  const orch::LockQueueOutcome outcome =
      orch::run_lock_queue(queue, store, run, log, stop_requested);

  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  log("array worker done in " + std::to_string(int(seconds)) + " s: ran " +
      std::to_string(outcome.ran_ok) + " ok, " + std::to_string(outcome.ran_failed) + " failed" +
      (outcome.lost ? ", " + std::to_string(outcome.lost) + " lost to another process" : "") +
      (outcome.pruned_total ? ", " + std::to_string(outcome.pruned_total) + " pruned in the sweep"
                            : "") +
      (outcome.stopped ? ", " + std::to_string(outcome.interrupted) +
                             " interrupted; stopped on request, rerun to resume"
                       : "; the sweep is finished"));
  if (outcome.stopped) return kExitInterrupted;
  // Every worker that sees the sweep finished writes the leaderboard (atomic files, same content).
  const std::string board = orch::write_leaderboard(results_dir);
  std::printf("leaderboard: %s\n", board.c_str());
  std::fflush(stdout);
  return outcome.failed_total == 0 ? 0 : 3;
}

}  // namespace mil::app
