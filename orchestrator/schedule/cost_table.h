#pragma once
// The cost table the scheduler predicts with: abmil's measured seconds and device bytes per
// instance of a training step, times each model's cost factor from the model catalogue
// (mil/core/model_catalog.h, measured by scripts/cost_table_bench.sh; model_cost_factor() in
// cost_estimate.h for the MHIM aggregators). Only cpu fp32 is measured; the bf16 rows are assumed
// as fp32 and say so (InstanceCost::measured = false), and a cuda prediction derives from the cpu
// row (RunContext::cuda_speedup).
#include <vector>

#include "orchestrator/schedule/cost_model.h"

namespace mil::orch {

/// abmil's CPU seconds per instance of a training step on one thread, fp32: 0.871 s for an epoch
/// of 4 bags of 4,710 instances on average (scripts/cost_table_bench.sh, AMD EPYC, 2026-12-07).
constexpr double kAbmilCpuSecondsPerInstance = 0.871 / (4 * 4710.0);

/// abmil's device bytes per instance of a training step: `mhim bench models` allocated 33.5 MB
/// for forward + backward of a 4,000-instance bag, plus the bag itself (D = 1024, f32). Other
/// models are assumed to scale with their cost factor (the measured allocations of the reference
/// zoo give 31-41 MB per unit of factor at N = 4,000, transmil 36).
constexpr double kAbmilTrainBytesPerInstance = 33.5 * 1048576 / 4000 + 1024 * 4.0;

/// Share of a training step's time that an evaluation pass of the same instances takes: a forward
/// without the backward, about half (abmil measured 250 / 524 ms per 4,000-instance bag).
constexpr double kEvalShare = 0.5;

/// A cpu fp32 row and a cpu bf16 row for every model of the catalogue with a cost factor, the MHIM
/// models once per aggregator (mhim_aggregator_models()).
std::vector<InstanceCost> builtin_cost_table();

}  // namespace mil::orch
