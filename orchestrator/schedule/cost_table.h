#pragma once
// The measured cost table: what one instance costs each model on one CPU thread, fp32, as
// scripts/cost_table_bench.sh measured it (`mhim bench train` and `mhim bench models`). Rows for
// other devices and precisions are added when measured (scripts/gpu_packing_bench.sh prints cuda
// rows); until then a cuda prediction derives from the cpu row (RunContext::cuda_speedup).
#include <vector>

#include "orchestrator/schedule/cost_model.h"

namespace mil::orch {

/// Every measured row, by model.
const std::vector<InstanceCost>& builtin_cost_table();

}  // namespace mil::orch
