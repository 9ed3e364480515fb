#include "orchestrator/leaderboard/leaderboard.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "orchestrator/leaderboard/html.h"
#include "orchestrator/leaderboard/report.h"
#include "orchestrator/results/store.h"
#include "tests/support/expect_throw.h"
#include "tests/support/temp_dir.h"

namespace mil::orch {
namespace {

using nlohmann::json;

JobSpec make_spec(const std::string& dataset, double lr, std::uint64_t seed, int fold = 0,
                  const std::string& model = "abmil") {
  JobSpec spec;
  spec.dataset.name = dataset;
  spec.dataset.root = "/data/" + dataset;
  spec.model.name = model;
  spec.train.lr = lr;
  spec.seed = seed;
  spec.split.fold_index = fold;
  return spec;
}

JobResult ok_result(const JobSpec& spec, const json& test, const json& val = nullptr) {
  JobResult r;
  r.spec = spec;
  r.job_id = spec.id();
  r.config_id = spec.config_id();
  r.status = "ok";
  r.metrics = {{"test", test}};
  if (!val.is_null()) r.metrics["val"] = val;
  return r;
}

JobResult failed_result(const JobSpec& spec, const std::string& error) {
  JobResult r;
  r.spec = spec;
  r.job_id = spec.id();
  r.config_id = spec.config_id();
  r.status = "failed";
  r.error = error;
  return r;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

const LeaderboardRow& selected_row(const Leaderboard& board, const std::string& dataset,
                                   const std::string& method) {
  for (const auto& b : board.benchmarks) {
    for (const auto& m : b.methods) {
      if (b.dataset == dataset && m.method == method && m.row >= 0) return board.rows.at(m.row);
    }
  }
  throw std::runtime_error("no selected row for " + dataset + "/" + method);
}

const MethodResult& method_result(const Leaderboard& board, const std::string& dataset,
                                  const std::string& method) {
  for (const auto& b : board.benchmarks) {
    for (const auto& m : b.methods) {
      if (b.dataset == dataset && m.method == method) return m;
    }
  }
  throw std::runtime_error("no method " + method + " on " + dataset);
}

TEST(Leaderboard, SummarisesMeanAndPopulationStdOverRuns) {
  const std::vector<JobResult> results = {
      ok_result(make_spec("synth", 2e-4, 1, 0), {{"auc", 0.8}, {"accuracy", 0.5}}, {{"auc", 0.6}}),
      ok_result(make_spec("synth", 2e-4, 1, 1), {{"auc", 0.9}, {"accuracy", 0.5}}),
      ok_result(make_spec("synth", 2e-4, 2, 0), {{"auc", 1.0}, {"accuracy", 0.5}}, {{"auc", 0.8}}),
  };
  const Leaderboard board = build_leaderboard(results, {});
  ASSERT_EQ(board.rows.size(), 1u);
  const LeaderboardRow& row = board.rows[0];
  EXPECT_EQ(row.runs, 3);
  EXPECT_EQ(row.config_label, "");  // alone: nothing to distinguish
  EXPECT_EQ(row.metric, "auc");     // two classes, no selection metric recorded: AUC
  EXPECT_NEAR(row.test.at("auc").mean, 0.9, 1e-12);
  EXPECT_NEAR(row.test.at("auc").std, std::sqrt(0.02 / 3), 1e-12);  // population: over n, not n - 1
  EXPECT_EQ(row.test.at("auc").count, 3);
  EXPECT_NEAR(row.test.at("accuracy").std, 0.0, 1e-12);
  EXPECT_NEAR(row.val.at("auc").mean, 0.7, 1e-12);  // only two runs reported val
  EXPECT_EQ(row.val.at("auc").count, 2);
  // Bootstrap interval of the mean of {0.8, 0.9, 1.0}: inside [0.8, 1.0] and around 0.9.
  EXPECT_GE(row.test.at("auc").ci_low, 0.8);
  EXPECT_LT(row.test.at("auc").ci_low, 0.9);
  EXPECT_GT(row.test.at("auc").ci_high, 0.9);
  EXPECT_LE(row.test.at("auc").ci_high, 1.0);
  EXPECT_EQ(row.not_selectable, "validation auc missing in 1 of 3 runs: grid point not selectable");
  EXPECT_TRUE(row.selected) << "a lone grid point needs no selection";
  EXPECT_TRUE(board.missing.empty());
}

TEST(Leaderboard, SummarisesReplicateMeansAcrossRepetitions) {
  // Repetition 0: folds 0.8, 1.0 -> 0.9; repetition 1: folds 0.6, 0.8 -> 0.7. Over replicates:
  // mean 0.8, population std 0.1; over all four runs: mean 0.8, std sqrt(0.02) = 0.1414.
  std::vector<JobResult> results;
  const double auc[2][2] = {{0.8, 1.0}, {0.6, 0.8}};
  for (int rep = 0; rep < 2; ++rep) {
    for (int fold = 0; fold < 2; ++fold) {
      JobSpec spec = make_spec("musk1", 5e-4, 2021, fold);
      spec.split.repetition = rep;
      results.push_back(ok_result(spec, {{"auc", auc[rep][fold]}}, {{"auc", 0.5}}));
    }
  }
  const Leaderboard board = build_leaderboard(results, {});
  ASSERT_EQ(board.rows.size(), 1u) << "repetitions replicate one configuration";
  const LeaderboardRow& row = board.rows[0];
  EXPECT_EQ(row.runs, 4);
  EXPECT_EQ(row.replicates, 2);
  EXPECT_NEAR(row.test_replicate_means.at("auc").mean, 0.8, 1e-12);
  EXPECT_NEAR(row.test_replicate_means.at("auc").std, 0.1, 1e-12);
  EXPECT_NEAR(row.test.at("auc").std, std::sqrt(0.02), 1e-12);
  const std::string md = to_markdown(board, "t");
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "| Reps | Test AUC over reps |", md);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "| 2 | 0.800 ± 0.100 |", md);
}

TEST(Leaderboard, SelectsTheGridPointWithTheBestValidationNotTheBestTest) {
  // lr 1e-4: validation 0.90, test 0.70; lr 2e-4: validation 0.80, test 0.95. Selection must see
  // validation only, so the row shows test 0.70.
  std::vector<JobResult> results;
  for (int fold = 0; fold < 3; ++fold) {
    results.push_back(
        ok_result(make_spec("synth", 1e-4, 1, fold), {{"auc", 0.70}}, {{"auc", 0.90}}));
    results.push_back(
        ok_result(make_spec("synth", 2e-4, 1, fold), {{"auc", 0.95}}, {{"auc", 0.80}}));
  }
  const Leaderboard board = build_leaderboard(results, {});
  ASSERT_EQ(board.rows.size(), 2u);
  const LeaderboardRow& row = selected_row(board, "synth", "abmil");
  EXPECT_EQ(row.config_label, "train.lr=0.0001");
  EXPECT_NEAR(row.test.at("auc").mean, 0.70, 1e-12);
  EXPECT_NEAR(row.val_selection.mean, 0.90, 1e-12);
  EXPECT_EQ(row.selection, "best validation auc of 2 grid points");
  int selected = 0;
  for (const auto& r : board.rows) selected += r.selected;
  EXPECT_EQ(selected, 1);
  const std::string md = to_markdown(board, "t");
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "| abmil | train.lr=0.0001 | 3 | 0.700 ± 0.000 |",
                      md);
}

