#include "orchestrator/sweep/sweep.h"
#include "orchestrator/sweep/axes.h"

#include <fstream>
#include <set>
#include <string>

#include <gtest/gtest.h>

#include "mil/core/sha256.h"
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

TEST(Sweep, AcceptsTheKeysItsSpecsWriteOnlyWhenSet) {
  // split.dir (protocol "file": CLAM splits_{k}.csv) and a dataset's ram_budget_gb are left out of
  // a spec's JSON when unset, so that older job ids stay the same; a sweep may still set them.
  json j = grid_sweep();
  j["split"] = {{"protocol", "file"}, {"dir", "splits"}, {"fold_count", 2}};
  j["datasets"].erase(1);
  j["datasets"][0]["ram_budget_gb"] = 8;
  const std::vector<JobSpec> jobs = expand(parse_sweep(j, "s.json"));
  ASSERT_FALSE(jobs.empty());
  EXPECT_EQ(jobs[0].split.dir, "splits");
  EXPECT_DOUBLE_EQ(jobs[0].dataset.ram_budget_gb, 8.0);
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
  apply_override(j, "zip.train.lr=[1e-4,2e-4]");
  apply_override(j, "random.space.train.weight_decay={\"log_uniform\": [1e-6, 1e-4]}");
  apply_override(j, "random.seed=3");
  EXPECT_EQ(j["zip"]["train.lr"], json({1e-4, 2e-4}));
  EXPECT_EQ(j["random"]["space"]["train.weight_decay"], json({{"log_uniform", {1e-6, 1e-4}}}));
  EXPECT_EQ(j["random"]["seed"], 3);
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
// were added (commit 2c70181), from sweeps/quickstart.json (now .yaml) and sweeps/musk.json. A
// changed id would make every earlier results directory look unrun, so these must never change.
TEST(Sweep, ShippedSweepFilesKeepTheirJobIdsAndOrder) {
  // quickstart.json became quickstart.yaml with the same content: same jobs, same ids.
  const IdDigest quickstart = id_digest(std::string(MIL_SOURCE_DIR) + "/sweeps/quickstart.yaml");
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
TEST(Sweep, ZipVariesItsKeysTogetherInsideTheGrid) {
  json j = grid_sweep();
  j["datasets"] = {j["datasets"][0]};
  j["seeds"] = {7u};
  j["folds"] = {0};
  j["grid"] = {{"model.options.dropout", {0, 0.5}}};
  j["zip"] = {{"train.lr", {1e-4, 2e-4, 3e-4}}, {"train.epochs", {5, 10, 15}}};
  const std::vector<JobSpec> jobs = expand(parse_sweep(j, "z.json"));
  ASSERT_EQ(jobs.size(), 2u * 3u);                     // grid 2 x zip 3, not 2 x 3 x 3
  const double dropouts[] = {0, 0, 0, 0.5, 0.5, 0.5};  // the grid is the outer axis
  const double lrs[] = {1e-4, 2e-4, 3e-4, 1e-4, 2e-4, 3e-4};
  const int epochs[] = {5, 10, 15, 5, 10, 15};
  for (std::size_t k = 0; k < jobs.size(); ++k) {
    SCOPED_TRACE("job " + std::to_string(k));
    EXPECT_EQ(jobs[k].model.options.at("dropout").get<double>(), dropouts[k]);
    EXPECT_EQ(jobs[k].train.lr, lrs[k]);
    EXPECT_EQ(jobs[k].train.epochs, epochs[k]);
  }
}

TEST(Sweep, ZipGroupsInAnArrayAreCrossedWithEachOther) {
  json j = grid_sweep();
  j["datasets"] = {j["datasets"][0]};
  j["grid"] = json::object();
  j["seeds"] = {7u};
  j["folds"] = {0};
  j["zip"] = json::array({{{"train.lr", {1e-4, 2e-4}}, {"train.epochs", {5, 10}}},
                          {{"model.options.dropout", {0, 0.25, 0.5}}}});
  const std::vector<JobSpec> jobs = expand(parse_sweep(j, "z.json"));
  ASSERT_EQ(jobs.size(), 2u * 3u);
  EXPECT_EQ(jobs[0].train.lr, 1e-4);
  EXPECT_EQ(jobs[2].model.options.at("dropout").get<double>(), 0.5);  // the later group is faster
  EXPECT_EQ(jobs[3].train.epochs, 10);
}

TEST(Sweep, ZipRejectsListsOfDifferentLengthsNamingBothKeys) {
  json j = grid_sweep();
  j["zip"] = {{"train.lr", {1e-4, 2e-4, 3e-4}}, {"train.epochs", {5, 10}}};
  // Keys are read in sorted order: train.epochs (2 values) first, then train.lr (3 values).
  MIL_EXPECT_THROW_WITH(
      parse_sweep(j, "z.json"),
      "z.json: zip: lists must have equal lengths, but 'train.epochs' has 2 values "
      "and 'train.lr' has 3");
}

TEST(Sweep, RejectsAKeyVariedOnTwoAxesAndZipValuesNamingTheEntry) {
  json both = grid_sweep();
  both["zip"] = {{"train.lr", {1e-4}}};
  MIL_EXPECT_THROW_WITH(parse_sweep(both, "b.json"),
                        "key 'train.lr' is varied by both grid key 'train.lr' and zip");
  json bad = grid_sweep();
  bad["grid"] = json::object();
  bad["zip"] = {{"train.epochs", {5, 0}}};
  MIL_EXPECT_THROW_WITH(parse_sweep(bad, "b.json"), "zip key 'train.epochs' (entry 1) = 0");
  MIL_EXPECT_THROW_WITH(parse_sweep(bad, "b.json"), "epochs must be >= 1");
}

TEST(Sweep, RandomDrawsFollowTheDocumentedMappingOfTheSeededEngine) {
  // std::mt19937_64 seeded with 5489 (the standard's default) first returns 14514284786278117030
  // and 4620546740167642908, i.e. u = 0.78682095486780 and 0.25048034068803 after >> 11 and
  // * 2^-53. Keys are drawn in sorted order, so the dropout takes the first u:
  //   choice [0, 0.25, 0.5] -> index floor(0.7868 * 3) = 2 -> 0.5;
  //   log_uniform [1e-5, 1e-3] -> 1e-5 * 100^0.25048 = 3.16928e-05 -> 3.169e-05 (4 digits).
  const json random = {{"samples", 1},
                       {"seed", 5489},
                       {"space",
                        {{"train.lr", {{"log_uniform", {1e-5, 1e-3}}}},
                         {"model.options.dropout", {{"choice", {0, 0.25, 0.5}}}}}}};
  const std::vector<SweepPoint> points = sample_random(random);
  ASSERT_EQ(points.size(), 1u);
  ASSERT_EQ(points[0].size(), 2u);
  EXPECT_EQ(points[0][0].key, "model.options.dropout");
  EXPECT_EQ(points[0][0].value, 0.5);
  EXPECT_EQ(points[0][1].key, "train.lr");
  EXPECT_EQ(points[0][1].value.get<double>(), 3.169e-05);
  EXPECT_EQ(points[0][1].origin, "random key 'train.lr' (sample 0)");
}

TEST(Sweep, RandomSamplesAreDistinctInRangeAndReproducible) {
  json j = grid_sweep();
  j["datasets"] = {j["datasets"][0]};
  j["grid"] = json::object();
  j["seeds"] = {7u};
  j["folds"] = {0};
  j["random"] = {{"samples", 12},
                 {"seed", 3},
                 {"space",
                  {{"train.lr", {{"log_uniform", {1e-5, 1e-3}}}},
                   {"train.epochs", {{"int_uniform", {2, 4}}}},
                   {"model.options.dropout", {{"choice", {0, 0.25}}}}}}};
  const std::vector<JobSpec> jobs = expand(parse_sweep(j, "r.json"));
  ASSERT_EQ(jobs.size(), 12u);
  std::set<std::string> configs;
  std::set<int> epochs;
  for (const JobSpec& job : jobs) {
    configs.insert(job.config_id());
    epochs.insert(job.train.epochs);
    EXPECT_GE(job.train.lr, 1e-5);
    EXPECT_LE(job.train.lr, 1e-3);
    const double dropout = job.model.options.at("dropout").get<double>();
    EXPECT_TRUE(dropout == 0 || dropout == 0.25) << dropout;
  }
  EXPECT_EQ(configs.size(), 12u) << "every sample is a distinct configuration";
  EXPECT_EQ(epochs, (std::set<int>{2, 3, 4})) << "12 draws of 3 integers cover them all";
  const std::vector<JobSpec> again = expand(parse_sweep(j, "r.json"));
  for (std::size_t k = 0; k < jobs.size(); ++k) EXPECT_EQ(again[k].id(), jobs[k].id());
  j["random"]["seed"] = 4;
  EXPECT_NE(expand(parse_sweep(j, "r.json"))[0].id(), jobs[0].id());
}

TEST(Sweep, RandomRejectsSpacesTooSmallMissingSeedAndBadDistributions) {
  json j = grid_sweep();
  j["grid"] = json::object();
  j["random"] = {
      {"samples", 3}, {"seed", 1}, {"space", {{"model.options.dropout", {{"choice", {0, 0.25}}}}}}};
  MIL_EXPECT_THROW_WITH(parse_sweep(j, "r.json"), "only 2 distinct points");
  j["random"].erase("seed");
  MIL_EXPECT_THROW_WITH(parse_sweep(j, "r.json"), "random: 'seed' is required");
  j["random"] = {
      {"samples", 1}, {"seed", 1}, {"space", {{"train.lr", {{"log_uniform", {0, 1e-3}}}}}}};
  MIL_EXPECT_THROW_WITH(parse_sweep(j, "r.json"),
                        "random key 'train.lr': log_uniform needs low > 0");
  j["random"] = {{"samples", 1}, {"seed", 1}, {"space", {{"train.lr", {{"normal", {0, 1}}}}}}};
  MIL_EXPECT_THROW_WITH(parse_sweep(j, "r.json"), "expected one of");
  j["random"] = {{"samples", 1}, {"seed", 1}, {"space", {{"seed", {{"choice", {1, 2}}}}}}};
  MIL_EXPECT_THROW_WITH(parse_sweep(j, "r.json"), "random key 'seed': must start with dataset");
}

TEST(Sweep, YamlAndJsonFormsOfOneSweepGiveTheSameJobs) {
  testing::TempDir dir;
  const std::string json_path = write_text(dir / "g.json", grid_sweep().dump(2));
  const std::string yaml_path = write_text(dir / "g.yaml", R"(name: grid
datasets:
  - name: synth
    root: /data/synth
  - {name: musk1, kind: musk, root: /data/musk1}
models: [{name: abmil}]
train: {epochs: 3}
split:
  fold_count: 3
grid:
  train.lr: [1e-4, 2.0e-4]
  model.options.dropout: [0, 0.25, 0.5]
seeds: [7, 8]
)");
  const std::vector<JobSpec> from_json = expand(load_sweep(json_path));
  const std::vector<JobSpec> from_yaml = expand(load_sweep(yaml_path));
  ASSERT_EQ(from_yaml.size(), from_json.size());
  for (std::size_t k = 0; k < from_json.size(); ++k)
    EXPECT_EQ(from_yaml[k].id(), from_json[k].id());
}

TEST(Sweep, YamlUnknownKeysAndBadValuesNameTheFileAndLine) {
  testing::TempDir dir;
  const std::string path = write_text(dir / "typo.yaml", R"(name: typo
datasets:
  - name: synth
    root: /data/synth
  - name: musk1
    kind: musk
    rot: /data/musk1
models: [{name: abmil}]
)");
  MIL_EXPECT_THROW_WITH(load_sweep(path), path + ":7: datasets[1]: unknown key 'rot'");
  const std::string top = write_text(
      dir / "top.yaml", "name: x\ndatasets: [{name: a, root: /a}]\nmodels: [{}]\n\nsedes: [1]\n");
  MIL_EXPECT_THROW_WITH(load_sweep(top), top + ":5: unknown key 'sedes'");
  const std::string value = write_text(
      dir / "value.yaml",
      "name: x\ndatasets: [{name: a, root: /a}]\nmodels: [{}]\ngrid:\n  train.lr: [1e-4, -1]\n");
  MIL_EXPECT_THROW_WITH(load_sweep(value), value + ":5: grid key 'train.lr' = -1");
  const std::string zip = write_text(dir / "zip.yaml",
                                     "name: x\ndatasets: [{name: a, root: /a}]\nmodels: "
                                     "[{}]\nzip:\n  train.lr: [1e-4]\n  train.epochs: [1, 2]\n");
  MIL_EXPECT_THROW_WITH(
      load_sweep(zip),
      zip + ":5: zip: lists must have equal lengths");  // at train.lr, read after train.epochs
}

TEST(Sweep, JsonUnknownKeysNameTheLineToo) {
  testing::TempDir dir;
  json j = grid_sweep();
  j["train"]["epocs"] = 3;
  const std::string path = write_text(dir / "typo.json", j.dump(2));
  // dump(2) sorts keys: the line of "epocs" inside "train" is found by reading the text.
  std::ifstream in(path);
  std::string line;
  int number = 0, expected = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find("\"epocs\"") != std::string::npos) expected = number;
  }
  ASSERT_GT(expected, 0);
  MIL_EXPECT_THROW_WITH(load_sweep(path),
                        path + ":" + std::to_string(expected) + ": train: unknown key 'epocs'");
}

}  // namespace
}  // namespace mil::orch

