#include "orchestrator/schedule/cost_table.h"

#include "mil/core/model_catalog.h"

namespace mil::orch {
namespace {

const char* const kSource =
    "catalogue cost factor x abmil's 46 us per instance per thread (scripts/cost_table_bench.sh)";

/// The cpu fp32 row of `model` on `aggregator` ("" for the non-MHIM models); `eval_factor` is the
/// cost factor of one evaluation pass.
InstanceCost cpu_row(const std::string& model, const std::string& aggregator, double factor,
                     double eval_factor) {
  InstanceCost r;
  r.model = model;
  r.variant = aggregator;
  r.device = "cpu";
  r.precision = "fp32";
  r.train_s = factor * kAbmilCpuSecondsPerInstance;
  r.eval_s = eval_factor * kAbmilCpuSecondsPerInstance;
  r.bytes_per_instance = factor * kAbmilTrainBytesPerInstance;
  r.source = kSource;
  return r;
}

}  // namespace

std::vector<InstanceCost> builtin_cost_table() {
  std::vector<InstanceCost> table;
  for (const ModelInfo& info : model_catalog()) {
    if (info.cost_factor <= 0) continue;
    if (info.name != "mhim" && info.name != "mhim_pure") {
      table.push_back(cpu_row(info.name, "", info.cost_factor, kEvalShare * info.cost_factor));
      continue;
    }
    for (const auto& pair : mhim_aggregator_models()) {
      const std::string& aggregator = pair.first;
      const double factor = model_cost_factor(info.name, nullptr, aggregator);
      // MHIM validates the student and the teacher: two forwards of the MHIM network alone.
      const double eval = info.name == "mhim"
                              ? 2 * kEvalShare * model_cost_factor("mhim_pure", nullptr, aggregator)
                              : kEvalShare * factor;
      table.push_back(cpu_row(info.name, aggregator, factor, eval));
    }
  }
  const std::size_t measured = table.size();
  for (std::size_t i = 0; i < measured; ++i) {
    InstanceCost bf16 = table[i];
    bf16.precision = "bf16";
    bf16.measured = false;
    bf16.source = "assumed as fp32 (bf16 not measured)";
    table.push_back(bf16);
  }
  return table;
}

}  // namespace mil::orch