TEST(Leaderboard, SelectsOnTheMetricTheResultsNameAndUsesIt) {
  // Multi-class runs select on balanced accuracy (what metrics.selection says), not on AUC.
  std::vector<JobResult> results;
  for (double lr : {1e-4, 2e-4}) {
    JobResult r = ok_result(
        make_spec("c3", lr, 1), {{"auc", 0.9}, {"balanced_accuracy", lr == 1e-4 ? 0.5 : 0.6}},
        {{"auc", lr == 1e-4 ? 0.99 : 0.7}, {"balanced_accuracy", lr == 1e-4 ? 0.4 : 0.8}});
    r.metrics["selection"] = {{"metric", "balanced_accuracy"}};
    results.push_back(r);
  }
  const Leaderboard board = build_leaderboard(results, {});
  EXPECT_EQ(board.benchmarks.at(0).metric, "balanced_accuracy");
  EXPECT_EQ(selected_row(board, "c3", "abmil").config_label, "train.lr=0.0002");
}

TEST(Leaderboard, WithoutValidationSeveralGridPointsAreNotSelectableAndAllShown) {
  const std::vector<JobResult> results = {
      ok_result(make_spec("synth", 1e-4, 1), {{"auc", 0.7}}),
      ok_result(make_spec("synth", 2e-4, 1), {{"auc", 0.9}}),
      ok_result(make_spec("synth", 2e-4, 1, 0, "gabmil"), {{"auc", 0.8}}),  // alone: shown as is
  };
  const Leaderboard board = build_leaderboard(results, {});
  for (const auto& row : board.rows) {
    EXPECT_FALSE(row.selectable);
    EXPECT_EQ(row.not_selectable, "no validation: grid point not selectable");
  }
  const MethodResult& abmil = method_result(board, "synth", "abmil");
  EXPECT_EQ(abmil.row, -1) << "no validation: never fall back to test";
  EXPECT_EQ(abmil.note,
            "none of 2 grid points is selectable (no validation: grid point not selectable)");
  EXPECT_EQ(selected_row(board, "synth", "gabmil").selection, "only grid point");
  const std::string md = to_markdown(board, "t");
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "none of 2 grid points is selectable", md);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring,
                      "| abmil | train.lr=0.0002 | 1 | – | 0.900 ± 0.000 | | no validation: grid "
                      "point not selectable |",
                      md);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring,
                      "| abmil | train.lr=0.0001 | 1 | – | 0.700 ± 0.000 | | no validation: grid "
                      "point not selectable |",
                      md);
}

TEST(Leaderboard, ReadsProtocolFlagsTolerantlyAndDerivesValEqualsTestForLegacy) {
  JobResult tagged = ok_result(make_spec("synth", 1e-4, 1), {{"auc", 0.9}}, {{"auc", 0.9}});
  tagged.metrics["protocol_flags"] = {"val_equals_test", 7};  // a non-string is ignored
  tagged.runtime["protocol_flags"] = {"threads_changed"};
  EXPECT_EQ(protocol_flags(tagged),
            (std::vector<std::string>{"threads_changed", "val_equals_test"}));
  JobResult legacy = ok_result(make_spec("synth", 1e-4, 2), {{"auc", 0.9}});
  legacy.spec.split.protocol = "legacy";
  EXPECT_EQ(protocol_flags(legacy), (std::vector<std::string>{"val_equals_test"}));
  legacy.spec.split.val_ratio = 0.2;
  EXPECT_TRUE(protocol_flags(legacy).empty());
  EXPECT_TRUE(protocol_flags(ok_result(make_spec("synth", 1e-4, 3), {{"auc", 0.9}})).empty());
}