namespace mil::orch {

TEST(SweepModelGrid, CrossesAModelsOwnGridOnlyForThatModel) {
  // The MHIM v2 README grid (3 x 2 x 3 = 18 points) beside a plain baseline that must not see its
  // keys.
  const json j = json::parse(R"({
    "name": "g", "datasets": [{"name": "d", "root": "/x"}],
    "models": [{"name": "abmil"},
               {"name": "mhim", "options": {"teacher_init": "baseline", "merge": true},
                "grid": {"model.options.mask_ratio_h": [0.01, 0.03, 0.05], "model.options.merge_ratio": [0.8, 0.9],
                         "model.options.merge_k": [1, 5, 10]}}],
    "split": {"fold_count": 2}})");
  const std::vector<JobSpec> jobs = expand(parse_sweep(j, "g.json"));
  ASSERT_EQ(jobs.size(), 2u * (1 + 18));
  std::set<std::string> mhim_points;
  for (const auto& job : jobs) {
    if (job.model.name == "abmil") {
      EXPECT_TRUE(job.model.options.empty()) << job.model.options.dump();
    } else {
      mhim_points.insert(job.model.options.dump());
      EXPECT_EQ(job.model.options.at("teacher_init"), "baseline");
    }
  }
  EXPECT_EQ(mhim_points.size(), 18u);
}

