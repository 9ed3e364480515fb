#pragma once
// Successive halving over the grid points of one (dataset, method): every point runs its first rung
// (its first fold), only the best 1/eta by the *validation* metric go on to the next rung, and so
// on until the survivors have run every fold. The decision is a pure function of the sweep's jobs
// and the results committed so far, so rank 0 and array workers re-derive it on every (re)start
// instead of trusting a note that a crash may have cut short; the journal's "pruned" lines are its
// record.
//
// Vocabulary. A *point* is one configuration (JobSpec::config_id: every job of it, all folds and
// seeds). A *bracket* is the points of one (dataset, method) that halving ranks against each other.
// A *rung* is a set of folds: rung r holds the point's folds from rungs[r-1] to rungs[r]
// (cumulative counts, in the sweep's fold order), with every seed and replicate of those folds. A
// point's score after rung r is the mean validation metric over all its ok jobs of rungs 0..r.
//
// What is never pruned: a point some other job depends on (an MHIM job's teacher baseline): the
// MHIM points that survive need its folds, and its own row stays complete for the comparison. A job
// with an ok result is done, whatever a later decision says.
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mil/core/specs.h"
#include "orchestrator/schedule/scheduler.h"

namespace mil::orch {

/// The `prune` key of a sweep file: off unless `enabled`.
struct PruneSpec {
  bool enabled = false;            ///< The key is present (and not null).
  std::string method = "halving";  ///< Successive halving; the only method.
  int eta = 3;                     ///< >= 2: the best ceil(n / eta) points of a rung go on.
  std::string rung = "fold";       ///< What a rung is made of: folds (the only kind).
  /// Validation metric that ranks points: "auto" (the benchmark's selection metric: C-index for
  /// survival, AUC for two classes, balanced accuracy otherwise) or a key of metrics.val.
  std::string metric = "auto";
  /// Cumulative fold counts that end each rung, strictly increasing, e.g. {1, 3}; the last rung
  /// always holds every fold. Empty = one fold per rung.
  std::vector<int> rungs;
};

/// Parses the `prune` object strictly (unknown keys, wrong types, eta < 2, rung "epochs"); null
/// gives a disabled spec. Throws SweepError whose pointer names the offending key under "/prune".
PruneSpec prune_spec_from_json(const nlohmann::json& j);
/// The `prune` object for `spec` (null when disabled); prune_spec_from_json reads it back.
nlohmann::json prune_spec_to_json(const PruneSpec& spec);
/// Checks `spec` against the jobs it would prune: a validation split (val_ratio > 0, or protocol
/// "file"; never "legacy", whose validation is the test set), a metric each benchmark reports, and
/// `rungs` within every point's fold count. Throws SweepError naming the key under "/prune".
void check_prune_spec(const PruneSpec& spec, const std::vector<JobSpec>& jobs);

/// The validation metric halving ranks a benchmark's points by: spec.metric, or for "auto" the one
/// the trainer selects checkpoints by (C-index for survival, AUC for two classes, else balanced
/// accuracy).
std::string prune_metric_for(const PruneSpec& spec, const DatasetSpec& dataset);

/// The sweep's jobs arranged for halving.
struct PrunePlan {
  /// One configuration: its jobs per rung (indices into `job_ids`).
  struct Point {
    std::string config_id;  ///< JobSpec::config_id() of its jobs.
    std::vector<std::vector<std::size_t>>
        rungs;                    ///< Per rung, its jobs (every seed of those folds).
    std::vector<int> rung_folds;  ///< Per rung, the cumulative number of folds by its end.
  };
  /// The points of one (dataset, method) ranked against each other, in sweep order.
  struct Bracket {
    std::string dataset;              ///< Dataset name.
    std::string method;               ///< Method label (model name unless the sweep set one).
    std::string metric;               ///< The validation metric that ranks them.
    std::vector<std::size_t> points;  ///< Indices into `points`.
  };
  PruneSpec spec;                    ///< The policy.
  std::vector<std::string> job_ids;  ///< Every job of the sweep, in sweep order.
  std::vector<Point> points;         ///< Points that halving may prune (exempt ones are absent).
  std::vector<Bracket> brackets;     ///< Brackets with at least two points.
  /// Parallel to job_ids: (point, rung) of the job, or point == npos when it is never pruned.
  std::vector<std::pair<std::size_t, std::size_t>> place;
  std::map<std::string, std::size_t> index_of;  ///< Job id -> index into job_ids.
  std::vector<std::size_t> bracket_of_point;    ///< Parallel to points.
};

/// The plan for `jobs` (as scheduled, with their dependencies) under `spec`. A disabled spec gives
/// a plan without brackets (nothing is ever gated or pruned). Throws when the points of one bracket
/// have different fold counts or spec.rungs exceeds them.
PrunePlan make_prune_plan(const std::vector<ScheduledJob>& jobs, const PruneSpec& spec);

/// What halving may know of one job: only whether it settled and its validation metric. A job with
/// no outcome has not settled (pending, running, or about to be retried).
struct JobOutcome {
  bool ok = false;  ///< Finished ok; false: failed for good (its point can never be complete).
  /// metrics.val[metric] of an ok job; NaN when the job reported none.
  double validation = 0.0;
};

/// The outcome halving sees for `result`: ok or not, and metrics.val[metric]; nothing else of the
/// result (never a test metric) is read.
JobOutcome job_outcome(const JobResult& result, const std::string& metric);
/// metrics.val[metric] of a result's `metrics` object when it is a number, else NaN; the one place
/// halving reads a result's metrics.
double validation_value(const nlohmann::json& metrics, const std::string& metric);
/// The validation metric halving reads for job `job_id` under `plan` (its bracket's), or "" for a
/// job it never ranks (outside every bracket, or unknown).
std::string prune_metric_of(const PrunePlan& plan, const std::string& job_id);
/// job_outcome(result, prune_metric_of(plan, result.job_id)).
JobOutcome plan_outcome(const PrunePlan& plan, const JobResult& result);

/// Where halving left one point.
struct PointDecision {
  std::size_t rungs_open = 0;  ///< Rungs whose jobs may run now (the first always may).
  bool pruned = false;         ///< Stopped: its jobs beyond rungs_open never run.
  /// Of the last ranking it took part in (its pruning, or its last promotion); empty before any.
  std::string detail;
};

/// What may run: per job of the plan, kOpen (may run, or has run), kWaiting (a rung before it is
/// not decided yet) or kPruned (its point stopped before this rung; it never runs).
enum class JobGate { kOpen, kWaiting, kPruned };

/// Decisions for every point of the plan.
struct PruneDecisions {
  std::vector<PointDecision> points;  ///< Parallel to plan.points.
};

/// Halving over one bracket from the outcomes so far (job id -> outcome). Rung r is decided once
/// every job of rungs 0..r of every point still in the bracket has settled; then points rank by
/// score, descending (points without a validation value after those with one, failed points last,
/// ties to the earlier point in the sweep), and the best ceil(n / eta) go on; a failed point never
/// goes on, and when no point has a score nobody is pruned (there is nothing to rank by). A lone
/// point opens every rung at once. Deterministic: the same outcomes give the same decisions.
void decide_bracket(const PrunePlan& plan, std::size_t bracket,
                    const std::map<std::string, JobOutcome>& outcomes, PruneDecisions& decisions);
/// decide_bracket for every bracket.
PruneDecisions decide_pruning(const PrunePlan& plan,
                              const std::map<std::string, JobOutcome>& outcomes);
/// The gate of job `job` (index into plan.job_ids) under `decisions`.
JobGate gate_of(const PrunePlan& plan, const PruneDecisions& decisions, std::size_t job);

/// A job halving stopped, with the reason a person reads in the journal.
struct PrunedJob {
  std::string job_id;  ///< The job that will never run.
  std::string detail;  ///< e.g. "grid point 3f.. pruned after rung 1 of 5 (1 of 5 folds): ...".
};

/// What changed since the previous call (Pruner::record).
struct PruneChanges {
  std::vector<std::string> opened;  ///< Jobs that may run now, in sweep order.
  std::vector<PrunedJob> pruned;    ///< Jobs that will never run, in sweep order.
};

/// Halving as a sweep runs: remembers the outcomes and decisions, and says what each new outcome
/// changes. Rank 0 builds it from the committed results when it starts and records every result
/// once it is durable. Recording touches only the job's own bracket.
class Pruner {
 public:
  /// Decides from `outcomes` (the committed results' outcomes).
  Pruner(PrunePlan plan, std::map<std::string, JobOutcome> outcomes);
  /// A pruner of a sweep without pruning: every job is open, nothing is ever pruned.
  Pruner() : Pruner(PrunePlan{}, {}) {}