TEST(Leaderboard, FlaggedRowsAreMarkedAndValidationOnTheTestSetCannotSelect) {
  std::vector<JobResult> results;
  for (double lr : {1e-4, 2e-4}) {
    JobResult r = ok_result(make_spec("synth", lr, 1), {{"auc", lr == 1e-4 ? 0.7 : 0.9}},
                            {{"auc", lr == 1e-4 ? 0.7 : 0.9}});
    r.metrics["protocol_flags"] = {"val_equals_test"};
    results.push_back(r);
  }
  const Leaderboard board = build_leaderboard(results, {});
  EXPECT_EQ(method_result(board, "synth", "abmil").row, -1);
  EXPECT_EQ(board.rows[0].protocol_flags, (std::vector<std::string>{"val_equals_test"}));
  EXPECT_EQ(board.rows[0].not_selectable,
            "validation is the test set (val_equals_test): grid point not selectable");
  const std::string md = to_markdown(board, "t");
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "⚑ val_equals_test", md);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "⚑ val_equals_test", to_html(board, "t"));
}

/// Four folds of two methods whose test AUCs differ by 0.02, 0.04, 0.06, 0.08.
std::vector<JobResult> paired_results(bool record_split_sizes) {
  std::vector<JobResult> results;
  const double base[] = {0.70, 0.72, 0.74, 0.76};
  for (int fold = 0; fold < 4; ++fold) {
    for (const char* model : {"abmil", "gabmil"}) {
      const double auc = base[fold] + (std::string(model) == "gabmil" ? 0.02 * (fold + 1) : 0.0);
      JobResult r =
          ok_result(make_spec("synth", 1e-4, 1, fold, model), {{"auc", auc}}, {{"auc", 0.5}});
      if (record_split_sizes) {
        r.metrics["test"]["bags"] = 20;
        r.metrics["train"] = {{"bags", 80}};
      }
      results.push_back(r);
    }
  }
  return results;
}

TEST(Leaderboard, ComparesEachMethodWithTheBaselineOnSharedFoldRuns) {
  // d = 0.02, 0.04, 0.06, 0.08 with n_test/n_train = 20/80: the corrected t-test of
  // LeaderboardStats.CorrectedResampledTTestByHandAndScipy, t = 2.7386, p = 0.07142 (scipy); the
  // exact Wilcoxon p of 4 positive differences is 2/16.
  const Leaderboard board =
      build_leaderboard(paired_results(/*record_split_sizes=*/true), {}, {"abmil", {}});
  ASSERT_EQ(board.benchmarks.size(), 1u);
  EXPECT_EQ(board.benchmarks[0].baseline, "abmil");
  const MethodResult& g = method_result(board, "synth", "gabmil");
  ASSERT_TRUE(g.compared);
  EXPECT_EQ(g.comparison.pairs, 4);
  EXPECT_NEAR(g.comparison.mean_difference, 0.05, 1e-12);
  EXPECT_EQ(g.comparison.ratio_source, "split sizes");
  EXPECT_NEAR(g.comparison.test_train_ratio, 0.25, 1e-15);
  EXPECT_NEAR(g.comparison.t, 2.7386127875258306, 1e-9);
  EXPECT_NEAR(g.comparison.t_p, 0.07142153823145017, 1e-9);
  EXPECT_EQ(g.comparison.wilcoxon_method, "exact");
  EXPECT_NEAR(g.comparison.wilcoxon_p, 0.125, 1e-15);
  EXPECT_TRUE(method_result(board, "synth", "abmil").is_baseline);
  EXPECT_FALSE(method_result(board, "synth", "abmil").compared);
  EXPECT_EQ(board.benchmarks[0].methods[0].method, "gabmil") << "best test AUC first";

  // Without recorded split sizes, 4-fold... here fold_count 5 gives 1/(k-1) = 0.25: the same
  // numbers.
  const Leaderboard fallback =
      build_leaderboard(paired_results(/*record_split_sizes=*/false), {}, {"abmil", {}});
  const MethodResult& f = method_result(fallback, "synth", "gabmil");
  EXPECT_EQ(f.comparison.ratio_source, "1/(k-1)");
  EXPECT_NEAR(f.comparison.t_p, 0.07142153823145017, 1e-9);

  // A fold only one method ran is not a pair.
  std::vector<JobResult> partial = paired_results(true);
  partial.push_back(
      ok_result(make_spec("synth", 1e-4, 1, 4, "gabmil"), {{"auc", 0.99}}, {{"auc", 0.5}}));
  EXPECT_EQ(method_result(build_leaderboard(partial, {}, {"abmil", {}}), "synth", "gabmil")
                .comparison.pairs,
            4);
}

