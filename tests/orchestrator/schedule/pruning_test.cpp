#include "orchestrator/schedule/pruning.h"

#include <cmath>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "orchestrator/sweep/sweep.h"
#include "tests/support/expect_throw.h"

namespace mil::orch {
namespace {

using nlohmann::json;

PruneSpec halving(int eta, std::vector<int> rungs = {}) {
  PruneSpec spec;
  spec.enabled = true;
  spec.eta = eta;
  spec.rungs = std::move(rungs);
  return spec;
}

/// The job of grid point `point` (its learning rate is 1e-4 * (point + 1)), on `dataset` with
/// method `method`, for one fold and seed; a validation split, so pruning may rank it.
JobSpec job_spec(const std::string& dataset, const std::string& method, int point, int fold,
                 std::uint64_t seed = 2021, int fold_count = 5) {
  JobSpec spec;
  spec.dataset.name = dataset;
  spec.dataset.root = "/data/" + dataset;
  spec.model.method = method;
  spec.train.lr = 1e-4 * (point + 1);
  spec.split.fold_count = fold_count;
  spec.split.fold_index = fold;
  spec.split.val_ratio = 0.15;
  spec.seed = seed;
  return spec;
}

/// `points` grid points of one (dataset, method), each with `folds` folds and every seed of
/// `seeds`, in sweep order (points outermost, then seeds, then folds).
std::vector<ScheduledJob> grid(int points, int folds,
                               const std::vector<std::uint64_t>& seeds = {2021},
                               const std::string& dataset = "d",
                               const std::string& method = "abmil") {
  std::vector<ScheduledJob> jobs;
  for (int p = 0; p < points; ++p) {
    for (std::uint64_t seed : seeds) {
      for (int f = 0; f < folds; ++f) {
        const JobSpec spec = job_spec(dataset, method, p, f, seed, folds);
        jobs.push_back(ScheduledJob{spec, spec.id()});
      }
    }
  }
  return jobs;
}

/// The id of the job of point `p`, fold `f` (and seed) in grid().
std::string id_of(int p, int f, std::uint64_t seed = 2021, int folds = 5,
                  const std::string& dataset = "d", const std::string& method = "abmil") {
  return job_spec(dataset, method, p, f, seed, folds).id();
}

/// An ok outcome with validation `value`.
JobOutcome ok(double value) { return JobOutcome{true, value}; }

/// The points (by index p of grid()) whose jobs of fold `fold` may run under `pruner`.
std::set<int> open_at(const Pruner& pruner, int points, int fold, int folds = 5) {
  std::set<int> open;
  for (int p = 0; p < points; ++p) {
    if (pruner.gate(id_of(p, fold, 2021, folds)) == JobGate::kOpen) open.insert(p);
  }
  return open;
}

TEST(PruneSpec, ReadsEveryKeyAndDefaultsTheRest) {
  const PruneSpec full = prune_spec_from_json(json{{"method", "halving"},
                                                   {"eta", 2},
                                                   {"rung", "fold"},
                                                   {"metric", "c_index"},
                                                   {"rungs", {1, 3}}});
  EXPECT_TRUE(full.enabled);
  EXPECT_EQ(full.eta, 2);
  EXPECT_EQ(full.metric, "c_index");
  EXPECT_EQ(full.rungs, (std::vector<int>{1, 3}));
  const PruneSpec defaults = prune_spec_from_json(json::object());
  EXPECT_TRUE(defaults.enabled);
  EXPECT_EQ(defaults.eta, 3);
  EXPECT_EQ(defaults.rung, "fold");
  EXPECT_EQ(defaults.metric, "auto");
  EXPECT_FALSE(prune_spec_from_json(nullptr).enabled);
  EXPECT_EQ(prune_spec_from_json(prune_spec_to_json(full)).rungs, full.rungs);
}

TEST(PruneSpec, RejectsUnknownKeysBadValuesAndEpochRungsNamingTheKey) {
  const auto pointer_of = [](const json& j) {
    try {
      prune_spec_from_json(j);
    } catch (const SweepError& e) {
      return e.pointer() + " | " + e.what();
    }
    return std::string("no error");
  };
  EXPECT_EQ(pointer_of(json{{"etta", 3}}).rfind("/prune/etta | prune: unknown key 'etta'", 0), 0u);
  EXPECT_EQ(
      pointer_of(json{{"eta", 1}}).rfind("/prune/eta | prune.eta: expected an integer >= 2", 0),
      0u);
  EXPECT_EQ(pointer_of(json{{"eta", 2.5}}).rfind("/prune/eta |", 0), 0u);
  EXPECT_EQ(pointer_of(json{{"method", "asha"}}).rfind("/prune/method |", 0), 0u);
  EXPECT_EQ(pointer_of(json{{"rung", "epochs"}})
                .rfind("/prune/rung | prune.rung: 'epochs' is not supported", 0),
            0u);
  EXPECT_EQ(pointer_of(json{{"metric", "loss"}}).rfind("/prune/metric |", 0), 0u);
  EXPECT_EQ(pointer_of(json{{"rungs", {2, 2}}})
                .rfind("/prune/rungs | prune.rungs: fold counts must increase", 0),
            0u);
  EXPECT_EQ(pointer_of(json(3)).rfind("/prune | prune: expected an object", 0), 0u);
}

TEST(PruneSpec, ASweepFileErrorNamesTheLineOfTheKey) {
  const std::string text =
      "name: x\n"
      "datasets:\n"
      "  - {name: a, root: /a}\n"
      "models: [{name: abmil}]\n"
      "split: {val_ratio: 0.2}\n"
      "prune:\n"
      "  method: halving\n"
      "  eta: 1\n";
  const SweepDocument doc = parse_yaml_sweep(text, "p.yaml");
  MIL_EXPECT_THROW_WITH(parse_sweep(doc.value, "p.yaml", doc.lines),
                        "p.yaml:8: prune.eta: expected an integer >= 2");
  const SweepDocument good = parse_yaml_sweep(text.substr(0, text.size() - 2) + "2\n", "p.yaml");
  const SweepSpec sweep = parse_sweep(good.value, "p.yaml", good.lines);
  EXPECT_TRUE(sweep.prune.enabled);
  EXPECT_EQ(sweep.prune.eta, 2);
}

TEST(PruneSpec, RefusesASweepWhoseValidationIsMissingOrIsTheTestFold) {
  const auto sweep_with = [](const json& split, const json& prune,
                             const std::string& kind = "bags") {
    return json{{"name", "x"},
                {"datasets", {{{"name", "a"}, {"root", "/a"}, {"kind", kind}}}},
                {"models", {{{"name", "abmil"}}}},
                {"split", split},
                {"prune", prune}};
  };
  MIL_EXPECT_THROW_WITH(parse_sweep(sweep_with(json::object(), json::object()), "s.json"),
                        "has no validation split (split.val_ratio is 0)");
  MIL_EXPECT_THROW_WITH(
      parse_sweep(sweep_with(json{{"protocol", "legacy"}}, json::object()), "s.json"),
      "whose validation set is the test fold");
  MIL_EXPECT_THROW_WITH(
      parse_sweep(sweep_with(json{{"val_ratio", 0.2}}, json{{"metric", "c_index"}}), "s.json"),
      "dataset 'a' is a classification benchmark");
  MIL_EXPECT_THROW_WITH(
      parse_sweep(sweep_with(json{{"val_ratio", 0.2}}, json{{"metric", "auc"}}, "survival"),
                  "s.json"),
      "dataset 'a' is a survival benchmark");
  MIL_EXPECT_THROW_WITH(
      parse_sweep(sweep_with(json{{"val_ratio", 0.2}}, json{{"rungs", {1, 6}}}), "s.json"),
      "prune.rungs: 6 folds, but grid point");
  EXPECT_NO_THROW(
      parse_sweep(sweep_with(json{{"val_ratio", 0.2}}, json{{"rungs", {1, 5}}}), "s.json"));
}

TEST(PrunePlan, PutsOneFoldPerRungByDefaultAndTheGivenFoldCountsOtherwise) {
  const PrunePlan one_per_fold = make_prune_plan(grid(3, 5), halving(3));
  ASSERT_EQ(one_per_fold.brackets.size(), 1u);
  ASSERT_EQ(one_per_fold.points.size(), 3u);
  EXPECT_EQ(one_per_fold.points[0].rung_folds, (std::vector<int>{1, 2, 3, 4, 5}));
  const PrunePlan ladder = make_prune_plan(grid(3, 5), halving(3, {1, 3}));
  EXPECT_EQ(ladder.points[0].rung_folds,
            (std::vector<int>{1, 3, 5}));  // the last rung is every fold
  EXPECT_EQ(ladder.points[0].rungs[1].size(), 2u);
  EXPECT_EQ(ladder.place[ladder.index_of.at(id_of(2, 4))],
            (std::pair<std::size_t, std::size_t>{2, 2}));
  EXPECT_TRUE(make_prune_plan(grid(3, 5), PruneSpec{}).brackets.empty());  // disabled
}

TEST(PrunePlan, RanksPointsOnlyWithinTheirDatasetAndMethodAndLeavesLonePointsAlone) {
  std::vector<ScheduledJob> jobs = grid(2, 5, {2021}, "d", "abmil");
  for (const auto& job : grid(3, 5, {2021}, "e", "abmil")) jobs.push_back(job);
  for (const auto& job : grid(1, 5, {2021}, "d", "dsmil")) jobs.push_back(job);
  const PrunePlan plan = make_prune_plan(jobs, halving(3));
  ASSERT_EQ(plan.brackets.size(), 2u);
  EXPECT_EQ(plan.brackets[0].dataset, "d");
  EXPECT_EQ(plan.brackets[0].points.size(), 2u);
  EXPECT_EQ(plan.brackets[1].dataset, "e");
  EXPECT_EQ(plan.brackets[1].points.size(), 3u);
  EXPECT_EQ(plan.brackets[0].metric, "auc");
  const Pruner pruner(plan, {});
  EXPECT_EQ(pruner.gate(id_of(0, 3, 2021, 5, "d", "dsmil")),
            JobGate::kOpen);  // a lone point runs every fold
  EXPECT_EQ(pruner.gate(id_of(0, 3, 2021, 5, "d", "abmil")), JobGate::kWaiting);
}

TEST(PrunePlan, NeverPrunesAGridPointThatOtherJobsDependOn) {
  // Two "baseline" points that the MHIM-like points depend on, fold by fold.
  std::vector<ScheduledJob> jobs = grid(2, 3, {2021}, "d", "base");
  for (int p = 0; p < 3; ++p) {
    for (int f = 0; f < 3; ++f) {
      const JobSpec spec = job_spec("d", "mhim", p, f, 2021, 3);
      jobs.push_back(ScheduledJob{spec, spec.id(), 1.0, {id_of(p % 2, f, 2021, 3, "d", "base")}});
    }
  }
  const PrunePlan plan = make_prune_plan(jobs, halving(2));
  ASSERT_EQ(plan.brackets.size(), 1u);
  EXPECT_EQ(plan.brackets[0].method, "mhim");
  std::map<std::string, JobOutcome> outcomes;
  for (int p = 0; p < 2; ++p)
    outcomes[id_of(p, 0, 2021, 3, "d", "base")] = ok(0.1);  // worst, yet never pruned
  for (int p = 0; p < 3; ++p) outcomes[id_of(p, 0, 2021, 3, "d", "mhim")] = ok(0.5 + 0.1 * p);
  const Pruner pruner(plan, outcomes);
  for (int f = 0; f < 3; ++f) {
    EXPECT_EQ(pruner.gate(id_of(0, f, 2021, 3, "d", "base")), JobGate::kOpen);
    EXPECT_EQ(pruner.gate(id_of(1, f, 2021, 3, "d", "base")), JobGate::kOpen);
  }
  EXPECT_EQ(pruner.gate(id_of(0, 1, 2021, 3, "d", "mhim")), JobGate::kPruned);
  EXPECT_EQ(pruner.gate(id_of(2, 1, 2021, 3, "d", "mhim")), JobGate::kOpen);
}

TEST(Halving, ThePrunedSetFollowsValidationWhenTheTestRankingIsTheReverse) {
  // Nine points; validation ranks point p at 0.5 + 0.04 p (point 8 best), test the other way round
  // (point 0 best). With eta 3 the best three on validation (6, 7, 8) go on.
  const PrunePlan plan = make_prune_plan(grid(9, 5), halving(3));
  std::map<std::string, JobOutcome> outcomes;
  for (int p = 0; p < 9; ++p) {
    JobResult result;
    result.job_id = id_of(p, 0);
    result.status = "ok";
    result.metrics = {{"val", {{"auc", 0.5 + 0.04 * p}}}, {"test", {{"auc", 0.9 - 0.04 * p}}}};
    outcomes[result.job_id] = job_outcome(result, "auc");
  }
  const Pruner pruner(plan, outcomes);
  EXPECT_EQ(open_at(pruner, 9, 1), (std::set<int>{6, 7, 8}));
  for (int p = 0; p < 6; ++p) EXPECT_EQ(pruner.gate(id_of(p, 4)), JobGate::kPruned) << p;
  EXPECT_EQ(pruner.pruned_jobs().size(), 6u * 4u);
}

TEST(JobOutcome, ReadsOnlyTheValidationMetricOfAnOkResult) {
  JobResult result;
  result.status = "ok";
  result.metrics = {{"val", {{"auc", 0.7}}}, {"test", {{"auc", 0.9}, {"c_index", 0.8}}}};
  EXPECT_EQ(job_outcome(result, "auc").validation, 0.7);
  EXPECT_TRUE(
      std::isnan(job_outcome(result, "c_index").validation));  // test has it; validation not
  result.status = "failed";
  EXPECT_FALSE(job_outcome(result, "auc").ok);
}

TEST(Halving, DecidesARungOnlyOnceEveryJobOfItHasSettled) {
  const PrunePlan plan = make_prune_plan(grid(3, 5), halving(3));
  std::map<std::string, JobOutcome> outcomes{{id_of(0, 0), ok(0.9)}, {id_of(1, 0), ok(0.8)}};
  const Pruner waiting(plan, outcomes);
  EXPECT_EQ(open_at(waiting, 3, 0), (std::set<int>{0, 1, 2}));  // the first rung always runs
  EXPECT_TRUE(open_at(waiting, 3, 1).empty());
  EXPECT_TRUE(waiting.pruned_jobs().empty());
  outcomes[id_of(2, 0)] = ok(0.7);
  const Pruner decided(plan, outcomes);
  // ceil(3 / 3) = 1 goes on, and as the lone survivor it runs every remaining fold at once.
  for (int f = 1; f < 5; ++f) EXPECT_EQ(open_at(decided, 3, f), (std::set<int>{0})) << f;
  EXPECT_EQ(decided.pruned_jobs().size(), 2u * 4u);
}

TEST(Halving, EighteenPointsWithEtaThreeRunTwentyEightOfNinetyFoldJobs) {
  // Rungs of one fold: 18 -> 6 -> 2 -> 1 -> 1 points, i.e. 18 + 6 + 2 + 1 + 1 = 28 jobs.
  const std::vector<ScheduledJob> jobs = grid(18, 5);
  Pruner pruner(make_prune_plan(jobs, halving(3)), {});
  std::set<std::string> ran;
  for (bool progress = true; progress;) {
    progress = false;
    for (const ScheduledJob& job : jobs) {
      if (ran.count(job.id) > 0 || pruner.gate(job.id) != JobGate::kOpen) continue;
      ran.insert(job.id);
      progress = true;
      pruner.record(job.id, ok(0.5 + 0.01 * job.spec.train.lr * 1e4));  // later points score better
    }
  }
  EXPECT_EQ(ran.size(), 28u);
  EXPECT_EQ(pruner.pruned_jobs().size(), 90u - 28u);
  for (int f = 0; f < 5; ++f)
    EXPECT_EQ(ran.count(id_of(17, f)), 1u);  // the best point ran every fold
}

TEST(Halving, AReplayOnAFullSweepRunsWhatAPruningSweepRunsAndNothingElse) {
  // Four points x three folds, eta 2: validation 0.6, 0.9, 0.7, 0.8 at fold 0; then points 1 and 3
  // go on, and fold 1 (0.5 and 0.9) leaves point 3: 4 + 2 + 1 = 7 jobs run, 5 pruned.
  const std::vector<ScheduledJob> jobs = grid(4, 3);
  const double fold0[] = {0.6, 0.9, 0.7, 0.8};
  std::map<std::string, JobOutcome> full;
  for (int p = 0; p < 4; ++p) {
    full[id_of(p, 0, 2021, 3)] = ok(fold0[p]);
    full[id_of(p, 1, 2021, 3)] = ok(p == 1 ? 0.5 : 0.9);
    full[id_of(p, 2, 2021, 3)] = ok(0.5);
  }
  const HalvingReplay replay = replay_halving(make_prune_plan(jobs, halving(2)), full);
  EXPECT_EQ(replay.ran, (std::vector<std::string>{id_of(0, 0, 2021, 3), id_of(1, 0, 2021, 3),
                                                  id_of(1, 1, 2021, 3), id_of(2, 0, 2021, 3),
                                                  id_of(3, 0, 2021, 3), id_of(3, 1, 2021, 3),
                                                  id_of(3, 2, 2021, 3)}));
  EXPECT_EQ(replay.pruned.size(), 5u);
  EXPECT_TRUE(replay.waiting.empty());
  full.erase(
      id_of(2, 0, 2021, 3));  // a job the full sweep did not finish: its rung is never decided
  const HalvingReplay partial = replay_halving(make_prune_plan(jobs, halving(2)), full);
  EXPECT_EQ(partial.ran.size(), 3u);
  EXPECT_EQ(partial.waiting.size(), 12u - 3u);
}

TEST(Halving, TiesGoToTheEarlierPointAndTheSameOutcomesGiveTheSameDecisions) {
  const PrunePlan plan = make_prune_plan(grid(4, 3), halving(2));
  const std::map<std::string, JobOutcome> outcomes{{id_of(0, 0, 2021, 3), ok(0.6)},
                                                   {id_of(1, 0, 2021, 3), ok(0.8)},
                                                   {id_of(2, 0, 2021, 3), ok(0.6)},
                                                   {id_of(3, 0, 2021, 3), ok(0.8)}};
  const Pruner first(plan, outcomes);
  EXPECT_EQ(open_at(first, 4, 1, 3), (std::set<int>{1, 3}));
  const Pruner again(plan, outcomes);
  EXPECT_EQ(again.pruned_jobs().size(), first.pruned_jobs().size());
  for (std::size_t i = 0; i < first.pruned_jobs().size(); ++i) {
    EXPECT_EQ(again.pruned_jobs()[i].job_id, first.pruned_jobs()[i].job_id);
    EXPECT_EQ(again.pruned_jobs()[i].detail, first.pruned_jobs()[i].detail);
  }
  // A tie at the top: of two points at 0.8 with one place, the earlier one (1) goes on.
  std::map<std::string, JobOutcome> tied = outcomes;
  tied[id_of(1, 1, 2021, 3)] = ok(0.7);
  tied[id_of(3, 1, 2021, 3)] = ok(0.7);
  EXPECT_EQ(open_at(Pruner(plan, tied), 4, 2, 3), (std::set<int>{1}));
}

TEST(Halving, AFailedPointNeverGoesOnAndWithoutAnyValidationNobodyIsPruned) {
  const PrunePlan plan = make_prune_plan(grid(3, 3), halving(3));
  const Pruner failed(plan, {{id_of(0, 0, 2021, 3), JobOutcome{false, NAN}},
                             {id_of(1, 0, 2021, 3), ok(0.6)},
                             {id_of(2, 0, 2021, 3), ok(0.5)}});
  EXPECT_EQ(open_at(failed, 3, 1, 3), (std::set<int>{1}));
  EXPECT_NE(failed.pruned_jobs().front().detail.find("a job of the rung failed"),
            std::string::npos);
  const Pruner blind(plan, {{id_of(0, 0, 2021, 3), ok(NAN)},
                            {id_of(1, 0, 2021, 3), ok(NAN)},
                            {id_of(2, 0, 2021, 3), ok(NAN)}});
  EXPECT_EQ(open_at(blind, 3, 1, 3), (std::set<int>{0, 1, 2}));
  EXPECT_TRUE(blind.pruned_jobs().empty());
}

TEST(Halving, ARungOfSeveralSeedsWaitsForEverySeedAndRanksByTheirMean) {
  // Point 0: seeds score 0.9 and 0.3 (mean 0.6); point 1: 0.7 and 0.7 (mean 0.7). eta 2 keeps one.
  const PrunePlan plan = make_prune_plan(grid(2, 3, {1, 2}), halving(2));
  std::map<std::string, JobOutcome> outcomes{
      {id_of(0, 0, 1, 3), ok(0.9)}, {id_of(1, 0, 1, 3), ok(0.7)}, {id_of(1, 0, 2, 3), ok(0.7)}};
  EXPECT_TRUE(Pruner(plan, outcomes).pruned_jobs().empty());  // seed 2 of point 0 has not settled
  outcomes[id_of(0, 0, 2, 3)] = ok(0.3);
  const Pruner pruner(plan, outcomes);
  EXPECT_EQ(pruner.gate(id_of(1, 2, 1, 3)), JobGate::kOpen);
  EXPECT_EQ(pruner.gate(id_of(1, 2, 2, 3)), JobGate::kOpen);
  EXPECT_EQ(pruner.gate(id_of(0, 1, 1, 3)), JobGate::kPruned);
  EXPECT_EQ(pruner.gate(id_of(0, 1, 2, 3)), JobGate::kPruned);
  EXPECT_NE(pruner.pruned_jobs().front().detail.find("validation auc 0.6000 ranked 2 of 2"),
            std::string::npos)
      << pruner.pruned_jobs().front().detail;
}

TEST(Pruner, ReportsEachOpenedAndPrunedJobOnceAndARestartFromTheSameResultsAgrees) {
  const std::vector<ScheduledJob> jobs = grid(4, 3);
  const PrunePlan plan = make_prune_plan(jobs, halving(2));
  Pruner running(plan, {});
  std::map<std::string, JobOutcome> committed;
  std::multiset<std::string> opened, pruned;
  const auto record = [&](int p, int f, double value) {
    committed[id_of(p, f, 2021, 3)] = ok(value);
    const PruneChanges changes = running.record(id_of(p, f, 2021, 3), ok(value));
    opened.insert(changes.opened.begin(), changes.opened.end());
    for (const auto& job : changes.pruned) pruned.insert(job.job_id);
    // A restart at this point (kill -9 between a result and the decision) derives the same gates.
    const Pruner restarted(plan, committed);
    for (const auto& job : jobs) EXPECT_EQ(restarted.gate(job.id), running.gate(job.id)) << job.id;
  };
  record(0, 0, 0.5);
  record(1, 0, 0.9);
  record(2, 0, 0.7);
  EXPECT_TRUE(opened.empty());
  record(3, 0, 0.6);  // the rung is complete: points 1 and 2 go on
  EXPECT_EQ(opened, (std::multiset<std::string>{id_of(1, 1, 2021, 3), id_of(2, 1, 2021, 3)}));
  EXPECT_EQ(pruned.size(), 2u * 2u);
  EXPECT_TRUE(running.record(id_of(3, 0, 2021, 3), ok(0.99)).pruned.empty());  // recorded already
  record(1, 1, 0.8);
  record(2, 1, 0.9);  // means: point 1 0.85, point 2 0.8
  EXPECT_EQ(opened.count(id_of(1, 2, 2021, 3)), 1u);
  EXPECT_EQ(running.gate(id_of(2, 2, 2021, 3)), JobGate::kPruned);
  EXPECT_EQ(pruned.size(), 5u);
  EXPECT_EQ(std::set<std::string>(pruned.begin(), pruned.end()).size(), 5u);
}

TEST(Scheduler, AGatedJobWaitsForOpenAndAPrunedOneNeverRuns) {
  std::vector<ScheduledJob> jobs = grid(1, 3);
  jobs[1].gated = true;
  jobs[2].gated = true;
  Scheduler scheduler(jobs, {});
  const Assignment first = scheduler.next(1);
  ASSERT_EQ(first.kind, Assignment::Kind::kJob);
  EXPECT_EQ(first.job->id, jobs[0].id);
  EXPECT_EQ(scheduler.next(2).kind, Assignment::Kind::kWait);
  scheduler.complete(1, jobs[0].id, /*ok=*/true);
  // Nothing runs, but a gated job may still be opened: wait, do not stop.
  EXPECT_EQ(scheduler.next(1).kind, Assignment::Kind::kWait);
  scheduler.open(jobs[1].id);
  scheduler.prune(jobs[2].id);
  const Assignment second = scheduler.next(1);
  ASSERT_EQ(second.kind, Assignment::Kind::kJob);
  EXPECT_EQ(second.job->id, jobs[1].id);
  scheduler.complete(1, jobs[1].id, /*ok=*/true);
  EXPECT_EQ(scheduler.next(1).kind, Assignment::Kind::kStop);
  EXPECT_TRUE(scheduler.finished());
  EXPECT_EQ(scheduler.done_count(), 2u);
  EXPECT_EQ(scheduler.pruned_count(), 1u);
  EXPECT_EQ(scheduler.failed_count(), 0u);
}

TEST(Scheduler, RefusesToPruneAJobThatARunningOrPendingJobNeeds) {
  std::vector<ScheduledJob> jobs = grid(1, 2);
  jobs[1].depends_on = {jobs[0].id};
  Scheduler scheduler(jobs, {});
  MIL_EXPECT_THROW_WITH(scheduler.prune(jobs[0].id), "depends on it");
  ASSERT_EQ(scheduler.next(1).kind, Assignment::Kind::kJob);
  MIL_EXPECT_THROW_WITH(scheduler.prune(jobs[0].id), "it runs");
  MIL_EXPECT_THROW_WITH(scheduler.prune("nope"), "unknown job 'nope'");
}

}  // namespace
}  // namespace mil::orch
