#include "orchestrator/schedule/pruning.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <stdexcept>
#include <tuple>
#include <utility>

#include "orchestrator/sweep/file.h"

namespace mil::orch {
namespace {

using nlohmann::json;

/// Keys of the `prune` object.
const std::vector<std::string> kPruneKeys = {"method", "eta", "rung", "metric", "rungs"};
/// Validation metrics a point may be ranked by: the trainer's classification set and the C-index,
/// all of them larger-is-better.
const std::vector<std::string> kClassificationMetrics = {
    "auc", "accuracy", "balanced_accuracy", "precision", "recall", "f1", "kappa"};
constexpr const char* kSurvivalMetric = "c_index";
/// Marks a job that halving never prunes in PrunePlan::place.
constexpr std::size_t kNever = static_cast<std::size_t>(-1);

std::string list_of(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

std::string method_of(const JobSpec& spec) {
  return spec.model.method.empty() ? spec.model.name : spec.model.method;
}

int integer_at(const json& value, const std::string& key, int min) {
  if (!value.is_number_integer() || value.get<long long>() < min ||
      value.get<long long>() > 1000000) {
    throw SweepError("/prune/" + key, "prune." + key + ": expected an integer >= " +
                                          std::to_string(min) + ", got " + value.dump());
  }
  return value.get<int>();
}

std::string string_at(const json& value, const std::string& key) {
  if (!value.is_string()) {
    throw SweepError("/prune/" + key, "prune." + key + ": expected a string, got " + value.dump());
  }
  return value.get<std::string>();
}

std::vector<int> rungs_at(const json& value) {
  if (!value.is_array() || value.empty()) {
    throw SweepError(
        "/prune/rungs",
        "prune.rungs: expected a non-empty array of cumulative fold counts, e.g. [1, 3]");
  }
  std::vector<int> rungs;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const int folds = integer_at(value[i], "rungs", 1);
    if (!rungs.empty() && folds <= rungs.back()) {
      throw SweepError("/prune/rungs", "prune.rungs: fold counts must increase, but " +
                                           std::to_string(folds) + " follows " +
                                           std::to_string(rungs.back()));
    }
    rungs.push_back(folds);
  }
  return rungs;
}

std::string format_score(double score) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4f", score);
  return text;
}

/// One point's standing in the ranking of a rung.
struct Standing {
  std::size_t point = 0;  ///< Index into plan.points.
  int kind = 0;           ///< 0: scored; 1: ok but no validation value; 2: a job failed.
  double score = 0.0;     ///< Mean validation over its ok jobs so far (kind 0).
  std::size_t order = 0;  ///< Its place in the bracket (sweep order): breaks ties.
};

Standing standing_of(const PrunePlan& plan, std::size_t point, std::size_t order,
                     std::size_t last_rung, const std::map<std::string, JobOutcome>& outcomes) {
  Standing s{point, 0, 0.0, order};
  double sum = 0.0;
  int values = 0;
  for (std::size_t r = 0; r <= last_rung; ++r) {
    for (std::size_t job : plan.points[point].rungs[r]) {
      const JobOutcome& outcome = outcomes.at(plan.job_ids[job]);
      if (!outcome.ok) s.kind = 2;
      if (outcome.ok && std::isfinite(outcome.validation)) {
        sum += outcome.validation;
        ++values;
      }
    }
  }
  if (s.kind != 2) s.kind = values == 0 ? 1 : 0;
  if (values > 0) s.score = sum / values;
  return s;
}

/// True when every job of rungs 0..last_rung of `point` has an outcome.
bool settled(const PrunePlan& plan, std::size_t point, std::size_t last_rung,
             const std::map<std::string, JobOutcome>& outcomes) {
  for (std::size_t r = 0; r <= last_rung; ++r) {
    for (std::size_t job : plan.points[point].rungs[r]) {
      if (outcomes.count(plan.job_ids[job]) == 0) return false;
    }
  }
  return true;
}

std::string describe_standing(const Standing& s, const std::string& metric, std::size_t rank,
                              std::size_t ranked) {
  const std::string place = " ranked " + std::to_string(rank) + " of " + std::to_string(ranked);
  if (s.kind == 2) return "a job of the rung failed;" + place;
  if (s.kind == 1) return "no validation " + metric + ";" + place;
  return "validation " + metric + " " + format_score(s.score) + place;
}

/// Ranks the points `alive` after rung `r` and records who goes on; returns the survivors.
std::vector<std::size_t> rank_rung(const PrunePlan& plan, const PrunePlan::Bracket& bracket,
                                   const std::vector<std::size_t>& alive, std::size_t r,
                                   const std::map<std::string, JobOutcome>& outcomes,
                                   PruneDecisions& decisions) {
  std::vector<Standing> standings;
  for (std::size_t i = 0; i < alive.size(); ++i) {
    standings.push_back(standing_of(plan, alive[i], i, r, outcomes));
  }
  std::sort(standings.begin(), standings.end(), [](const Standing& a, const Standing& b) {
    return std::make_tuple(a.kind, -a.score, a.order) < std::make_tuple(b.kind, -b.score, b.order);
  });
  const bool any_scored = standings.front().kind == 0;
  const std::size_t eta = static_cast<std::size_t>(plan.spec.eta);
  // Without a single score there is nothing to rank by: every point that has not failed goes on.
  const std::size_t keep = any_scored ? (alive.size() + eta - 1) / eta : alive.size();
  const PrunePlan::Point& first = plan.points[alive.front()];
  const std::string rung_text = "rung " + std::to_string(r + 1) + " of " +
                                std::to_string(first.rungs.size()) + " (" +
                                std::to_string(first.rung_folds[r]) + " of " +
                                std::to_string(first.rung_folds.back()) + " folds)";
  std::vector<std::size_t> survivors;
  for (std::size_t i = 0; i < standings.size(); ++i) {
    const Standing& s = standings[i];
    PointDecision& d = decisions.points[s.point];
    const std::string standing = describe_standing(s, bracket.metric, i + 1, standings.size());
    if (i < keep && s.kind != 2) {
      survivors.push_back(s.point);
      d.detail = "went on after " + rung_text + ": " + standing;
    } else {
      d.pruned = true;
      d.detail = "grid point " + plan.points[s.point].config_id + " pruned after " + rung_text +
                 ": " + standing + "; the best " + std::to_string(keep) + " went on";
    }
  }
  std::sort(survivors.begin(), survivors.end());  // plan order is sweep order
  return survivors;
}

}  // namespace