TEST(Leaderboard, BaselineDefaultsToTheSweepsFirstModelAndMustExist) {
  const std::vector<JobResult> results = paired_results(true);
  const std::vector<JobSpec> manifest = {make_spec("synth", 1e-4, 1, 0, "gabmil"),
                                         make_spec("synth", 1e-4, 1, 0, "abmil")};
  EXPECT_EQ(build_leaderboard(results, manifest).benchmarks[0].baseline, "gabmil");
  EXPECT_EQ(build_leaderboard(results, {}).benchmarks[0].baseline, "abmil")
      << "no manifest: alphabetical";
  MIL_EXPECT_THROW_WITH(
      build_leaderboard(results, {}, {"transmil", {}}),
      "baseline 'transmil' is not a method of these results (methods: abmil, gabmil)");
}

TEST(Leaderboard, MethodLabelsSeparateVariantsOfOneModel) {
  JobSpec plain = make_spec("synth", 1e-4, 1);
  JobSpec variant = plain;
  variant.model.method = "abmil+mhim";
  const Leaderboard board = build_leaderboard({ok_result(plain, {{"auc", 0.8}}, {{"auc", 0.5}}),
                                               ok_result(variant, {{"auc", 0.9}}, {{"auc", 0.5}})},
                                              {});
  ASSERT_EQ(board.benchmarks[0].methods.size(), 2u);
  EXPECT_EQ(board.benchmarks[0].methods[0].method, "abmil+mhim");
  EXPECT_EQ(selected_row(board, "synth", "abmil+mhim").model, "abmil");
}

TEST(Leaderboard, AverageRanksAndCriticalDifferenceAcrossBenchmarks) {
  // Test AUC of methods a, b, c on three benchmarks -> ranks:
  //   d1: 0.9, 0.8, 0.7 -> 1, 2, 3;  d2: 0.8, 0.8, 0.9 -> 2.5, 2.5, 1;
  //   d3: 0.6, 0.7, 0.5 -> 2, 1, 3.
  // Averages: a 5.5/3 = 1.833, b 5.5/3 = 1.833, c 7/3 = 2.333.
  // CD = q_0.05(3) sqrt(3 x 4 / (6 x 3)) = 2.343701 x 0.816497 = 1.913622.
  const double auc[3][3] = {{0.9, 0.8, 0.7}, {0.8, 0.8, 0.9}, {0.6, 0.7, 0.5}};
  const char* methods[] = {"a", "b", "c"};
  std::vector<JobResult> results;
  for (int d = 0; d < 3; ++d) {
    for (int m = 0; m < 3; ++m) {
      results.push_back(ok_result(make_spec("d" + std::to_string(d + 1), 1e-4, 1, 0, methods[m]),
                                  {{"auc", auc[d][m]}}));
    }
  }
  results.push_back(
      ok_result(make_spec("d4", 1e-4, 1, 0, "a"), {{"auc", 0.9}}));  // b and c never ran d4
  const Leaderboard board = build_leaderboard(results, {});
  const RankSummary& r = board.ranks;
  EXPECT_EQ(r.benchmarks, (std::vector<std::string>{"d1", "d2", "d3"}));
  ASSERT_EQ(r.methods, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_NEAR(r.average_ranks[0], 5.5 / 3, 1e-12);
  EXPECT_NEAR(r.average_ranks[1], 5.5 / 3, 1e-12);
  EXPECT_NEAR(r.average_ranks[2], 7.0 / 3, 1e-12);
  EXPECT_NEAR(r.critical_difference, 2.343701 * std::sqrt(12.0 / 18.0), 1e-6);
  ASSERT_EQ(r.skipped.size(), 1u);
  EXPECT_EQ(r.skipped[0], "d4: no selected grid point with a test auc for b, c");
  const std::string md = to_markdown(board, "t");
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "| a | 1.83 |", md);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "CD = 1.914", md);
}

TEST(Leaderboard, ValidationCurveIsTheMeanOverRunsPerEpoch) {
  JobResult a = ok_result(make_spec("synth", 1e-4, 1, 0), {{"auc", 0.8}}, {{"auc", 0.7}});
  JobResult b = ok_result(make_spec("synth", 1e-4, 1, 1), {{"auc", 0.8}}, {{"auc", 0.7}});
  a.history = json::array(
      {{{"epoch", 0}, {"val", {{"auc", 0.6}}}}, {{"epoch", 1}, {"val", {{"auc", 0.8}}}}});
  b.history = json::array({{{"epoch", 0}, {"val", {{"auc", 0.4}}}}});  // stopped after one epoch
  const Leaderboard board = build_leaderboard({a, b}, {});
  const LeaderboardRow& row = board.rows.at(0);
  ASSERT_EQ(row.val_curve.size(), 2u);
  EXPECT_NEAR(row.val_curve[0], 0.5, 1e-12);
  EXPECT_NEAR(row.val_curve[1], 0.8, 1e-12);
  EXPECT_EQ(row.val_curve_runs, (std::vector<int>{2, 1}));
}

