#include "orchestrator/sweep.h"

#include <fstream>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "mil/sha256.h"
#include "tests/support/expect_throw.h"
#include "tests/support/temp_dir.h"

namespace mil::orch {
namespace {

using nlohmann::json;

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
  MIL_EXPECT_THROW_WITH(parse_sweep(j, "sweeps/typo.json"), "sweeps/typo.json");
  MIL_EXPECT_THROW_WITH(parse_sweep(j, "sweeps/typo.json"), "'sedes'");
}

TEST(Sweep, RejectsUnknownKeyInsideDatasetWithFileAndIndex) {
  json j = grid_sweep();
  j["datasets"][1]["rot"] = "/x";
  MIL_EXPECT_THROW_WITH(parse_sweep(j, "s.json"), "s.json: datasets[1]");
  MIL_EXPECT_THROW_WITH(parse_sweep(j, "s.json"), "'rot'");
}

TEST(Sweep, RejectsInvalidGridValueNamingGridKey) {
  json j = grid_sweep();
  j["grid"]["train.lr"] = {1e-4, -1};
  MIL_EXPECT_THROW_WITH(parse_sweep(j, "g.json"), "g.json");
  MIL_EXPECT_THROW_WITH(parse_sweep(j, "g.json"), "grid key 'train.lr' = -1");
  MIL_EXPECT_THROW_WITH(parse_sweep(j, "g.json"), "lr must be > 0");
}

TEST(Sweep, RejectsGridKeysOutsideJobSectionsAndNonArrayValues) {
  json seed_grid = grid_sweep();
  seed_grid["grid"] = {{"seed", {1, 2}}};
  MIL_EXPECT_THROW_WITH(parse_sweep(seed_grid, "g.json"), "grid key 'seed'");
  json scalar_grid = grid_sweep();
  scalar_grid["grid"] = {{"train.epochs", 5}};
  MIL_EXPECT_THROW_WITH(parse_sweep(scalar_grid, "g.json"), "non-empty array");
}

TEST(Sweep, RejectsFoldOutsideRangeAndDuplicateDatasetNames) {
  json bad_fold = grid_sweep();
  bad_fold["folds"] = {0, 3};  // fold_count is 3
  MIL_EXPECT_THROW_WITH(parse_sweep(bad_fold, "f.json"), "fold 3 is outside [0, 3)");
  json twin = grid_sweep();
  twin["datasets"][1]["name"] = "synth";
  MIL_EXPECT_THROW_WITH(parse_sweep(twin, "d.json"), "name 'synth' appears twice");
}

TEST(Sweep, ReportsJsonSyntaxErrorWithPathAndLine) {
  testing::TempDir dir;
  const std::string path =
      write_text(dir / "broken.json", "{\n  \"name\": \"x\",\n  \"datasets\": [\n}\n");
  MIL_EXPECT_THROW_WITH(load_sweep(path), path);
  MIL_EXPECT_THROW_WITH(load_sweep(path), "line 4");
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
  MIL_EXPECT_THROW_WITH(apply_override(j, "datasets.camelyon.root=/x"),
                        "no element of 'datasets' is named 'camelyon'");
  MIL_EXPECT_THROW_WITH(apply_override(j, "datasets.camelyon.root=/x"), "synth, musk1");
  MIL_EXPECT_THROW_WITH(apply_override(j, "name.x=1"), "key 'name.x'");
  MIL_EXPECT_THROW_WITH(apply_override(j, "train.lr"), "expected key.path=value");
}

TEST(Sweep, LoadSweepAppliesOverridesBeforeValidation) {
  testing::TempDir dir;
  const std::string path = write_text(dir / "s.json", grid_sweep().dump(2));
  const SweepSpec sweep = load_sweep(path, {"seeds=[1,2,3]", "grid={}", "split.fold_count=4"});
  EXPECT_EQ(sweep.name, "grid");
  EXPECT_EQ(expand(sweep).size(), 2u * 3u * 4u);  // datasets x seeds x folds
  MIL_EXPECT_THROW_WITH(load_sweep(path, {"train.epochs=0"}), path);
  MIL_EXPECT_THROW_WITH(load_sweep(path, {"train.epochs=0"}), "epochs must be >= 1");
}


/// Count, first id, last id and SHA-256 of all ids (one per line) of a sweep file's jobs.
struct IdDigest {
  std::size_t count;
  std::string first, last, sha256;
};

IdDigest id_digest(const std::string& path) {
  const std::vector<JobSpec> jobs = expand(load_sweep(path));
  std::string all;
  for (const auto& job : jobs) all += job.id() + "\n";
  return {jobs.size(), jobs.front().id(), jobs.back().id(), sha256_hex(all)};
}

// The digests below were printed by the expansion code as it was before YAML, zip and random axes
// were added (commit 2c70181), from sweeps/quickstart.json and sweeps/musk.json. A changed id would
// make every earlier results directory look unrun, so these must never change.
TEST(Sweep, ShippedSweepFilesKeepTheirJobIdsAndOrder) {
  const IdDigest quickstart = id_digest(std::string(MIL_SOURCE_DIR) + "/sweeps/quickstart.json");
  EXPECT_EQ(quickstart.count, 40u);  // 2 datasets x 2 dropouts x 2 lrs x 1 seed x 5 folds
  EXPECT_EQ(quickstart.first, "91bd5b3151c5776e");
  EXPECT_EQ(quickstart.last, "1ad428d59e7b1fca");
  EXPECT_EQ(quickstart.sha256, "f8aa846137cb71f84470686166afad929d30671332bd15f7b553e3d5e4eb7f62");
  const IdDigest musk = id_digest(std::string(MIL_SOURCE_DIR) + "/sweeps/musk.json");
  EXPECT_EQ(musk.count, 200u);  // 2 datasets x 2 models x 5 repetitions x 10 folds
  EXPECT_EQ(musk.first, "d2635857ee7554ae");
  EXPECT_EQ(musk.last, "4d9f2557657fee86");
  EXPECT_EQ(musk.sha256, "b6725aeb95e8198ccb169c21d277076b8329dd2aba070d2a11cba758e43ba55c");
}
}  // namespace
}  // namespace mil::orch
