#include "orchestrator/sweep.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include <gtest/gtest.h>

namespace mil::orch {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

/// The message of the exception `f` throws, or "<no exception>".
template <typename F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "<no exception>";
}

::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << part << "' not found in: " << text;
}

/// A fresh folder under the system temp dir, removed with everything in it at scope exit.
class TempDir {
 public:
  TempDir()
      : path_(fs::temp_directory_path() / ("mhim_sweep_test_" + std::to_string(::getpid()) + "_" +
                                           std::to_string(next_id_++))) {
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  static inline int next_id_ = 0;
  fs::path path_;
};

std::string write_text(const std::string& path, const std::string& text) {
  std::ofstream(path) << text;
  return path;
}

/// 2 datasets x 1 model x (3 dropouts x 2 lrs) x 2 seeds x 3 folds.
json grid_sweep() {
  return json::parse(R"({
    "name": "grid",
    "datasets": [{"name": "synth", "root": "/data/synth"}, {"name": "musk1", "kind": "musk", "root": "/data/musk1"}],
    "models": [{"name": "abmil"}],
    "train": {"epochs": 3},
    "split": {"fold_count": 3},
    "grid": {"train.lr": [1e-4, 2e-4], "model.options.dropout": [0, 0.25, 0.5]},
    "seeds": [7, 8]
  })");
}

TEST(Sweep, ExpandsDatasetsModelsGridSeedsFoldsInOrder) {
  const std::vector<JobSpec> jobs = expand(parse_sweep(grid_sweep(), "grid.json"));
  ASSERT_EQ(jobs.size(), 2u * 1u * (3u * 2u) * 2u * 3u);  // 72
  const std::vector<std::string> datasets = {"synth", "musk1"};
  const std::vector<double> dropouts = {0, 0.25, 0.5};  // "model.options.dropout" sorts first
  const std::vector<double> lrs = {1e-4, 2e-4};         // "train.lr" sorts last: varies fastest
  const std::vector<std::uint64_t> seeds = {7, 8};
  std::size_t k = 0;
  for (const auto& dataset : datasets) {
    for (double dropout : dropouts) {
      for (double lr : lrs) {
        for (std::uint64_t seed : seeds) {
          for (int fold = 0; fold < 3; ++fold, ++k) {
            SCOPED_TRACE("job " + std::to_string(k));
            EXPECT_EQ(jobs[k].dataset.name, dataset);
            EXPECT_EQ(jobs[k].model.options.at("dropout").get<double>(), dropout);
            EXPECT_EQ(jobs[k].train.lr, lr);
            EXPECT_EQ(jobs[k].train.epochs, 3);
            EXPECT_EQ(jobs[k].seed, seed);
            EXPECT_EQ(jobs[k].split.fold_index, fold);
          }
        }
      }
    }
  }
}

TEST(Sweep, JobIdsAreUniqueAndStableAcrossExpansions) {
  const SweepSpec sweep = parse_sweep(grid_sweep(), "grid.json");
  const std::vector<JobSpec> first = expand(sweep);
  const std::vector<JobSpec> second = expand(parse_sweep(grid_sweep(), "grid.json"));
  std::set<std::string> ids;
  std::set<std::string> configs;
  for (std::size_t i = 0; i < first.size(); ++i) {
    EXPECT_EQ(first[i].id(), second[i].id());
    ids.insert(first[i].id());
    configs.insert(first[i].config_id());
  }
  EXPECT_EQ(ids.size(), 72u);
  EXPECT_EQ(configs.size(), 2u * 6u);  // seeds and folds share a config id
}

TEST(Sweep, ExplicitFoldsReplaceTheDefaultAllFolds) {
  json j = grid_sweep();
  j["grid"] = json::object();
  j["folds"] = {2, 0};
  const std::vector<JobSpec> jobs = expand(parse_sweep(j, "folds.json"));
  ASSERT_EQ(jobs.size(), 2u * 2u * 2u);  // datasets x seeds x listed folds
  EXPECT_EQ(jobs[0].split.fold_index, 2);
  EXPECT_EQ(jobs[1].split.fold_index, 0);
  EXPECT_EQ(jobs[0].train.lr, TrainSpec{}.lr);  // no grid: the base setting
}

TEST(Sweep, RejectsUnknownTopLevelKeyNamingFileAndKey) {
  json j = grid_sweep();
  j["sedes"] = {1};
  const std::string message = error_message([&] { parse_sweep(j, "sweeps/typo.json"); });
  EXPECT_TRUE(contains(message, "sweeps/typo.json"));
  EXPECT_TRUE(contains(message, "'sedes'"));
}

TEST(Sweep, RejectsUnknownKeyInsideDatasetWithFileAndIndex) {
  json j = grid_sweep();
  j["datasets"][1]["rot"] = "/x";
  const std::string message = error_message([&] { parse_sweep(j, "s.json"); });
  EXPECT_TRUE(contains(message, "s.json: datasets[1]"));
  EXPECT_TRUE(contains(message, "'rot'"));
}