TEST(Leaderboard, ConfigLabelShowsOnlySettingsThatDifferAmongSiblings) {
  JobSpec with_dropout = make_spec("synth", 1e-4, 1);
  with_dropout.model.options = {{"dropout", 0.25}};
  const std::vector<JobResult> results = {
      ok_result(make_spec("synth", 1e-4, 1), {{"auc", 0.7}}, {{"auc", 0.6}}),
      ok_result(make_spec("synth", 2e-4, 1), {{"auc", 0.8}}, {{"auc", 0.7}}),
      ok_result(with_dropout, {{"auc", 0.9}}, {{"auc", 0.8}}),
      ok_result(make_spec("musk1", 1e-4, 1), {{"auc", 0.6}}, {{"auc", 0.6}}),
  };
  const Leaderboard board = build_leaderboard(results, {});
  ASSERT_EQ(board.rows.size(), 4u);
  // Datasets in name order, then validation descending (the order selection reads them in).
  EXPECT_EQ(board.rows[0].dataset, "musk1");
  EXPECT_EQ(board.rows[0].config_label, "");  // a different dataset: no siblings
  EXPECT_EQ(board.rows[1].config_label, "model.options.dropout=0.25, train.lr=0.0001");
  EXPECT_EQ(board.rows[2].config_label, "model.options.dropout=unset, train.lr=0.0002");
  EXPECT_EQ(board.rows[3].config_label, "model.options.dropout=unset, train.lr=0.0001");
  EXPECT_EQ(board.rows[3].test.at("auc").mean, 0.7);
}

TEST(Leaderboard, MissingListsFailedQuarantinedAndNotRunJobs) {
  const JobSpec ran = make_spec("synth", 2e-4, 1);
  const JobSpec crashed = make_spec("synth", 2e-4, 2, 3);
  const JobSpec never = make_spec("synth", 2e-4, 3);
  const JobSpec retried = make_spec("synth", 2e-4, 4);
  const JobSpec poisoned = make_spec("synth", 2e-4, 5);
  const JobSpec stray = make_spec("old", 2e-4, 9);  // failed in an earlier sweep, not expected now
  const std::vector<JobResult> results = {
      ok_result(ran, {{"auc", 0.8}}),     failed_result(crashed, "fold 3: out of memory"),
      ok_result(retried, {{"auc", 0.8}}), failed_result(poisoned, "segfault"),
      failed_result(stray, "bad root"),
  };
  LeaderboardOptions options;
  options.quarantined[poisoned.id()] = "failed 3 times";
  const Leaderboard board =
      build_leaderboard(results, {ran, crashed, never, retried, poisoned}, options);
  ASSERT_EQ(board.missing.size(), 4u);
  EXPECT_EQ(board.missing[0].job_id, crashed.id());
  EXPECT_EQ(board.missing[0].status, "failed");
  EXPECT_EQ(board.missing[0].error, "fold 3: out of memory");
  EXPECT_EQ(board.missing[0].fold_index, 3);
  EXPECT_EQ(board.missing[0].seed, 2u);
  EXPECT_EQ(board.missing[1].job_id, never.id());
  EXPECT_EQ(board.missing[1].status, "not run");
  EXPECT_EQ(board.missing[1].error, "");
  EXPECT_EQ(board.missing[2].status, "quarantined");
  EXPECT_EQ(board.missing[2].error, "failed 3 times");
  EXPECT_EQ(board.missing[3].dataset, "old");
  EXPECT_EQ(board.missing[3].status, "failed");
  ASSERT_EQ(board.rows.size(), 1u);
  EXPECT_EQ(board.rows[0].runs, 2);
  EXPECT_EQ(board.rows[0].expected_runs, 5) << "all five expected jobs share the config";
  const std::string md = to_markdown(board, "t");
  EXPECT_PRED_FORMAT2(::testing::IsSubstring,
                      "2 ok results; 4 missing (2 failed, 1 quarantined, 1 not run).", md);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "| 2/5 |", md);
}

TEST(Leaderboard, MissingShowsAQuarantinedResultWithItsError) {
  const JobSpec ran = make_spec("synth", 2e-4, 1);
  const JobSpec poisoned = make_spec("synth", 2e-4, 2);
  JobResult quarantined = failed_result(poisoned, "killed (signal 6, Aborted)");
  quarantined.status = "quarantined";
  const Leaderboard board =
      build_leaderboard({ok_result(ran, {{"auc", 0.8}}), quarantined}, {ran, poisoned});
  ASSERT_EQ(board.missing.size(), 1u);
  EXPECT_EQ(board.missing[0].status, "quarantined");
  EXPECT_EQ(board.missing[0].error, "killed (signal 6, Aborted)");
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "(0 failed, 1 quarantined, 0 not run)",
                      to_markdown(board, "t"));
}

TEST(Leaderboard, ReadsQuarantinedJobsFromTheJournal) {
  testing::TempDir dir;
  std::ofstream(dir / "journal.jsonl")
      << R"({"job_id": "a", "status": "failed"})"
      << "\n"
      << R"({"job_id": "a", "status": "quarantined", "detail": "3 failures"})"
      << "\n"
      << "not json\n"
      << R"({"job_id": "b", "status": "quarantined"})"
      << "\n"
      << R"({"job_id": "b", "status": "ok"})"
      << "\n"
      << R"({"job_id": "c", "status": "quarantined"})"
      << "\n"
      << R"({"job_id": "c", "status": "failed"})"
      << "\n";
  const auto quarantined = read_quarantined(dir / "journal.jsonl");
  ASSERT_EQ(quarantined.size(), 1u)
      << "a later ok (b) or failed (c, rerun with --retry-failed) lifts it";
  EXPECT_EQ(quarantined.at("a"), "3 failures");
  EXPECT_TRUE(read_quarantined(dir / "no-journal.jsonl").empty());
}