  /// The job settled (durably): returns the jobs its bracket opened or pruned because of it. An
  /// outcome for a job outside the plan, or one already recorded, changes nothing.
  PruneChanges record(const std::string& job_id, const JobOutcome& outcome);
  /// The gate of `job_id` now: kOpen for a job with an ok outcome, a job outside every bracket or
  /// an unknown id.
  JobGate gate(const std::string& job_id) const;
  /// Pruned jobs now (none with an ok outcome), with their details, in sweep order.
  std::vector<PrunedJob> pruned_jobs() const;
  /// The plan.
  const PrunePlan& plan() const { return plan_; }
  /// The decisions now.
  const PruneDecisions& decisions() const { return decisions_; }

 private:
  PrunePlan plan_;
  std::map<std::string, JobOutcome> outcomes_;
  PruneDecisions decisions_;
};

/// What a pruning sweep would do, replayed on the outcomes of a sweep that ran every job.
struct HalvingReplay {
  std::vector<std::string> ran;   ///< Jobs it runs, in sweep order.
  std::vector<PrunedJob> pruned;  ///< Jobs it prunes, in sweep order.
  std::vector<std::string>
      waiting;  ///< Jobs still gated: a rung before them has a job without outcome.
};

/// Replays halving on `full` (job id -> outcome of a sweep that ran every job), recording each
/// job's outcome once its gate opens, until nothing changes. Jobs are deterministic (JobSpec::id()
/// hashes everything a result depends on), so a pruning sweep of the same jobs runs exactly `ran`,
/// with the same results: this is how `mhim bench prune` and plans price pruning without running it
/// twice.
HalvingReplay replay_halving(const PrunePlan& plan, const std::map<std::string, JobOutcome>& full);

}  // namespace mil::orch