TEST(SweepModelGrid, RejectsAKeyInBothTheSweepGridAndAModelGrid) {
  const json j = json::parse(R"({
    "name": "g", "datasets": [{"name": "d", "root": "/x"}],
    "models": [{"name": "abmil", "grid": {"train.lr": [1e-4]}}],
    "grid": {"train.lr": [2e-4]}})");
  EXPECT_THROW(expand(parse_sweep(j, "g.json")), std::exception);
}

}  // namespace mil::orch

namespace mil::orch {

TEST(SweepRanks, AModelsRanksSetTrainRanksForItsJobsOnlyAndChangeTheirIdsOnly) {
  const json plain = json::parse(R"({
    "name": "r", "datasets": [{"name": "d", "root": "/x"}],
    "models": [{"name": "abmil"}, {"name": "transmil"}], "split": {"fold_count": 2}})");
  json grouped = plain;
  grouped["models"][1]["ranks"] = 2;
  const std::vector<JobSpec> before = expand(parse_sweep(plain, "r.json"));
  const std::vector<JobSpec> after = expand(parse_sweep(grouped, "r.json"));
  ASSERT_EQ(before.size(), 4u);
  ASSERT_EQ(after.size(), 4u);
  for (std::size_t k = 0; k < 4; ++k) {
    const bool transmil = after[k].model.name == "transmil";
    EXPECT_EQ(after[k].train.ranks, transmil ? 2 : 1);
    EXPECT_EQ(before[k].train.ranks, 1);
    // One-rank jobs keep the id they had before the field existed; R > 1 computes something else.
    if (transmil) {
      EXPECT_NE(after[k].id(), before[k].id());
    } else {
      EXPECT_EQ(after[k].id(), before[k].id());
    }
  }
}

