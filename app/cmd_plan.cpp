// `mhim plan`: predicted makespan, utilisation, critical path and pruning savings of a sweep on a
// cluster, from the cost model and a simulation of the real Scheduler
// (orchestrator/schedule/plan.h).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <set>
#include <thread>

#include "app/args.h"
#include "app/cmd_plan.h"
#include "app/cost_setup.h"
#include "orchestrator/results/store.h"
#include "orchestrator/schedule/job_graph.h"
#include "orchestrator/schedule/plan.h"
#include "orchestrator/schedule/priority.h"
#include "orchestrator/sweep/sweep.h"

namespace mil::app {
namespace {

constexpr const char* kHelp =
    R"(usage: mhim plan SWEEP.yaml --nodes N --gpus-per-node G [--jobs-per-gpu K] [options]
       mhim plan SWEEP.yaml --ranks R [--cpus C] [--threads T]      (one CPU node, as mpirun -n R)

Predicts how long a sweep takes on a cluster before it is submitted: every job's seconds come from
the cost model (the catalogue's cost table x instances per epoch x expected epochs; see `mhim sweep
--dry-run`), then the real Scheduler hands the jobs out to simulated worker ranks in the order `mhim
sweep` uses (longest predicted first, teacher baselines ahead of the jobs they gate). Prints the
predicted makespan, worker utilisation, the critical path (a baseline -> its longest MHIM job), the
same sweep in file order, and what successive-halving pruning would save. Nothing runs.

cluster:
  --nodes N             nodes (default 1)
  --gpus-per-node G     GPUs per node; 0 = CPU nodes (default 0)
  --jobs-per-gpu K      worker ranks per GPU (default: the sweep's jobs_per_gpu, else 1)
  --ranks R             CPU: one node with R MPI ranks (R - 1 workers), as `mpirun -n R mhim sweep`
  --workers-per-node W  CPU nodes: worker ranks per node (default: --ranks - 1, else cpus / threads)
  --cpus C              cores per node shared by CPU jobs (default: this machine's, for --ranks)
  --threads T           LibTorch threads per CPU job (default: cores / ranks on the node, as mhim sweep)
  --gpu-memory-gb M     memory of one GPU (default 80); jobs that do not fit beside others wait
assumptions (GPU sweeps, until scripts/gpu_packing_bench.sh has measured them):
  --gpu-speedup S       a GPU job runs S x faster than the table's one-thread CPU row (default 100)
  --gpu-busy F          share of a GPU one job keeps busy alone, (0, 1] (default 0.3): K jobs on one
                        GPU each run at min(1, 1 / (K x F)) of their lone speed
inputs:
  --set KEY=VALUE       sweep override; repeatable
  --results DIR         the folder the sweep runs into: plan only the jobs without an ok result there,
                        calibrated by those that have one (what a resumed sweep knows)
  --calibrate-from DIR  also calibrate with the finished jobs of another results folder, e.g. an
                        earlier sweep on the same machines; repeatable
  --stand-ins SCALE     size datasets that are not on this machine from the `mhim synth --all`
                        stand-in profiles at SCALE (1 = the real cohorts' bag and instance counts)
  --prune-eta E         successive halving to estimate (default 3; the sweep's prune key when it has one)
  --prune-rungs LIST    cumulative fold counts ending each rung, e.g. 1,3 (default: one fold per rung)
output:
  --json FILE           also write the plan (summary and every job's simulated start and end) as JSON

examples:
  mhim plan sweeps/mhim_v2_grid.yaml --nodes 1 --gpus-per-node 8 --stand-ins 1
  mhim plan sweeps/mhim_v2_grid.yaml --nodes 4 --gpus-per-node 8 --jobs-per-gpu 4 --stand-ins 1
  mhim plan sweeps/quickstart.yaml --ranks 5 --results results/qs
)";

/// What the user asked for.
struct PlanRequest {
  std::string sweep_path;
  std::vector<std::string> overrides;
  orch::PlanCluster cluster;
  orch::RunContext context;
  SizeSource sizes;
  std::string results_dir;
  std::vector<std::string> calibrate_from;
  orch::HalvingSettings halving;
  bool halving_from_flags =
      false;  ///< --prune-eta or --prune-rungs given: they win over the sweep.
  std::string json_path;
};

std::vector<int> int_list(const std::string& text) {
  std::vector<int> out;
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t comma = std::min(text.find(',', at), text.size());
    out.push_back(std::stoi(text.substr(at, comma - at)));
    at = comma + 1;
  }
  return out;
}

PlanRequest parse_request(const Tokens& tokens) {
  const Args args(tokens,
                  {"nodes", "gpus-per-node", "jobs-per-gpu", "ranks", "workers-per-node", "cpus",
                   "threads", "gpu-memory-gb", "gpu-speedup", "gpu-busy", "set", "results",
                   "stand-ins", "prune-eta", "prune-rungs", "json", "calibrate-from"},
                  {});
  if (args.positional().size() != 1) throw UsageError("expected exactly one sweep file");
  PlanRequest r;
  r.sweep_path = args.positional()[0];
  r.overrides = args.get_all("set");
  orch::PlanCluster& c = r.cluster;
  c.nodes = args.get_int("nodes", 1);
  c.gpus_per_node = args.get_int("gpus-per-node", 0);
  c.jobs_per_gpu = args.get_int("jobs-per-gpu", 0);  // 0: the sweep's, resolved later
  const int ranks = args.get_int("ranks", 0);
  if (ranks == 1 || ranks < 0) throw UsageError("--ranks must be >= 2: rank 0 only orchestrates");
  if (ranks > 0 && (c.gpus_per_node > 0 || c.nodes != 1)) {
    throw UsageError(
        "--ranks plans one CPU node; give --nodes and --gpus-per-node for GPU clusters");
  }
  const int hardware = int(std::max(1u, std::thread::hardware_concurrency()));
  c.cpus_per_node = args.get_int("cpus", ranks > 0 ? hardware : 0);
  const int ranks_on_node = ranks > 0 ? ranks : std::max(1, c.cpus_per_node);
  c.threads_per_job = args.get_int(
      "threads", c.cpus_per_node > 0 ? std::max(1, c.cpus_per_node / ranks_on_node) : 1);
  c.cpu_workers_per_node = args.get_int(
      "workers-per-node",
      ranks > 0 ? ranks - 1 : std::max(1, c.cpus_per_node / std::max(1, c.threads_per_job)));
  c.gpu_memory_bytes = args.get_double("gpu-memory-gb", 80) * 1e9;
  c.gpu_busy = args.get_double("gpu-busy", 0.3);
  if (c.nodes < 1 || c.gpus_per_node < 0 || c.jobs_per_gpu < 0 || c.threads_per_job < 1 ||
      c.cpu_workers_per_node < 1) {
    throw UsageError(
        "--nodes, --threads and --workers-per-node must be >= 1, --gpus-per-node >= 0");
  }
  if (!(c.gpu_busy > 0 && c.gpu_busy <= 1)) throw UsageError("--gpu-busy must be in (0, 1]");
  r.context.device = c.gpus_per_node > 0 ? "cuda" : "cpu";
  r.context.threads = c.threads_per_job;
  r.context.cuda_speedup = args.get_double("gpu-speedup", orch::kAssumedCudaSpeedup);
  if (!(r.context.cuda_speedup > 0)) throw UsageError("--gpu-speedup must be > 0");
  r.sizes.stand_in_scale = args.get_double("stand-ins", 0);
  r.results_dir = args.get("results", "");
  r.calibrate_from = args.get_all("calibrate-from");
  r.halving_from_flags = args.has("prune-eta") || args.has("prune-rungs");
  r.halving.eta = args.get_int("prune-eta", 3);
  if (r.halving.eta < 2) throw UsageError("--prune-eta must be >= 2");
  try {
    if (args.has("prune-rungs")) r.halving.rungs = int_list(args.get("prune-rungs", ""));
  } catch (const std::exception&) {
    throw UsageError("--prune-rungs takes comma-separated fold counts, e.g. 1,3");
  }
  r.json_path = args.get("json", "");
  return r;
}

std::string cluster_line(const orch::PlanCluster& c) {
  if (c.gpus_per_node > 0) {
    return std::to_string(c.nodes) + " node(s) x " + std::to_string(c.gpus_per_node) + " GPUs x " +
           std::to_string(c.jobs_per_gpu) + " job(s) per GPU = " + std::to_string(c.workers()) +
           " worker ranks (rank 0 holds no GPU)";
  }
  return std::to_string(c.nodes) + " CPU node(s) x " + std::to_string(c.cpu_workers_per_node) +
         " worker ranks x " + std::to_string(c.threads_per_job) + " thread(s)" +
         (c.cpus_per_node > 0 ? " on " + std::to_string(c.cpus_per_node) + " cores per node" : "");
}

void print_table_used(const orch::CostModel& model, const std::vector<orch::ScheduledJob>& jobs) {
  std::set<std::string> shown;
  std::printf("cost table rows used (seconds per instance, one thread for cpu rows):\n");
  if (model.context().device == "cuda") {
    std::printf(
        "  (GPU jobs: the cpu row / %g, an assumed GPU speed-up, not measured: --gpu-speedup)\n",
        model.context().cuda_speedup);
  }
  for (const auto& job : jobs) {
    const std::string key = orch::cost_key(job.spec.model) + " " + job.spec.train.precision;
    if (!shown.insert(key).second) continue;
    const orch::InstanceCost* row = model.row(job.spec);
    if (row == nullptr) row = model.row(job.spec, "cpu");
    if (row == nullptr) {
      std::printf("  %-22s none\n", key.c_str());
      continue;
    }
    std::printf("  %-22s %-4s train %.3g  eval %.3g  %s\n", key.c_str(), row->device.c_str(),
                row->train_s, row->eval_s, row->source.c_str());
  }
}

/// The critical path as "job (dataset, method, fold) s -> ...".
void print_critical_path(const std::vector<orch::ScheduledJob>& jobs,
                         const std::vector<double>& seconds, const orch::PlanResult& plan) {
  std::printf("critical path (%s):\n", orch::format_hms(plan.critical_path_s).c_str());
  for (std::size_t at = 0; at < plan.critical_path.size(); ++at) {
    const std::size_t i = plan.critical_path[at];
    const JobSpec& s = jobs[i].spec;
    std::printf("  %s %s  %s  %s  fold %d  seed %llu  %s\n", at == 0 ? "  " : "->",
                jobs[i].id.c_str(), s.dataset.name.c_str(),
                (s.model.method.empty() ? s.model.name : s.model.method).c_str(),
                s.split.fold_index, static_cast<unsigned long long>(s.seed),
                orch::format_hms(seconds[i]).c_str());
  }
}

void print_plan_line(const char* label, const orch::PlanResult& plan) {
  std::printf("%-28s makespan %s  (lower bound %s), utilisation %.1f%%, %s of worker time\n", label,
              orch::format_hms(plan.makespan_s).c_str(),
              orch::format_hms(plan.lower_bound_s).c_str(), 100 * plan.utilisation,
              orch::format_hms(plan.work_s).c_str());
}

nlohmann::json plan_json(const std::vector<orch::ScheduledJob>& jobs,
                         const std::vector<double>& seconds, const orch::PlanResult& plan) {
  nlohmann::json runs = nlohmann::json::array();
  for (const auto& r : plan.runs) {
    runs.push_back({{"job_id", jobs[r.job].id},
                    {"worker", r.worker},
                    {"start_s", r.start_s},
                    {"end_s", r.end_s},
                    {"predicted_s", seconds[r.job]}});
  }
  return {{"workers", plan.workers},
          {"makespan_s", plan.makespan_s},
          {"work_s", plan.work_s},
          {"utilisation", plan.utilisation},
          {"lower_bound_s", plan.lower_bound_s},
          {"critical_path_s", plan.critical_path_s},
          {"runs", runs}};
}

int run_plan(const PlanRequest& request) {
  const orch::SweepSpec sweep = orch::load_sweep(request.sweep_path, request.overrides);
  orch::PlanCluster cluster = request.cluster;
  if (cluster.jobs_per_gpu == 0) cluster.jobs_per_gpu = std::max(1, sweep.jobs_per_gpu);
  std::vector<JobSpec> specs = orch::expand(sweep);
  std::vector<JobResult> finished;
  std::set<std::string> done;
  if (!request.results_dir.empty()) {
    finished = orch::ResultsStore(request.results_dir).load_all();
    for (const auto& r : finished) {
      if (r.ok()) done.insert(r.job_id);
    }
  }
  for (const std::string& other : request.calibrate_from) {
    if (!std::filesystem::is_directory(other)) {
      throw std::runtime_error("--calibrate-from: no folder '" + other + "'");
    }
    for (JobResult& r : orch::ResultsStore(other).load_all()) finished.push_back(std::move(r));
  }
  const orch::CostModel model = make_cost_model(request.context, request.sizes);
  std::unique_ptr<orch::SweepCosts> costs;
  std::vector<orch::ScheduledJob> all =
      costed_jobs(orch::with_teacher_baselines(specs), model, finished, costs);
  // Jobs done already drop out; a dependency on one of them is met.
  std::vector<orch::ScheduledJob> jobs;
  std::vector<double> seconds, bytes;
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (done.count(all[i].id) > 0) continue;
    orch::ScheduledJob job = all[i];
    job.depends_on.erase(std::remove_if(job.depends_on.begin(), job.depends_on.end(),
                                        [&](const std::string& d) { return done.count(d) > 0; }),
                         job.depends_on.end());
    jobs.push_back(std::move(job));
    seconds.push_back(costs->seconds(i));
    bytes.push_back(costs->prediction(i).device_bytes);
  }
  std::printf("plan for sweep '%s': %zu jobs to run (%zu done already) on %s\n\n",
              sweep.name.c_str(), jobs.size(), all.size() - jobs.size(),
              cluster_line(cluster).c_str());
  print_table_used(model, all);
  std::printf(
      "calibration: %d finished job(s)%s\n\n", costs->calibrator().count(),
      costs->calibrator().count() == 0 ? " (the table only)" : " (--results, --calibrate-from)");
  std::fputs(orch::format_predicted_groups(orch::predicted_groups(all, *costs)).c_str(), stdout);
  std::printf("\n");
  const orch::PlanResult plan = orch::simulate_plan(jobs, seconds, bytes, cluster);
  print_plan_line("cost order (mhim sweep):", plan);
  std::vector<orch::ScheduledJob> file_order = jobs;
  for (auto& job : file_order) job.cost = 1;
  print_plan_line("file order (cost 1 each):",
                  orch::simulate_plan(file_order, seconds, bytes, cluster));
  print_critical_path(jobs, seconds, plan);
  // Pruning: the surviving jobs with rung barriers, prioritised and simulated the same way.
  std::vector<orch::ScheduledJob> kept;
  // The sweep's own prune key when it has one and no flag overrides it; else an estimate.
  orch::HalvingSettings halving = request.halving;
  const bool from_sweep = sweep.prune.enabled && !request.halving_from_flags;
  if (from_sweep) halving.eta = sweep.prune.eta, halving.rungs = sweep.prune.rungs;
  const std::vector<std::size_t> index = orch::halving_survivors(jobs, halving, kept);
  std::vector<double> kept_seconds, kept_bytes;
  for (std::size_t i : index) kept_seconds.push_back(seconds[i]), kept_bytes.push_back(bytes[i]);
  orch::prioritize(kept, kept_seconds);
  const orch::PlanResult pruned = orch::simulate_plan(kept, kept_seconds, kept_bytes, cluster);
  std::printf("\npruning (successive halving, eta %d, %s; %s):\n", halving.eta,
              halving.rungs.empty() ? "one fold per rung" : "rungs as given",
              from_sweep                   ? "the sweep's prune key"
              : request.halving_from_flags ? "as --prune-eta/--prune-rungs ask"
                                           : "what-if: the sweep has no prune key");
  std::printf("  %zu of %zu jobs run, %s of worker time instead of %s (saves %.0f%%)\n",
              kept.size(), jobs.size(), orch::format_hms(pruned.work_s).c_str(),
              orch::format_hms(plan.work_s).c_str(),
              plan.work_s > 0 ? 100 * (1 - pruned.work_s / plan.work_s) : 0.0);
  print_plan_line("  with pruning:", pruned);
  if (plan.never_ran > 0) std::printf("warning: %zu jobs could not be placed\n", plan.never_ran);
  if (!request.json_path.empty()) {
    std::ofstream(request.json_path) << plan_json(jobs, seconds, plan).dump(1) << '\n';
    std::printf("\nplan written to %s\n", request.json_path.c_str());
  }
  return 0;
}

}  // namespace

int cmd_plan(const Tokens& tokens) {
  if (!tokens.empty() && (tokens[0] == "--help" || tokens[0] == "-h"))
    return std::fputs(kHelp, stdout), 0;
  PlanRequest request;
  try {
    request = parse_request(tokens);
  } catch (const UsageError& e) {
    return usage_failure("plan", e.what());
  }
  return run_plan(request);
}

}  // namespace mil::app