TEST(Leaderboard, APrunedGridPointShowsItsPartialValidationButIsNeverSelectedComparedOrRanked) {
  // lr 1e-4 ran fold 0 only, with the best validation and test of all, and was pruned (folds 1, 2);
  // lr 2e-4 ran all three folds. gabmil is the baseline both are compared with.
  std::vector<JobSpec> expected;
  for (double lr : {1e-4, 2e-4}) {
    for (int fold = 0; fold < 3; ++fold) expected.push_back(make_spec("synth", lr, 1, fold));
  }
  for (int fold = 0; fold < 3; ++fold)
    expected.push_back(make_spec("synth", 3e-4, 1, fold, "gabmil"));
  std::vector<JobResult> results = {ok_result(expected[0], {{"auc", 0.99}}, {{"auc", 0.95}})};
  // Instance truth is measured on the test slides: a pruned point shows none of it either.
  results[0].metrics["test_truth"] = {{"instance_auc", 0.97}};
  for (int i = 3; i < 9; ++i)
    results.push_back(ok_result(expected[i], {{"auc", 0.6 + 0.01 * i}}, {{"auc", 0.7}}));
  LeaderboardOptions options;
  options.baseline = "gabmil";
  options.pruned = {{expected[1].id(), "pruned after rung 1 of 3"},
                    {expected[2].id(), "pruned after rung 1 of 3"}};
  const Leaderboard board = build_leaderboard(results, expected, options);
  const auto pruned_row =
      std::find_if(board.rows.begin(), board.rows.end(),
                   [&](const LeaderboardRow& r) { return r.config_id == expected[0].config_id(); });
  ASSERT_NE(pruned_row, board.rows.end());
  EXPECT_TRUE(pruned_row->pruned);
  EXPECT_FALSE(pruned_row->selectable);
  EXPECT_FALSE(pruned_row->selected);
  EXPECT_EQ(pruned_row->not_selectable, "pruned: pruned after rung 1 of 3");
  EXPECT_EQ(pruned_row->runs, 1);
  EXPECT_EQ(pruned_row->expected_runs, 3);
  EXPECT_DOUBLE_EQ(pruned_row->val_selection.mean, 0.95);
  EXPECT_TRUE(pruned_row->test.empty());
  EXPECT_TRUE(pruned_row->test_by_run.empty());
  EXPECT_TRUE(pruned_row->truth.empty());
  EXPECT_TRUE(pruned_row->truth_by_run.empty());
  EXPECT_EQ(selected_row(board, "synth", "abmil").config_id, expected[3].config_id());
  EXPECT_EQ(method_result(board, "synth", "abmil").comparison.pairs, 3);
  EXPECT_EQ(board.pruned_jobs, 2);
  EXPECT_TRUE(board.missing.empty()) << "pruned jobs are not missing";
  const std::string md = to_markdown(board, "t");
  EXPECT_NE(md.find("7 ok results; 0 missing (0 failed, 0 quarantined, 0 not run); 2 pruned"),
            std::string::npos)
      << md;
  EXPECT_NE(md.find("pruned: pruned after rung 1 of 3"), std::string::npos);
  EXPECT_EQ(md.find("0.990"), std::string::npos) << "a pruned point's test metric is not shown";
}

TEST(Leaderboard, ALonePrunedGridPointIsNotItsMethodsPick) {
  const std::vector<JobSpec> expected = {make_spec("synth", 1e-4, 1, 0),
                                         make_spec("synth", 1e-4, 1, 1)};
  LeaderboardOptions options;
  options.pruned = {{expected[1].id(), "pruned after rung 1 of 2"}};
  const Leaderboard board = build_leaderboard(
      {ok_result(expected[0], {{"auc", 0.9}}, {{"auc", 0.8}})}, expected, options);
  ASSERT_EQ(board.rows.size(), 1u);
  EXPECT_FALSE(board.rows[0].selected);
  EXPECT_EQ(method_result(board, "synth", "abmil").row, -1);
}

TEST(Leaderboard, ReadsPrunedJobsFromTheJournalUnlessALaterOkLineNamesThem) {
  testing::TempDir dir;
  std::ofstream(dir / "journal.jsonl")
      << R"({"job_id": "a", "status": "pruned", "detail": "rung 1"})"
      << "\n"
      << R"({"job_id": "b", "status": "pruned", "detail": "rung 1"})"
      << "\n"
      << R"({"job_id": "b", "status": "ok"})"
      << "\n";
  const auto pruned = read_pruned(dir / "journal.jsonl");
  ASSERT_EQ(pruned.size(), 1u);
  EXPECT_EQ(pruned.at("a"), "rung 1");
}