TEST(SweepRanks, TrainRanksAndOverridesSetEveryJobAndTheModelsRanksWins) {
  testing::TempDir dir;
  const std::string path = write_text(dir / "r.json", R"({
    "name": "r", "datasets": [{"name": "d", "root": "/x"}],
    "models": [{"name": "abmil"}, {"name": "transmil"}], "split": {"fold_count": 2}})");
  for (const JobSpec& job :
       expand(load_sweep(path, {"train.ranks=3", "models.transmil.ranks=2"}))) {
    EXPECT_EQ(job.train.ranks, job.model.name == "transmil" ? 2 : 3) << job.model.name;
  }
  // A grid over ranks is just another swept key.
  const auto swept = expand(load_sweep(path, {"grid.train.ranks=[1,2]"}));
  EXPECT_EQ(swept.size(), 2u * 2u * 2u);
}

TEST(SweepRanks, OneRankIsNotWrittenSoPinnedIdsHoldAndOtherCountsRoundTrip) {
  // The spec of JobSpec.IdsOfSpecsWrittenBeforeNewFieldsAreUnchanged
  // (tests/mil/core/specs_test.cpp).
  JobSpec spec;
  spec.dataset = DatasetSpec{"synth-easy", "bags", "build/quickstart/data/synth-easy", 2, false};
  spec.model = ModelSpec{"abmil", {{"dropout", 0.0}}};
  spec.train.epochs = 20;
  spec.split.val_ratio = 0.2;
  spec.train.ranks = 1;
  EXPECT_FALSE(json(spec).at("train").contains("ranks"));
  EXPECT_EQ(spec.id(), "91bd5b3151c5776e");
  spec.train.ranks = 2;
  EXPECT_EQ(json(spec).at("train").at("ranks"), 2);
  EXPECT_EQ(json(spec).get<JobSpec>().train.ranks, 2);
  EXPECT_NE(spec.id(), "91bd5b3151c5776e");
  EXPECT_NE(spec.config_id(), JobSpec{}.config_id());
}

TEST(SweepRanks, RejectsRanksBelowOneNamingTheField) {
  const json base = json::parse(R"({
    "name": "r", "datasets": [{"name": "d", "root": "/x"}], "models": [{"name": "abmil"}]})");
  json model_zero = base;
  model_zero["models"][0]["ranks"] = 0;
  MIL_EXPECT_THROW_WITH(parse_sweep(model_zero, "r.json"),
                        "models[0].ranks: expected an integer >= 1");
  json model_text = base;
  model_text["models"][0]["ranks"] = "two";
  MIL_EXPECT_THROW_WITH(parse_sweep(model_text, "r.json"), "models[0].ranks");
  json train_zero = base;
  train_zero["train"] = {{"ranks", 0}};
  MIL_EXPECT_THROW_WITH(parse_sweep(train_zero, "r.json"), "train.ranks must be >= 1");
}

}  // namespace mil::orch