PruneSpec prune_spec_from_json(const json& j) {
  PruneSpec spec;
  if (j.is_null()) return spec;
  if (!j.is_object()) {
    throw SweepError("/prune",
                     "prune: expected an object such as {method: halving, eta: 3, rung: "
                     "fold, metric: auto}, got " +
                         j.dump());
  }
  for (const auto& item : j.items()) {
    if (std::find(kPruneKeys.begin(), kPruneKeys.end(), item.key()) == kPruneKeys.end()) {
      throw SweepError(
          pointer_append("/prune", item.key()),
          "prune: unknown key '" + item.key() + "' (allowed: " + list_of(kPruneKeys) + ")");
    }
  }
  spec.enabled = true;
  if (j.contains("method")) {
    spec.method = string_at(j.at("method"), "method");
    if (spec.method != "halving") {
      throw SweepError("/prune/method", "prune.method: '" + spec.method +
                                            "' is not a pruning method (allowed: halving)");
    }
  }
  if (j.contains("eta")) spec.eta = integer_at(j.at("eta"), "eta", 2);
  if (j.contains("rung")) {
    spec.rung = string_at(j.at("rung"), "rung");
    if (spec.rung == "epochs") {
      throw SweepError(
          "/prune/rung",
          "prune.rung: 'epochs' is not supported yet (a rung of epochs needs jobs that "
          "stop at a rung's last epoch and resume later); use 'fold'");
    }
    if (spec.rung != "fold") {
      throw SweepError("/prune/rung",
                       "prune.rung: '" + spec.rung + "' is not a rung kind (allowed: fold)");
    }
  }
  if (j.contains("metric")) {
    spec.metric = string_at(j.at("metric"), "metric");
    std::vector<std::string> allowed = {"auto"};
    allowed.insert(allowed.end(), kClassificationMetrics.begin(), kClassificationMetrics.end());
    allowed.push_back(kSurvivalMetric);
    if (std::find(allowed.begin(), allowed.end(), spec.metric) == allowed.end()) {
      throw SweepError("/prune/metric",
                       "prune.metric: '" + spec.metric +
                           "' is not a validation metric (allowed: " + list_of(allowed) + ")");
    }
  }
  if (j.contains("rungs")) spec.rungs = rungs_at(j.at("rungs"));
  return spec;
}

