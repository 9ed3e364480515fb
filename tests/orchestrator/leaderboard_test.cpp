#include "orchestrator/leaderboard.h"

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "orchestrator/results_store.h"
#include "tests/support/temp_dir.h"

namespace mil::orch {
namespace {

using nlohmann::json;

JobSpec make_spec(const std::string& dataset, double lr, std::uint64_t seed, int fold = 0) {
  JobSpec spec;
  spec.dataset.name = dataset;
  spec.dataset.root = "/data/" + dataset;
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

TEST(Leaderboard, SummarisesReplicateMeansAcrossRepetitions) {
  // Repetition 0: folds 0.8, 1.0 -> 0.9; repetition 1: folds 0.6, 0.8 -> 0.7. Over replicates:
  // mean 0.8, population std 0.1; over all four runs: mean 0.8, std sqrt(0.02) = 0.1414.
  std::vector<JobResult> results;
  const double accuracy[2][2] = {{0.8, 1.0}, {0.6, 0.8}};
  for (int rep = 0; rep < 2; ++rep) {
    for (int fold = 0; fold < 2; ++fold) {
      JobSpec spec = make_spec("musk1", 5e-4, 2021, fold);
      spec.split.repetition = rep;
      results.push_back(ok_result(spec, {{"accuracy", accuracy[rep][fold]}}));
    }
  }
  const Leaderboard board = build_leaderboard(results, {});
  ASSERT_EQ(board.rows.size(), 1u) << "repetitions replicate one configuration";
  const LeaderboardRow& row = board.rows[0];
  EXPECT_EQ(row.runs, 4);
  EXPECT_EQ(row.replicates, 2);
  EXPECT_NEAR(row.test_replicate_means.at("accuracy").mean, 0.8, 1e-12);
  EXPECT_NEAR(row.test_replicate_means.at("accuracy").std, 0.1, 1e-12);
  EXPECT_NEAR(row.test.at("accuracy").std, std::sqrt(0.02), 1e-12);
  const std::string md = to_markdown(board, "t");
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "| 2 | 0.800 ± 0.100 |", md);
}

TEST(Leaderboard, ShowsCIndicesForSurvivalDatasets) {
  const std::vector<JobResult> results = {
      ok_result(make_spec("blca", 2e-4, 1, 0), {{"c_index", 0.6}}, {{"c_index", 0.7}}),
      ok_result(make_spec("blca", 2e-4, 1, 1), {{"c_index", 0.8}}, {{"c_index", 0.5}}),
  };
  const std::string md = to_markdown(build_leaderboard(results, {}), "t");
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "| Model | Config | Runs | Test C-index | Val C-index |\n", md);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "| abmil | – | 2 | 0.700 ± 0.100 | 0.600 ± 0.100 |\n", md);
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
  EXPECT_NEAR(row.test.at("auc").mean, 0.9, 1e-12);
  EXPECT_NEAR(row.test.at("auc").std, std::sqrt(0.02 / 3), 1e-12);  // 0.08165
  EXPECT_EQ(row.test.at("auc").count, 3);
  EXPECT_NEAR(row.test.at("accuracy").std, 0.0, 1e-12);
  EXPECT_NEAR(row.val.at("auc").mean, 0.7, 1e-12);  // only two runs reported val
  EXPECT_NEAR(row.val.at("auc").std, 0.1, 1e-12);
  EXPECT_EQ(row.val.at("auc").count, 2);
  EXPECT_TRUE(board.missing.empty());
}

TEST(Leaderboard, ConfigLabelShowsOnlySettingsThatDifferAmongSiblings) {
  JobSpec with_dropout = make_spec("synth", 1e-4, 1);
  with_dropout.model.options = {{"dropout", 0.25}};
  const std::vector<JobResult> results = {
      ok_result(make_spec("synth", 1e-4, 1), {{"auc", 0.7}}),
      ok_result(make_spec("synth", 2e-4, 1), {{"auc", 0.8}}),
      ok_result(with_dropout, {{"auc", 0.9}}),
      ok_result(make_spec("musk1", 1e-4, 1), {{"auc", 0.6}}),
  };
  const Leaderboard board = build_leaderboard(results, {});
  ASSERT_EQ(board.rows.size(), 4u);
  // Datasets in name order, then test AUC descending.
  EXPECT_EQ(board.rows[0].dataset, "musk1");
  EXPECT_EQ(board.rows[0].config_label, "");  // a different dataset: no siblings
  EXPECT_EQ(board.rows[1].config_label, "model.options.dropout=0.25, train.lr=0.0001");
  EXPECT_EQ(board.rows[2].config_label, "model.options.dropout=unset, train.lr=0.0002");
  EXPECT_EQ(board.rows[3].config_label, "model.options.dropout=unset, train.lr=0.0001");
  EXPECT_EQ(board.rows[3].test.at("auc").mean, 0.7);
}

