#include "mil/core/specs.h"

#include <gtest/gtest.h>

#include "tests/support/expect_throw.h"

namespace mil {
namespace {
JobSpec sample_spec() {
  JobSpec spec;
  spec.dataset = DatasetSpec{"synth", "bags", "/data/synth", 2, false};
  spec.model.name = "abmil";
  spec.model.options = {{"dropout", 0.25}};
  spec.split.fold_count = 5;
  spec.split.fold_index = 3;
  spec.seed = 2022;
  return spec;
}
}  // namespace

TEST(JobSpec, RoundTripsThroughJsonUnchanged) {
  const JobSpec spec = sample_spec();
  const JobSpec back = nlohmann::json(spec).get<JobSpec>();
  EXPECT_EQ(nlohmann::json(back), nlohmann::json(spec));
  EXPECT_EQ(back.id(), spec.id());
}

TEST(JobSpec, IdIsAContentHashThatChangesWithAnyField) {
  const JobSpec spec = sample_spec();
  EXPECT_EQ(spec.id().size(), 16u);
  EXPECT_EQ(spec.id(), sample_spec().id());
  JobSpec other = sample_spec();
  other.train.lr = 1e-4;
  EXPECT_NE(other.id(), spec.id());
  other = sample_spec();
  other.model.options["dropout"] = 0.0;
  EXPECT_NE(other.id(), spec.id());
}

TEST(JobSpec, MethodLabelIsHashedOnlyWhenSet) {
  const JobSpec plain = sample_spec();
  EXPECT_FALSE(nlohmann::json(plain).at("model").contains("method"))
      << "unset: ids of older specs stay";
  JobSpec labelled = sample_spec();
  labelled.model.method = "abmil+mhim";
  EXPECT_NE(labelled.id(), plain.id());
  EXPECT_NE(labelled.config_id(), plain.config_id());
  EXPECT_EQ(nlohmann::json(labelled).get<JobSpec>().model.method, "abmil+mhim");
  nlohmann::json empty = labelled;
  empty["model"]["method"] = "";
  MIL_EXPECT_THROW_WITH(empty.get<JobSpec>(), "method: must not be empty");
}

TEST(JobSpec, ConfigIdIgnoresOnlyWhatReplicatesAConfiguration) {
  JobSpec a = sample_spec(), b = sample_spec();
  b.split.fold_index = 0;
  b.seed = 7;
  b.split.split_seed = 99;
  b.split.repetition = 3;
  EXPECT_EQ(a.config_id(), b.config_id());
  EXPECT_NE(a.id(), b.id());
  EXPECT_NE(a.replicate_key(), b.replicate_key());
  b = sample_spec();
  b.split.fold_index = 0;
  EXPECT_EQ(a.replicate_key(), b.replicate_key()) << "folds of one replicate share the key";
  b.split.fold_count = 10;
  EXPECT_NE(a.config_id(), b.config_id());
}

TEST(JobSpec, RejectsUnknownKeysNamingThem) {
  nlohmann::json j = sample_spec();
  j["train"]["learning_rate"] = 0.1;
  MIL_EXPECT_THROW_WITH(j.get<JobSpec>(), "unknown key 'learning_rate'");
}

TEST(JobSpec, RejectsFoldIndexOutsideFoldCount) {
  nlohmann::json j = sample_spec();
  j["split"]["fold_index"] = 5;
  MIL_EXPECT_THROW_WITH(j.get<JobSpec>(), "fold_index 5 is outside [0, 5)");
}

TEST(JobSpec, RejectsNumbersThatWouldBeSilentlyConverted) {
  nlohmann::json j = sample_spec();
  j["train"]["epochs"] = 2.7;
  MIL_EXPECT_THROW_WITH(j.get<JobSpec>(), "train.epochs: expected an integer, got 2.7");
  j = sample_spec();
  j["split"]["split_seed"] = -1;
  MIL_EXPECT_THROW_WITH(j.get<JobSpec>(),
                        "split.split_seed: expected a non-negative integer, got -1");
  j = sample_spec();
  j["dataset"]["standardize"] = 1;
  MIL_EXPECT_THROW_WITH(j.get<JobSpec>(), "dataset.standardize: expected true or false, got 1");
}

TEST(JobResult, RoundTripsAndRejectsUnknownStatus) {
  JobResult r;
  r.spec = sample_spec();
  r.job_id = r.spec.id();
  r.config_id = r.spec.config_id();
  r.status = "ok";
  r.metrics = {{"test", {{"auc", 0.9}}}};
  const JobResult back = nlohmann::json(r).get<JobResult>();
  EXPECT_EQ(nlohmann::json(back), nlohmann::json(r));
  nlohmann::json bad = r;
  bad["status"] = "maybe";
  MIL_EXPECT_THROW_WITH(bad.get<JobResult>(), "status 'maybe'");
}

}  // namespace mil

namespace mil {

TEST(JobSpec, IdsOfSpecsWrittenBeforeNewFieldsAreUnchanged) {
  // Job 0 of sweeps/quickstart.json (now .yaml, same ids); its id was printed by `mhim sweep
  // --dry-run` at commit 2c70181, before split.dir, the legacy protocol, packed features and
  // ram_budget_gb existed.
  JobSpec spec;
  spec.dataset = DatasetSpec{"synth-easy", "bags", "build/quickstart/data/synth-easy", 2, false};
  spec.model = ModelSpec{"abmil", {{"dropout", 0.0}}};
  spec.train.epochs = 20;
  spec.train.lr = 2e-4;
  spec.train.weight_decay = 1e-5;
  spec.split.val_ratio = 0.2;
  EXPECT_EQ(spec.id(), "91bd5b3151c5776e");
}

}  // namespace mil

namespace mil {

TEST(JobSpec, NewFieldsAreWrittenOnlyWhenSetAndTheRamBudgetIsNeverHashed) {
  JobSpec spec = sample_spec();
  const nlohmann::json plain = spec;
  EXPECT_FALSE(plain.at("split").contains("dir"));
  EXPECT_FALSE(plain.at("dataset").contains("ram_budget_gb"));
  const std::string id = spec.id();
  spec.dataset.ram_budget_gb = 64;
  EXPECT_EQ(nlohmann::json(spec).at("dataset").at("ram_budget_gb").get<double>(), 64.0);
  EXPECT_EQ(spec.id(), id) << "a budget decides whether a job runs, not what it computes";
  EXPECT_EQ(nlohmann::json(spec).get<JobSpec>().dataset.ram_budget_gb, 64.0);
  spec.split.dir = "splits";
  EXPECT_NE(spec.id(), id);
  EXPECT_EQ(nlohmann::json(spec).get<JobSpec>().split.dir, "splits");
}

TEST(JobSpec, LegacyProtocolRefusesAValidationRatio) {
  nlohmann::json j = sample_spec();
  j["split"]["protocol"] = "legacy";
  EXPECT_EQ(j.get<JobSpec>().split.protocol, "legacy");
  j["split"]["val_ratio"] = 0.1;
  MIL_EXPECT_THROW_WITH(j.get<JobSpec>(), "val_ratio must be 0 with protocol legacy");
}

}  // namespace mil
