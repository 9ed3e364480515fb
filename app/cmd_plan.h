#pragma once
// `mhim plan`: how long a sweep takes on a cluster, before it is submitted (app/cmd_plan.cpp).
#include "app/commands.h"

namespace mil::app {

/// `mhim plan SWEEP --nodes N --gpus-per-node G [--jobs-per-gpu K]`: predicted makespan,
/// utilisation, critical path and pruning savings from the cost model and a simulation of the
/// real Scheduler (orchestrator/schedule/plan.h).
int cmd_plan(const Tokens& tokens);

}  // namespace mil::app