TEST(Leaderboard, MissingListsFailedAndNotRunJobs) {
  const JobSpec ran = make_spec("synth", 2e-4, 1);
  const JobSpec crashed = make_spec("synth", 2e-4, 2, 3);
  const JobSpec never = make_spec("synth", 2e-4, 3);
  const JobSpec retried = make_spec("synth", 2e-4, 4);
  const JobSpec stray = make_spec("old", 2e-4, 9);  // failed in an earlier sweep, not expected now
  const std::vector<JobResult> results = {
      ok_result(ran, {{"auc", 0.8}}),
      failed_result(crashed, "fold 3: out of memory"),
      ok_result(retried, {{"auc", 0.8}}),
      failed_result(stray, "bad root"),
  };
  const Leaderboard board = build_leaderboard(results, {ran, crashed, never, retried});
  ASSERT_EQ(board.missing.size(), 3u);
  EXPECT_EQ(board.missing[0].job_id, crashed.id());
  EXPECT_EQ(board.missing[0].status, "failed");
  EXPECT_EQ(board.missing[0].error, "fold 3: out of memory");
  EXPECT_EQ(board.missing[0].fold_index, 3);
  EXPECT_EQ(board.missing[0].seed, 2u);
  EXPECT_EQ(board.missing[1].job_id, never.id());
  EXPECT_EQ(board.missing[1].status, "not run");
  EXPECT_EQ(board.missing[1].error, "");
  EXPECT_EQ(board.missing[2].dataset, "old");
  EXPECT_EQ(board.missing[2].status, "failed");
  ASSERT_EQ(board.rows.size(), 1u);
  EXPECT_EQ(board.rows[0].runs, 2);
}

TEST(Leaderboard, MarkdownHasFormattedCellsNoteAndMissingSection) {
  const std::vector<JobResult> results = {
      ok_result(make_spec("synth", 2e-4, 1), {{"auc", 0.8}, {"balanced_accuracy", 0.75}}),
      ok_result(make_spec("synth", 2e-4, 2), {{"auc", 1.0}, {"balanced_accuracy", 0.75}}),
  };
  const std::string md = to_markdown(build_leaderboard(results, {}), "Leaderboard: demo");
  EXPECT_EQ(md.rfind("# Leaderboard: demo\n", 0), 0u);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "## synth", md);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring,
                      "| Model | Config | Runs | Test AUC | Test Acc | Test Bal.Acc | Val AUC |",
                      md);
  // mean 0.9, std 0.1; accuracy and val absent; balanced accuracy constant.
  EXPECT_PRED_FORMAT2(::testing::IsSubstring,
                      "| abmil | – | 2 | 0.900 ± 0.100 | – | 0.750 ± 0.000 | – |", md);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "mean ± population std over all runs (folds × replicates)", md);
  // Seeds 1 and 2 are two replicates, so the replicate column appears: accuracy is absent there too.
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "| Reps | Test Acc over reps |", md);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "## Missing\n\nnone\n", md);

  const JobSpec crashed = make_spec("synth", 2e-4, 5);
  const std::string with_missing =
      to_markdown(build_leaderboard({failed_result(crashed, "a|b\nc")}, {crashed}), "t");
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "No ok results yet.", with_missing);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring,
                      "| " + crashed.id() + " | synth | abmil | 0 | 5 | failed | a\\|b c |",
                      with_missing);
}

TEST(Leaderboard, WriteLeaderboardWritesMarkdownAndJsonFromResultsDir) {
  testing::TempDir dir;
  ResultsStore store(dir.path().string());
  const JobSpec a = make_spec("synth", 2e-4, 1);
  const JobSpec b = make_spec("synth", 2e-4, 2);
  store.write_manifest({a, b});
  store.write(ok_result(a, {{"auc", 0.75}}));

  const std::string md_path = write_leaderboard(dir.path().string());
  EXPECT_EQ(md_path, dir / "leaderboard.md");
  std::ifstream md_file(md_path);
  const std::string md((std::istreambuf_iterator<char>(md_file)), std::istreambuf_iterator<char>());
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "0.750 ± 0.000", md);
  EXPECT_PRED_FORMAT2(::testing::IsSubstring, "not run", md);

  const json board = json::parse(std::ifstream(dir / "leaderboard.json"));
  EXPECT_EQ(board.at("rows").at(0).at("test").at("auc").at("mean"), 0.75);
  EXPECT_EQ(board.at("rows").at(0).at("runs"), 1);
  EXPECT_EQ(board.at("missing").at(0).at("job_id"), b.id());
  EXPECT_THROW(write_leaderboard(dir / "does-not-exist"), std::runtime_error);
}

}  // namespace
}  // namespace mil::orch
