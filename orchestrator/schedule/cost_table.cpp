#include "orchestrator/schedule/cost_table.h"

namespace mil::orch {
namespace {

/// Instances of one epoch of scripts/cost_table_bench.sh: 4 bags of 2,000-6,000 (mean 4,710).
constexpr double kBenchInstances = 4 * 4710.0;
/// Bytes of one instance of the bag itself (D = 1024, f32), beside the step's live tensors.
constexpr double kBagBytes = 1024 * 4.0;
/// Evaluation is a forward pass: the instance embedding, which dominates, needs no input gradient,
/// so forward + backward is about twice the forward (ABMIL measured 250 / 524 ms per 4,000-instance
/// bag on the quietest run).
constexpr double kEvalShare = 0.5;

const char* const kSource =
    "mhim bench train --threads 1 (scripts/cost_table_bench.sh), CPU s/T, AMD EPYC, 2026-12-07";

/// A measured cpu fp32 row: `cpu_s_per_thread` is the bench's "CPU s/T" of one epoch, `alloc_mb`
/// the forward + backward "alloc MB" of `mhim bench models` at N = 4,000. `eval_share` x train_s is
/// one evaluation pass (MHIM validates the student and the teacher: twice its baseline's share).
InstanceCost row(const char* model, const char* variant, double cpu_s_per_thread, double alloc_mb,
                 double eval_share = kEvalShare) {
  InstanceCost r;
  r.model = model;
  r.variant = variant;
  r.device = "cpu";
  r.precision = "fp32";
  r.train_s = cpu_s_per_thread / kBenchInstances;
  r.eval_s = r.train_s * eval_share;
  r.bytes_per_instance = alloc_mb * 1048576 / 4000 + kBagBytes;
  r.source = kSource;
  return r;
}

}  // namespace

const std::vector<InstanceCost>& builtin_cost_table() {
  // MHIM's memory is its aggregator's baseline model's (abmil, transmil, dsmil) x 1.25 for the
  // teacher's pass and the masks (not measured on its own); mhim_pure's is its aggregator model's.
  // MHIM's evaluation share: the student's and the teacher's validation, each a pure forward.
  static const std::vector<InstanceCost> table = {
      row("abmil", "", 0.871, 33.5),
      row("gabmil", "", 1.699, 64.5),
      row("transmil", "", 10.030, 419.8),
      row("dsmil", "", 1.373, 55.3),
      row("clam_sb", "", 1.427, 50.8),
      row("clam_mb", "", 1.351, 50.8),
      row("dtfd", "", 0.979, 45.5),
      row("meanmil", "", 0.656, 31.3),
      row("maxmil", "", 0.685, 31.3),
      row("mhim_pure", "attn", 0.730, 33.5),
      row("mhim", "attn", 1.444, 33.5 * 1.25, 2 * kEvalShare * 0.730 / 1.444),
      row("mhim_pure", "selfattn", 9.309, 419.8),
      row("mhim", "selfattn", 10.855, 419.8 * 1.25, 2 * kEvalShare * 9.309 / 10.855),
      row("mhim_pure", "dsmil", 1.212, 55.3),
      row("mhim", "dsmil", 1.715, 55.3 * 1.25, 2 * kEvalShare * 1.212 / 1.715),
  };
  return table;
}

}  // namespace mil::orch
