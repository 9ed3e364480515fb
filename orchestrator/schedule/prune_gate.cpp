#include "orchestrator/schedule/prune_gate.h"

#include <cmath>
#include <utility>

namespace mil::orch {
namespace {

/// The pruner of `jobs` under `spec`, decided from the ok `results` and the failures for good.
Pruner pruner_from_history(const PruneSpec& spec, const std::vector<ScheduledJob>& jobs,
                           const std::vector<JobResult>& results,
                           const std::set<std::string>& failed_for_good) {
  PrunePlan plan = make_prune_plan(jobs, spec);
  std::map<std::string, JobOutcome> outcomes;
  if (!plan.brackets.empty()) {
    for (const JobResult& result : results) {
      if (result.ok()) outcomes.emplace(result.job_id, plan_outcome(plan, result));
    }
    for (const std::string& id : failed_for_good) outcomes.emplace(id, JobOutcome{false, NAN});
  }
  return Pruner(std::move(plan), std::move(outcomes));
}

}  // namespace

PruneGate::PruneGate(const PruneSpec& spec, std::vector<ScheduledJob>& jobs,
                     const std::vector<JobResult>& results,
                     const std::set<std::string>& failed_for_good,
                     std::set<std::string> journaled_pruned)
    : pruner_(pruner_from_history(spec, jobs, results, failed_for_good)),
      journaled_pruned_(std::move(journaled_pruned)) {
  if (!active()) return;
  for (ScheduledJob& job : jobs) job.gated = pruner_.gate(job.id) != JobGate::kOpen;
}

GateStep PruneGate::start(Scheduler& scheduler) {
  GateStep step;
  if (active()) prune(scheduler, pruner_.pruned_jobs(), step);
  return step;
}

PruneChanges PruneGate::decide(const std::string& job_id, const JobOutcome& outcome) {
  if (!active()) return {};
  return pruner_.record(job_id, outcome);
}

GateStep PruneGate::apply(Scheduler& scheduler, const PruneChanges& changes) {
  GateStep step;
  for (const std::string& id : changes.opened) scheduler.open(id);
  step.opened = changes.opened;
  prune(scheduler, changes.pruned, step);
  return step;
}

JobOutcome PruneGate::outcome_of(const JobResult& result) const {
  return plan_outcome(pruner_.plan(), result);
}

void PruneGate::prune(Scheduler& scheduler, const std::vector<PrunedJob>& jobs, GateStep& step) {
  for (const PrunedJob& job : jobs) {
    // A job that failed for good stays failed: halving stopped its point, but it did not run for
    // that reason, and its failure is what the results say.
    if (!scheduler.prune(job.job_id)) continue;
    step.pruned.push_back(job);
    if (journaled_pruned_.insert(job.job_id).second) step.to_journal.push_back(job);
  }
}

}  // namespace mil::orch
