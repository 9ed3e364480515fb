#pragma once
// Halving (schedule/pruning.h) applied to a running Scheduler, as rank 0 does it: the decisions
// are derived again from the committed results every time the sweep (re)starts, then updated after
// every outcome that is durable. The gate never writes anything: it tells its caller which pruned
// jobs the journal does not record yet, and the caller journals each of them "pruned".
//
// Exactly once across kill -9. A decision depends only on durable outcomes, and the same outcomes
// give the same decisions, so a restart from any point (after a result is durable and before its
// decision, halfway through journaling the pruned jobs, ...) gates and prunes the same jobs that
// the killed run would have. A job whose last journal line already says "pruned" is not journaled
// again. Usage: build the gate over the jobs before they go into the Scheduler (it sets their
// `gated` flag), call start() once the Scheduler exists, then decide() and apply() after each
// durable outcome.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "mil/core/specs.h"
#include "orchestrator/schedule/pruning.h"
#include "orchestrator/schedule/scheduler.h"

namespace mil::orch {

/// What one step of the gate did to the Scheduler.
struct GateStep {
  std::vector<std::string> opened;  ///< Jobs it let run (their rung was decided).
  std::vector<PrunedJob> pruned;    ///< Jobs it pruned in the Scheduler now, in sweep order.
  /// Those of `pruned` that the journal does not say are pruned: the caller journals them.
  std::vector<PrunedJob> to_journal;
};

/// Halving for one run of a sweep. A gate built with a disabled PruneSpec gates nothing and
/// decides nothing, at the cost of one map lookup per outcome.
class PruneGate {
 public:
  /// Plans halving over `jobs` under `spec` and decides from what earlier runs left: ok `results`
  /// (others are ignored) and the jobs in `failed_for_good` (quarantined or held back: they will
  /// not run in this run). Sets ScheduledJob::gated on every job that may not run yet or never
  /// will. `journaled_pruned`: jobs whose last journal line is "pruned". Throws like
  /// make_prune_plan.
  PruneGate(const PruneSpec& spec, std::vector<ScheduledJob>& jobs,
            const std::vector<JobResult>& results, const std::set<std::string>& failed_for_good,
            std::set<std::string> journaled_pruned);

  /// Once, with the Scheduler built from the gated jobs: prunes every job that the decisions so far
  /// stop. Its `opened` is empty (the gates are already set).
  GateStep start(Scheduler& scheduler);
  /// The outcome of `job_id` is durable: decides what it changes, without acting on it yet (see
  /// apply). An outcome recorded already, or of a job halving never ranks, changes nothing.
  PruneChanges decide(const std::string& job_id, const JobOutcome& outcome);
  /// Acts on `changes` (from decide): opens and prunes jobs in `scheduler`.
  GateStep apply(Scheduler& scheduler, const PruneChanges& changes);
  /// The outcome halving reads from `result` (its ok status and its bracket's validation metric).
  JobOutcome outcome_of(const JobResult& result) const;
  /// True when the sweep prunes at all (a bracket of two points or more).
  bool active() const { return !pruner_.plan().brackets.empty(); }
  /// The plan and its decisions now.
  const Pruner& pruner() const { return pruner_; }

 private:
  /// Prunes each of `jobs` in `scheduler`; those it pruned now go into step.pruned, and those not
  /// journaled yet into step.to_journal as well.
  void prune(Scheduler& scheduler, const std::vector<PrunedJob>& jobs, GateStep& step);

  Pruner pruner_;
  /// Jobs journaled "pruned" (by an earlier run, or handed to a caller to journal).
  std::set<std::string> journaled_pruned_;
};

}  // namespace mil::orch