TEST(Leaderboard, MarkdownHasBenchmarkTablesRanksMissingAndNotes) {
  const std::vector<JobResult> results = paired_results(true);
  const std::string md =
      to_markdown(build_leaderboard(results, {}, {"abmil", {}}), "Leaderboard: demo");
  EXPECT_EQ(md.rfind("# Leaderboard: demo\n", 0), 0u);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "## synth\n", md);
  EXPECT_PRED_FORMAT2(
      ::testing::IsSubstring,
      "| Method | Config | Runs | Test AUC | 95% CI of mean | Val AUC | Test Acc | Test Bal.Acc | "
      "Δ vs baseline | Pairs | t-test p (corr.) | Wilcoxon p | Notes |",
      md);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "| +0.050 | 4 | 0.071 | 0.125 (exact) |", md);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "| baseline | | | | only grid point |", md);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "### Every grid point of synth", md);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "## Across benchmarks", md);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "## Missing\n\nnone\n", md);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "population std (ddof 0)", md);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "Nadeau & Bengio", md);

  const JobSpec crashed = make_spec("synth", 2e-4, 5);
  const std::string with_missing =
      to_markdown(build_leaderboard({failed_result(crashed, "a|b\nc")}, {crashed}), "t");
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "No ok results yet.", with_missing);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring,
                      "| " + crashed.id() + " | synth | abmil | 0 | 5 | failed | a\\|b c |",
                      with_missing);
}

/// Splits one CSV line, honouring double quotes.
std::vector<std::string> csv_fields(const std::string& line) {
  std::vector<std::string> fields(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') {
      fields.back() += '"';
      ++i;
    } else if (c == '"') {
      quoted = !quoted;
    } else if (c == ',' && !quoted) {
      fields.emplace_back();
    } else {
      fields.back() += c;
    }
  }
  return fields;
}

TEST(Leaderboard, CsvHasOneLinePerGridPointWithTheHeadersColumns) {
  std::vector<JobResult> results = paired_results(true);
  results.push_back(ok_result(make_spec("synth", 5e-4, 1, 0), {{"auc", 0.5}},
                              {{"auc", 0.1}}));  // a worse abmil point
  const Leaderboard board = build_leaderboard(results, {}, {"abmil", {}});
  std::istringstream csv(to_csv(board));
  std::string line;
  std::getline(csv, line);
  const std::vector<std::string> header = csv_fields(line);
  EXPECT_EQ(header.front(), "benchmark");
  EXPECT_EQ(header.back(), "wilcoxon_method");
  std::vector<std::vector<std::string>> lines;
  while (std::getline(csv, line)) lines.push_back(csv_fields(line));
  ASSERT_EQ(lines.size(), board.rows.size());
  ASSERT_EQ(lines.size(), 3u);
  const auto column = [&](const std::string& name) {
    return std::size_t(std::find(header.begin(), header.end(), name) - header.begin());
  };
  for (const auto& fields : lines) {
    ASSERT_EQ(fields.size(), header.size());
    if (fields[column("method")] == "gabmil") {
      EXPECT_EQ(fields[column("selected")], "true");
      EXPECT_EQ(fields[column("pairs")], "4");
      EXPECT_EQ(fields[column("wilcoxon_p")], "0.125");
      EXPECT_NEAR(std::stod(fields[column("delta_vs_baseline")]), 0.05, 1e-9);
    }
  }
  EXPECT_EQ(lines[1][column("config_label")], "train.lr=0.0005");
  EXPECT_EQ(lines[1][column("selected")], "false");
}

TEST(Leaderboard, HtmlIsOnePageWithInlineSvgAndNothingFromElsewhere) {
  std::vector<JobResult> results = paired_results(true);
  for (int fold = 0; fold < 2; ++fold) {  // a second benchmark, so ranks and the CD diagram exist
    results.push_back(
        ok_result(make_spec("other", 1e-4, 1, fold, "abmil"), {{"auc", 0.6}}, {{"auc", 0.5}}));
    results.push_back(
        ok_result(make_spec("other", 1e-4, 1, fold, "gabmil"), {{"auc", 0.7}}, {{"auc", 0.5}}));
  }
  for (auto& r : results)
    r.history = json::array({{{"val", {{"auc", 0.6}}}}, {{"val", {{"auc", 0.7}}}}});
  const std::string page =
      to_html(build_leaderboard(results, {}, {"abmil", {}}), "Leaderboard: <demo>");
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(page.find("</html>\n"), std::string::npos);
  EXPECT_NE(page.find("<title>Leaderboard: &lt;demo&gt;</title>"), std::string::npos)
      << "text is escaped";
  for (const char* external :
       {"http://", "https://", "<script", "<link", "<img", "src=", "url(", "@import"}) {
    EXPECT_EQ(page.find(external), std::string::npos) << "external resource: " << external;
  }
  std::size_t svgs = 0;
  for (std::size_t at = page.find("<svg"); at != std::string::npos; at = page.find("<svg", at + 1))
    ++svgs;
  EXPECT_EQ(svgs, 2u * 2u + 1u)
      << "bars and curves per benchmark, and one critical-difference diagram";
  EXPECT_NE(page.find("aria-label=\"critical difference diagram\""), std::string::npos);
  EXPECT_NE(page.find("CD = "), std::string::npos);
  EXPECT_NE(page.find("Validation AUC per epoch"), std::string::npos);
  EXPECT_NE(page.find("<h2>synth</h2>"), std::string::npos);
  EXPECT_NE(page.find("<h2>Missing</h2>"), std::string::npos);
}