TEST(Sweep, RejectsInvalidGridValueNamingGridKey) {
  json j = grid_sweep();
  j["grid"]["train.lr"] = {1e-4, -1};
  const std::string message = error_message([&] { parse_sweep(j, "g.json"); });
  EXPECT_TRUE(contains(message, "g.json"));
  EXPECT_TRUE(contains(message, "grid key 'train.lr' = -1"));
  EXPECT_TRUE(contains(message, "lr must be > 0"));
}

TEST(Sweep, RejectsGridKeysOutsideJobSectionsAndNonArrayValues) {
  json seed_grid = grid_sweep();
  seed_grid["grid"] = {{"seed", {1, 2}}};
  EXPECT_TRUE(
      contains(error_message([&] { parse_sweep(seed_grid, "g.json"); }), "grid key 'seed'"));
  json scalar_grid = grid_sweep();
  scalar_grid["grid"] = {{"train.epochs", 5}};
  EXPECT_TRUE(
      contains(error_message([&] { parse_sweep(scalar_grid, "g.json"); }), "non-empty array"));
}

TEST(Sweep, RejectsFoldOutsideRangeAndDuplicateDatasetNames) {
  json bad_fold = grid_sweep();
  bad_fold["folds"] = {0, 3};  // fold_count is 3
  EXPECT_TRUE(contains(error_message([&] { parse_sweep(bad_fold, "f.json"); }),
                       "fold 3 is outside [0, 3)"));
  json twin = grid_sweep();
  twin["datasets"][1]["name"] = "synth";
  EXPECT_TRUE(
      contains(error_message([&] { parse_sweep(twin, "d.json"); }), "name 'synth' appears twice"));
}

TEST(Sweep, ReportsJsonSyntaxErrorWithPathAndLine) {
  TempDir dir;
  const std::string path =
      write_text(dir.file("broken.json"), "{\n  \"name\": \"x\",\n  \"datasets\": [\n}\n");
  const std::string message = error_message([&] { load_sweep(path); });
  EXPECT_TRUE(contains(message, path));
  EXPECT_TRUE(contains(message, "line 4"));
}

TEST(Sweep, OverrideSelectsNamedArrayElementAndKeepsPathsAsStrings) {
  json j = grid_sweep();
  apply_override(j, "datasets.musk1.root=/data/other musk");
  EXPECT_EQ(j["datasets"][1]["root"], "/data/other musk");
  EXPECT_EQ(j["datasets"][0]["root"], "/data/synth");
}

TEST(Sweep, OverrideParsesJsonValuesAndCreatesMissingObjects) {
  json j = grid_sweep();
  apply_override(j, "train.lr=1e-4");
  apply_override(j, "train.deterministic=false");
  apply_override(j, "seeds=[1,2,3]");
  apply_override(j, "models.abmil.options.dropout=0.25");
  apply_override(j, "models.abmil.options.gate=true");
  apply_override(j, "grid.train.epochs=[1,2]");  // a grid key is one dotted key, not a nested path
  EXPECT_TRUE(j["train"]["lr"].is_number_float());
  EXPECT_EQ(j["train"]["lr"].get<double>(), 1e-4);
  EXPECT_EQ(j["train"]["deterministic"], false);
  EXPECT_EQ(j["seeds"], json({1, 2, 3}));
  EXPECT_EQ(j["models"][0]["options"], json({{"dropout", 0.25}, {"gate", true}}));
  EXPECT_EQ(j["grid"]["train.epochs"], json({1, 2}));
}

TEST(Sweep, OverrideErrorsNameTheKeyOrTheMissingElement) {
  json j = grid_sweep();
  const std::string missing =
      error_message([&] { apply_override(j, "datasets.camelyon.root=/x"); });
  EXPECT_TRUE(contains(missing, "no element of 'datasets' is named 'camelyon'"));
  EXPECT_TRUE(contains(missing, "synth, musk1"));
  const std::string scalar = error_message([&] { apply_override(j, "name.x=1"); });
  EXPECT_TRUE(contains(scalar, "key 'name.x'"));
  EXPECT_TRUE(
      contains(error_message([&] { apply_override(j, "train.lr"); }), "expected key.path=value"));
}

TEST(Sweep, LoadSweepAppliesOverridesBeforeValidation) {
  TempDir dir;
  const std::string path = write_text(dir.file("s.json"), grid_sweep().dump(2));
  const SweepSpec sweep = load_sweep(path, {"seeds=[1,2,3]", "grid={}", "split.fold_count=4"});
  EXPECT_EQ(sweep.name, "grid");
  EXPECT_EQ(expand(sweep).size(), 2u * 3u * 4u);  // datasets x seeds x folds
  const std::string message = error_message([&] { load_sweep(path, {"train.epochs=0"}); });
  EXPECT_TRUE(contains(message, path));
  EXPECT_TRUE(contains(message, "epochs must be >= 1"));
}

}  // namespace
}  // namespace mil::orch
