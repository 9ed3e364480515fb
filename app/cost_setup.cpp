#include "app/cost_setup.h"

#include <algorithm>
#include <memory>
#include <thread>

#include "mil/synthetic/benchmarks.h"
#include "orchestrator/schedule/cost_table.h"
#include "orchestrator/schedule/job_graph.h"

namespace mil::app {
namespace {

/// The size of stand-in `name` at `scale` from its profile (nothing is written).
orch::DatasetSize stand_in_size(const std::string& name, double scale) {
  StandInOptions options;
  options.scale = scale;
  const nlohmann::json plan = plan_benchmark_stand_in(name, options);
  orch::DatasetSize size;
  const auto& counts = plan.at("counts");
  size.bags = counts.at("bags").get<double>();
  size.instances_per_bag = counts.at("instances").get<double>() / std::max(1.0, *size.bags);
  double largest = 0;
  for (const auto& c : plan.at("cases")) {
    double instances = 0;
    for (const auto& slide : c.at("slides")) instances += slide.at("instances").get<double>();
    largest = std::max(largest, instances);
  }
  size.largest_bag = largest;
  size.feature_dim = options.feature_dim;
  size.instances_source = "stand-in profile at scale " + std::to_string(scale);
  return size;
}

}  // namespace

orch::CostModel make_cost_model(const orch::RunContext& context, const SizeSource& sizes) {
  orch::CostModel::Probe probe = orch::probe_dataset;
  if (sizes.stand_in_scale > 0) {
    const double scale = sizes.stand_in_scale;
    probe = [scale](const DatasetSpec& spec) {
      orch::DatasetSize size = orch::probe_dataset(spec);
      if (size.bags && size.instances_per_bag) return size;
      const auto names = benchmark_stand_in_names();
      if (std::find(names.begin(), names.end(), spec.name) == names.end()) return size;
      return stand_in_size(spec.name, scale);
    };
  }
  orch::RunContext assumed = context;
  if (assumed.device == "cuda" && assumed.cuda_speedup <= 0) {
    assumed.cuda_speedup = orch::kAssumedCudaSpeedup;
  }
  return orch::CostModel(orch::builtin_cost_table(), assumed, probe);
}

std::vector<orch::ScheduledJob> costed_jobs(const std::vector<JobSpec>& jobs,
                                            const orch::CostModel& model,
                                            const std::vector<JobResult>& finished,
                                            std::unique_ptr<orch::SweepCosts>& costs) {
  std::vector<orch::ScheduledJob> scheduled = orch::schedule_with_dependencies(jobs);
  costs = std::make_unique<orch::SweepCosts>(scheduled, model, finished);
  return costs->prioritized(std::move(scheduled));
}

int default_worker_threads(int ranks_on_node) {
  const int hardware = std::max(1u, std::thread::hardware_concurrency());
  return std::max(1, hardware / std::max(1, ranks_on_node));
}

}  // namespace mil::app