json prune_spec_to_json(const PruneSpec& spec) {
  if (!spec.enabled) return nullptr;
  json j = {
      {"method", spec.method}, {"eta", spec.eta}, {"rung", spec.rung}, {"metric", spec.metric}};
  if (!spec.rungs.empty()) j["rungs"] = spec.rungs;
  return j;
}

std::string prune_metric_for(const PruneSpec& spec, const DatasetSpec& dataset) {
  if (spec.metric != "auto") return spec.metric;
  if (dataset.kind == "survival") return kSurvivalMetric;
  return dataset.class_count == 2 ? "auc" : "balanced_accuracy";
}

void check_prune_spec(const PruneSpec& spec, const std::vector<JobSpec>& jobs) {
  if (!spec.enabled) return;
  std::map<std::string, std::set<int>> folds_of_config;
  for (const JobSpec& job : jobs) {
    const std::string where =
        "prune: dataset '" + job.dataset.name + "', method '" + method_of(job) + "'";
    if (job.split.protocol == "legacy") {
      throw SweepError("/prune", where +
                                     " uses split protocol 'legacy', whose validation set is the "
                                     "test fold: halving would rank points by test results; use "
                                     "protocol kfold with split.val_ratio > 0");
    }
    if (job.split.protocol == "kfold" && !(job.split.val_ratio > 0)) {
      throw SweepError("/prune",
                       where +
                           " has no validation split (split.val_ratio is 0): halving "
                           "ranks points by validation only; set split.val_ratio, e.g. 0.15");
    }
    const bool survival = job.dataset.kind == "survival";
    if (spec.metric != "auto" && survival != (spec.metric == kSurvivalMetric)) {
      throw SweepError("/prune/metric",
                       "prune.metric: dataset '" + job.dataset.name + "' is " +
                           (survival ? "a survival benchmark, which reports c_index"
                                     : "a classification benchmark, which reports no c_index") +
                           "; use metric auto (each benchmark's own selection metric)");
    }
    folds_of_config[job.config_id()].insert(job.split.fold_index);
  }
  if (spec.rungs.empty()) return;
  for (const auto& [config, folds] : folds_of_config) {
    if (spec.rungs.back() > int(folds.size())) {
      throw SweepError("/prune/rungs", "prune.rungs: " + std::to_string(spec.rungs.back()) +
                                           " folds, but grid point " + config + " runs only " +
                                           std::to_string(folds.size()));
    }
  }
}