TEST(Leaderboard, WriteLeaderboardWritesMarkdownCsvJsonAndHtmlFromResultsDir) {
  testing::TempDir dir;
  ResultsStore store(dir.path().string());
  const JobSpec a = make_spec("synth", 2e-4, 1);
  const JobSpec b = make_spec("synth", 2e-4, 2);
  store.write_manifest({a, b});
  store.write(ok_result(a, {{"auc", 0.75}}, {{"auc", 0.5}}));
  store.note(b.id(), "quarantined", "failed 3 times");

  const std::string md_path = write_leaderboard(dir.path().string());
  EXPECT_EQ(md_path, dir / "leaderboard.md");
  const std::string md = read_text(md_path);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "0.750 ± 0.000", md);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "| quarantined | failed 3 times |", md);
  const json board = json::parse(read_text(dir / "leaderboard.json"));
  EXPECT_EQ(board.at("rows").at(0).at("test").at("auc").at("mean"), 0.75);
  EXPECT_EQ(board.at("rows").at(0).at("runs"), 1);
  EXPECT_EQ(board.at("benchmarks").at(0).at("metric"), "auc");
  EXPECT_EQ(board.at("missing").at(0).at("job_id"), b.id());
  EXPECT_EQ(board.at("missing").at(0).at("status"), "quarantined");
  EXPECT_EQ(read_text(dir / "leaderboard.csv").rfind("benchmark,method,", 0), 0u);
  EXPECT_EQ(read_text(dir / "leaderboard.html").rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_THROW(write_leaderboard(dir / "does-not-exist"), std::runtime_error);
}

TEST(Leaderboard, InstanceTruthMetricsGetColumnsAndPairedTestsOnlyWhenPresent) {
  // The instance AUC of hard witnesses moves like the headline AUC of the paired case above
  // (d = 0.02, 0.04, 0.06, 0.08, 20/80 split): the same t = 2.7386, p = 0.07142, Wilcoxon 2/16.
  std::vector<JobResult> results = paired_results(/*record_split_sizes=*/true);
  const Leaderboard plain = build_leaderboard(results, {}, {"abmil", {}});
  for (JobResult& r : results) {
    const double auc = r.metrics.at("test").at("auc").get<double>();
    r.metrics["test_truth"] = {{"instance_auc_hard", auc},
                               {"auc_hard_only", 0.6},
                               {"scores", "attention"},
                               {"slides", {{"hard", 12}}}};
  }
  const Leaderboard board = build_leaderboard(results, {}, {"abmil", {}});
  const LeaderboardRow& abmil = selected_row(board, "synth", "abmil");
  EXPECT_NEAR(abmil.truth.at("instance_auc_hard").mean, 0.73, 1e-12);  // 0.70 .. 0.76
  EXPECT_EQ(abmil.truth.at("auc_hard_only").count, 4);
  EXPECT_EQ(abmil.truth.count("scores"), 0u);  // only the numbers the leaderboard shows
  const MethodResult& g = method_result(board, "synth", "gabmil");
  const Comparison& c = g.truth_comparisons.at("instance_auc_hard");
  EXPECT_EQ(c.pairs, 4);
  EXPECT_NEAR(c.mean_difference, 0.05, 1e-12);
  EXPECT_NEAR(c.t_p, 0.07142153823145017, 1e-9);
  EXPECT_NEAR(c.wilcoxon_p, 0.125, 1e-15);
  EXPECT_NEAR(g.truth_comparisons.at("auc_hard_only").mean_difference, 0.0, 1e-12);

  const std::string md = to_markdown(board, "t");
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "| Hard-only AUC | Inst. AUC (hard) |", md);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "### Instance truth on synth", md);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "| 0.780 ± 0.045 | +0.050 | 0.071 | 0.125 |", md);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "instance_auc_hard_mean", to_csv(board));
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "Inst. AUC (hard)", to_html(board, "t"));
  EXPECT_TRUE(json(board).at("rows").at(0).contains("test_truth"));
  // Results without truth look exactly as before.
  EXPECT_EQ(to_markdown(plain, "t").find("Inst. AUC"), std::string::npos);
  EXPECT_EQ(to_markdown(plain, "t").find("Instance truth"), std::string::npos);
  EXPECT_EQ(to_csv(plain).find("instance_auc"), std::string::npos);
  EXPECT_FALSE(json(plain).at("rows").at(0).contains("test_truth"));
}

TEST(Leaderboard, TitleIsTheSweepsNameNotTheResultsFolders) {
  testing::TempDir dir;
  ResultsStore store((dir.path() / "results").string());
  const JobSpec a = make_spec("synth", 2e-4, 1);
  store.write(ok_result(a, {{"auc", 0.75}}, {{"auc", 0.5}}));
  EXPECT_EQ(read_text(write_leaderboard(dir / "results")).rfind("# Leaderboard: results\n", 0),
            0u);  // no name recorded: the folder's
  write_sweep_name(dir / "results", "mhim_hard_easy_synthetic");
  EXPECT_EQ(read_sweep_name(dir / "results"), "mhim_hard_easy_synthetic");
  EXPECT_EQ(read_text(write_leaderboard(dir / "results"))
                .rfind("# Leaderboard: mhim_hard_easy_synthetic\n", 0),
            0u);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "<h1>Leaderboard: mhim_hard_easy_synthetic</h1>",
                      read_text(dir / "results/leaderboard.html"));
}

}  // namespace
}  // namespace mil::orch