PrunePlan make_prune_plan(const std::vector<ScheduledJob>& jobs, const PruneSpec& spec) {
  PrunePlan plan;
  plan.spec = spec;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    plan.job_ids.push_back(jobs[i].id);
    plan.index_of.emplace(jobs[i].id, i);
  }
  plan.place.assign(jobs.size(), {kNever, 0});
  if (!spec.enabled) return plan;

  std::set<std::string> depended_on;
  for (const ScheduledJob& job : jobs)
    depended_on.insert(job.depends_on.begin(), job.depends_on.end());
  // Points in sweep order, and which of them are exempt.
  std::vector<std::vector<std::size_t>> members;
  std::vector<bool> exempt;
  std::map<std::string, std::size_t> point_of_config;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const auto [it, added] = point_of_config.emplace(jobs[i].spec.config_id(), members.size());
    if (added) {
      members.emplace_back();
      exempt.push_back(false);
    }
    members[it->second].push_back(i);
    if (depended_on.count(jobs[i].id) > 0) exempt[it->second] = true;
  }
  std::map<std::pair<std::string, std::string>, std::vector<std::size_t>> candidates;
  std::vector<std::pair<std::string, std::string>> bracket_order;
  for (std::size_t p = 0; p < members.size(); ++p) {
    if (exempt[p]) continue;
    const JobSpec& spec0 = jobs[members[p].front()].spec;
    const auto key = std::make_pair(spec0.dataset.name, method_of(spec0));
    if (candidates[key].empty()) bracket_order.push_back(key);
    candidates[key].push_back(p);
  }
  for (const auto& key : bracket_order) {
    const std::vector<std::size_t>& candidate_points = candidates[key];
    if (candidate_points.size() < 2) continue;  // nothing to rank it against: it runs every fold
    PrunePlan::Bracket bracket{
        key.first,
        key.second,
        prune_metric_for(spec, jobs[members[candidate_points.front()].front()].spec.dataset),
        {}};
    for (std::size_t p : candidate_points) {
      // The point's folds in sweep order; rung r ends after boundaries[r] of them.
      std::vector<int> folds;
      for (std::size_t job : members[p]) {
        const int fold = jobs[job].spec.split.fold_index;
        if (std::find(folds.begin(), folds.end(), fold) == folds.end()) folds.push_back(fold);
      }
      std::vector<int> boundaries = spec.rungs;
      if (boundaries.empty()) {
        for (int k = 1; k <= int(folds.size()); ++k) boundaries.push_back(k);
      }
      if (boundaries.back() > int(folds.size())) {
        throw std::runtime_error("prune.rungs: " + std::to_string(boundaries.back()) +
                                 " folds, but grid point " +
                                 jobs[members[p].front()].spec.config_id() + " runs only " +
                                 std::to_string(folds.size()));
      }
      if (boundaries.back() < int(folds.size())) boundaries.push_back(int(folds.size()));
      const std::size_t index = plan.points.size();
      if (!plan.points.empty() && !bracket.points.empty() &&
          plan.points[bracket.points.front()].rung_folds != boundaries) {
        throw std::runtime_error(
            "prune: the grid points of dataset '" + key.first + "', method '" + key.second +
            "' run different numbers of folds; halving compares points on the same folds");
      }
      PrunePlan::Point point{jobs[members[p].front()].spec.config_id(),
                             std::vector<std::vector<std::size_t>>(boundaries.size()), boundaries};
      for (std::size_t job : members[p]) {
        const auto position =
            std::find(folds.begin(), folds.end(), jobs[job].spec.split.fold_index) - folds.begin();
        const std::size_t rung =
            std::upper_bound(boundaries.begin(), boundaries.end(), int(position)) -
            boundaries.begin();
        point.rungs[rung].push_back(job);
        plan.place[job] = {index, rung};
      }
      plan.points.push_back(std::move(point));
      plan.bracket_of_point.push_back(plan.brackets.size());
      bracket.points.push_back(index);
    }
    plan.brackets.push_back(std::move(bracket));
  }
  return plan;
}

double validation_value(const json& metrics, const std::string& metric) {
  if (!metrics.is_object()) return NAN;
  const auto val = metrics.find("val");
  if (val == metrics.end() || !val->is_object()) return NAN;
  const auto value = val->find(metric);
  return value != val->end() && value->is_number() ? value->get<double>() : NAN;
}

std::string prune_metric_of(const PrunePlan& plan, const std::string& job_id) {
  const auto index = plan.index_of.find(job_id);
  if (index == plan.index_of.end()) return "";
  const std::size_t point = plan.place[index->second].first;
  return point < plan.points.size() ? plan.brackets[plan.bracket_of_point[point]].metric : "";
}

JobOutcome plan_outcome(const PrunePlan& plan, const JobResult& result) {
  return job_outcome(result, prune_metric_of(plan, result.job_id));
}

JobOutcome job_outcome(const JobResult& result, const std::string& metric) {
  return JobOutcome{result.ok(), result.ok() ? validation_value(result.metrics, metric) : NAN};
}

void decide_bracket(const PrunePlan& plan, std::size_t bracket_index,
                    const std::map<std::string, JobOutcome>& outcomes, PruneDecisions& decisions) {
  const PrunePlan::Bracket& bracket = plan.brackets.at(bracket_index);
  decisions.points.resize(plan.points.size());
  for (std::size_t p : bracket.points) decisions.points[p] = PointDecision{};
  std::vector<std::size_t> alive = bracket.points;
  const std::size_t rung_count = plan.points[alive.front()].rungs.size();
  for (std::size_t r = 0; !alive.empty(); ++r) {
    // A lone survivor has nobody left to be ranked against: it runs every remaining fold at once.
    const std::size_t open = alive.size() == 1 ? rung_count : r + 1;
    for (std::size_t p : alive) decisions.points[p].rungs_open = open;
    if (open == rung_count) return;
    for (std::size_t p : alive) {
      if (!settled(plan, p, r, outcomes)) return;
    }
    alive = rank_rung(plan, bracket, alive, r, outcomes, decisions);
  }
}

PruneDecisions decide_pruning(const PrunePlan& plan,
                              const std::map<std::string, JobOutcome>& outcomes) {
  PruneDecisions decisions;
  decisions.points.resize(plan.points.size());
  for (std::size_t b = 0; b < plan.brackets.size(); ++b)
    decide_bracket(plan, b, outcomes, decisions);
  return decisions;
}

JobGate gate_of(const PrunePlan& plan, const PruneDecisions& decisions, std::size_t job) {
  const auto [point, rung] = plan.place.at(job);
  if (point == kNever) return JobGate::kOpen;
  const PointDecision& d = decisions.points.at(point);
  if (rung < d.rungs_open) return JobGate::kOpen;
  return d.pruned ? JobGate::kPruned : JobGate::kWaiting;
}

Pruner::Pruner(PrunePlan plan, std::map<std::string, JobOutcome> outcomes)
    : plan_(std::move(plan)),
      outcomes_(std::move(outcomes)),
      decisions_(decide_pruning(plan_, outcomes_)) {}

JobGate Pruner::gate(const std::string& job_id) const {
  const auto index = plan_.index_of.find(job_id);
  if (index == plan_.index_of.end()) return JobGate::kOpen;
  const auto outcome = outcomes_.find(job_id);
  if (outcome != outcomes_.end() && outcome->second.ok) return JobGate::kOpen;
  return gate_of(plan_, decisions_, index->second);
}

PruneChanges Pruner::record(const std::string& job_id, const JobOutcome& outcome) {
  PruneChanges changes;
  const auto index = plan_.index_of.find(job_id);
  if (index == plan_.index_of.end() || !outcomes_.emplace(job_id, outcome).second) return changes;
  const std::size_t point = plan_.place[index->second].first;
  if (point == kNever) return changes;
  const std::size_t bracket = plan_.bracket_of_point[point];
  // Only this bracket's jobs can change: compare their gates before and after.
  std::vector<std::pair<std::size_t, JobGate>> before;
  for (std::size_t p : plan_.brackets[bracket].points) {
    for (const auto& rung : plan_.points[p].rungs) {
      for (std::size_t job : rung) before.emplace_back(job, gate(plan_.job_ids[job]));
    }
  }
  decide_bracket(plan_, bracket, outcomes_, decisions_);
  std::sort(before.begin(), before.end());
  for (const auto& [job, was] : before) {
    const JobGate now = gate(plan_.job_ids[job]);
    if (now == was) continue;
    if (now == JobGate::kOpen) changes.opened.push_back(plan_.job_ids[job]);
    if (now == JobGate::kPruned) {
      changes.pruned.push_back(
          PrunedJob{plan_.job_ids[job], decisions_.points[plan_.place[job].first].detail});
    }
  }
  return changes;
}

std::vector<PrunedJob> Pruner::pruned_jobs() const {
  std::vector<PrunedJob> out;
  for (std::size_t job = 0; job < plan_.job_ids.size(); ++job) {
    if (gate(plan_.job_ids[job]) != JobGate::kPruned) continue;
    out.push_back(PrunedJob{plan_.job_ids[job], decisions_.points[plan_.place[job].first].detail});
  }
  return out;
}

HalvingReplay replay_halving(const PrunePlan& plan, const std::map<std::string, JobOutcome>& full) {
  Pruner pruner(plan, {});
  std::set<std::string> recorded;
  for (bool changed = true; changed;) {
    changed = false;
    for (const std::string& id : plan.job_ids) {
      const auto outcome = full.find(id);
      if (outcome == full.end() || recorded.count(id) > 0 || pruner.gate(id) != JobGate::kOpen)
        continue;
      recorded.insert(id);
      pruner.record(id, outcome->second);
      changed = true;
    }
  }
  HalvingReplay replay;
  replay.pruned = pruner.pruned_jobs();
  for (const std::string& id : plan.job_ids) {
    if (recorded.count(id) > 0) {
      replay.ran.push_back(id);
    } else if (pruner.gate(id) != JobGate::kPruned) {
      replay.waiting.push_back(id);
    }
  }
  return replay;
}

}  // namespace mil::orch
