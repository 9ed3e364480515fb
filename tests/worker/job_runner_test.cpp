#include "worker/job_runner.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>

#include <filesystem>
#include <fstream>

#include "mil/core/mhim_jobs.h"
#include "mil/core/sha256.h"
#include "mil/data/split_protocol.h"
#include "mil/models/state_dict.h"
#include "mil/synthetic/generator.h"
#include "tests/support/temp_dir.h"

namespace mil::worker {
namespace {
JobSpec synthetic_job(const std::string& root) {
  JobSpec spec;
  spec.dataset = DatasetSpec{"synth", "bags", root, 2, false};
  spec.split.fold_count = 3;
  spec.split.fold_index = 1;
  spec.split.val_ratio = 0.25;
  spec.train.epochs = 2;
  return spec;
}
void write_small(const std::string& root) {
  SyntheticOptions o;
  o.bag_count = 24;
  o.feature_dim = 8;
  o.min_instances = 4;
  o.max_instances = 12;
  write_synthetic_benchmark(root, o);
}
}  // namespace

TEST(JobRunner, ReportsMetricsHashesAndTheResolvedSpec) {
  testing::TempDir dir;
  write_small(dir / "s");
  const JobSpec spec = synthetic_job(dir / "s");
  DatasetCache cache;
  const JobResult r = run_job(spec, {}, cache);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.job_id, spec.id());
  EXPECT_EQ(r.config_id, spec.config_id());
  EXPECT_EQ(nlohmann::json(r.spec), nlohmann::json(spec));
  EXPECT_EQ(r.history.size(), 2u);
  // 24 bags, 3 folds -> 8 test bags; 16 training bags, 8 per class -> floor(8 * 0.25) = 2 per class
  // in val.
  EXPECT_EQ(r.metrics.at("test").at("bags").get<int>(), 8);
  EXPECT_EQ(r.metrics.at("val").at("bags").get<int>(), 4);
  EXPECT_EQ(r.metrics.at("train").at("bags").get<int>(), 12);
  const double auc = r.metrics.at("test").at("auc").get<double>();
  EXPECT_GE(auc, 0.0);
  EXPECT_LE(auc, 1.0);
  EXPECT_EQ(r.inputs.at("labels").at("sha256").get<std::string>(),
            sha256_file(dir / "s/labels.csv"));
  EXPECT_EQ(r.inputs.at("features").at("files").get<int>(), 24);
}

TEST(JobRunner, WritesTheResolvedSpecAsConfigJsonInItsWorkDir) {
  testing::TempDir dir;
  write_small(dir / "s");
  std::filesystem::resize_file(dir.path() / "s/pt_files/slide_0005.pt",
                               10);  // fails, after config.json
  const JobSpec spec = synthetic_job(dir / "s");
  RunOptions options;
  options.work_dir = dir / ("work/" + spec.id());
  DatasetCache cache;
  EXPECT_EQ(run_job(spec, options, cache).status, "failed");
  std::ifstream in(options.work_dir + "/config.json");
  ASSERT_TRUE(in) << "config.json is written before the job can fail";
  const nlohmann::json config = nlohmann::json::parse(in);
  EXPECT_EQ(config.at("job_id"), spec.id());
  EXPECT_EQ(config.at("config_id"), spec.config_id());
  EXPECT_EQ(config.at("spec").get<JobSpec>().id(), spec.id())
      << "the spec reproduces the job exactly";
}

// As the reference's main.py: an MHIM job's best checkpoint holds the student and the teacher at
// the student's best epoch, as the reference's {"model", "teacher", "epoch"} dict; a baseline job's is a
// plain state_dict.
TEST(JobRunner, AnMhimJobsBestCheckpointHoldsTheStudentAndTheTeacherLikeTheReferences) {
  testing::TempDir dir;
  write_small(dir / "s");
  JobSpec baseline = synthetic_job(dir / "s");
  JobSpec mhim = baseline;
  mhim.model.name = "mhim";
  mhim.model.options = {
      {"teacher_init", "random"}, {"mask_ratio_h", 0.1}, {"merge", true}, {"merge_k", 2}};
  DatasetCache cache;
  for (const JobSpec* spec : {&baseline, &mhim}) {
    RunOptions options;
    options.work_dir = dir / ("work/" + spec->id());
    const JobResult r = run_job(*spec, options, cache);
    ASSERT_TRUE(r.ok()) << r.error;
    const std::string best = options.work_dir + "/model_best.pt";
    const StateDict student = read_state_dict(best);
    ASSERT_FALSE(student.empty());
    if (spec == &baseline) {
      EXPECT_THROW(read_state_dict_part(best, "model"), std::runtime_error) << "a plain state_dict";
      continue;
    }
    const StateDict model_part = read_state_dict_part(best, "model");
    ASSERT_EQ(model_part.size(), student.size());
    for (std::size_t i = 0; i < student.size(); ++i)
      EXPECT_TRUE(model_part[i].second.equal(student[i].second));
    EXPECT_TRUE(std::any_of(model_part.begin(), model_part.end(), [](const auto& e) {
      return e.first == "merge.global_q";
    })) << "the reference's alias of the GRN query, which its strict load needs";
    const StateDict teacher = read_state_dict_part(best, "teacher");
    EXPECT_EQ(teacher.size(), read_state_dict(options.work_dir + "/teacher_best.pt").size());
    EXPECT_FALSE(teacher.empty());
  }
}

// teacher_epoch "last": the baseline job also writes its weights after its last epoch, and the MHIM
// job's teacher is read from that file instead of the best validation epoch's.
TEST(JobRunner, ABaselineWritesItsLastWeightsAndTeacherEpochLastTakesThem) {
  testing::TempDir dir;
  write_small(dir / "s");
  JobSpec mhim = synthetic_job(dir / "s");
  mhim.train.epochs = 4;
  mhim.model.name = "mhim";
  mhim.model.options = {{"teacher_init", "baseline"}, {"teacher_epoch", "last"},
                        {"mask_ratio_h", 0.1}};
  const JobSpec baseline = *mhim_teacher_job(mhim);
  DatasetCache cache;
  const auto run_in_work = [&](const JobSpec& spec) {
    RunOptions options;
    options.work_dir = dir / ("work/" + spec.id());
    return run_job(spec, options, cache);
  };
  const JobResult base = run_in_work(baseline);
  ASSERT_TRUE(base.ok()) << base.error;
  const std::string folder = dir / ("work/" + baseline.id());
  const StateDict best = read_state_dict(folder + "/model_best.pt");
  const StateDict last = read_state_dict(folder + "/model_last.pt");
  ASSERT_EQ(best.size(), last.size());
  bool same = true;
  for (std::size_t i = 0; i < best.size(); ++i) {
    ASSERT_EQ(best[i].first, last[i].first);
    same = same && best[i].second.equal(last[i].second);
  }
  // The two files hold the same weights exactly when the best validation epoch is the last one.
  const int best_epoch = base.metrics.at("selection").at("best_epoch").get<int>();
  EXPECT_EQ(same, best_epoch == mhim.train.epochs - 1) << "best epoch " << best_epoch;
  std::printf("baseline's best epoch: %d of %d\n", best_epoch, mhim.train.epochs);

  const JobResult student = run_in_work(mhim);
  ASSERT_TRUE(student.ok()) << student.error;
  const nlohmann::json& teacher = student.inputs.at("teacher_checkpoint");
  EXPECT_EQ(teacher.at("path").get<std::string>(), folder + "/model_last.pt");
  EXPECT_EQ(teacher.at("sha256").get<std::string>(), sha256_file(folder + "/model_last.pt"));
  // Only baselines write it: an MHIM job is never a teacher.
  EXPECT_FALSE(std::filesystem::exists(dir / ("work/" + mhim.id() + "/model_last.pt")));
}

TEST(JobRunner, TurnsABrokenFeatureFileIntoAFailedResultNamingStageAndFile) {
  testing::TempDir dir;
  write_small(dir / "s");
  std::filesystem::resize_file(dir.path() / "s/pt_files/slide_0005.pt", 10);
  DatasetCache cache;
  const JobResult r = run_job(synthetic_job(dir / "s"), {}, cache);
  EXPECT_EQ(r.status, "failed");
  EXPECT_NE(r.error.find("loading data"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("slide_0005.pt"), std::string::npos) << r.error;
  EXPECT_TRUE(r.runtime.contains("finished_at"));
}

TEST(JobRunner, FailsCleanlyOnAnUnknownModel) {
  testing::TempDir dir;
  write_small(dir / "s");
  JobSpec spec = synthetic_job(dir / "s");
  spec.model.name = "nope";
  DatasetCache cache;
  const JobResult r = run_job(spec, {}, cache);
  EXPECT_EQ(r.status, "failed");
  EXPECT_NE(r.error.find("building model: unknown model 'nope'"), std::string::npos) << r.error;
}

TEST(DatasetCache, LoadsADatasetOnceAcrossFolds) {
  testing::TempDir dir;
  write_small(dir / "s");
  DatasetCache cache;
  const DatasetSpec spec{"synth", "bags", dir / "s", 2, false};
  const auto first = cache.get(spec, 0);
  std::filesystem::remove_all(dir.path() / "s");  // a second load would now fail
  EXPECT_EQ(cache.get(spec, 0).get(), first.get());
}

}  // namespace mil::worker

namespace mil::worker {

TEST(JobRunner, TrainsSurvivalWithTheNllAndSelectsOnCIndex) {
  testing::TempDir dir;
  SyntheticOptions o;
  o.task = "survival";
  o.bag_count = 150;
  o.feature_dim = 16;
  o.min_instances = 10;
  o.max_instances = 40;
  // Survival labels carry less information per case than classes, so the witnesses are made
  // plainer: with hazard ratio 10 between two groups, a perfect group score reaches a C-index of
  // about 0.7.
  o.signal_strength = 5.0;
  o.witness_fraction_min = 0.2;
  o.witness_fraction_max = 0.4;
  write_synthetic_benchmark(dir / "s", o);
  JobSpec spec;
  spec.dataset = DatasetSpec{"surv", "survival", dir / "s", 4, false};
  spec.split.fold_count = 3;
  spec.split.val_ratio = 0.2;
  spec.train.epochs = 15;
  spec.train.lr = 5e-4;
  // One fold's 50 test cases give a C-index that varies a lot between training seeds (seeds 1-4
  // give 0.70-0.78 on this data, seed 2021 gives 0.46: an early best epoch on 20 validation cases);
  // the median over three seeds is the property that holds.
  DatasetCache cache;
  std::vector<double> c_indices;
  for (std::uint64_t seed : {2021, 1, 2}) {
    spec.seed = seed;
    const JobResult r = run_job(spec, {}, cache);
    ASSERT_TRUE(r.ok()) << r.error;
    EXPECT_EQ(r.metrics.at("selection").at("metric"), "c_index");
    EXPECT_EQ(r.metrics.at("selection").at("loss"), "nll_surv");
    EXPECT_TRUE(r.metrics.at("test_bootstrap").contains("c_index"));
    c_indices.push_back(r.metrics.at("test").at("c_index").get<double>());
    std::printf("synthetic survival, seed %llu: test C-index %.3f\n",
                static_cast<unsigned long long>(seed), c_indices.back());
  }
  std::sort(c_indices.begin(), c_indices.end());
  EXPECT_GT(c_indices[1], 0.6) << "cases with witnesses have 10x the hazard";
}

}  // namespace mil::worker

namespace mil::worker {

TEST(JobRunner, WritesItsSplitToTheWorkDirHashesItAndFlagsLegacyRuns) {
  testing::TempDir dir;
  write_small(dir / "s");
  JobSpec spec = synthetic_job(dir / "s");
  spec.split.val_ratio = 0.0;
  spec.split.protocol = "legacy";
  RunOptions options;
  options.work_dir = dir / "work";
  DatasetCache cache;
  const JobResult r = run_job(spec, options, cache);
  ASSERT_TRUE(r.ok()) << r.error;
  EXPECT_EQ(r.metrics.at("protocol_flags"), nlohmann::json::array({"val_equals_test"}));
  std::ifstream in(dir / "work/split.json");
  const nlohmann::json record = nlohmann::json::parse(in);
  EXPECT_EQ(record.at("val"), record.at("test"));
  EXPECT_EQ(record.at("test").size(), 8u);  // 24 bags, 3 folds
  const nlohmann::json parts = {
      {"train", record.at("train")}, {"val", record.at("val")}, {"test", record.at("test")}};
  EXPECT_EQ(r.inputs.at("split").at("sha256"), sha256_hex(parts.dump()));
  EXPECT_EQ(r.inputs.at("split").at("path"), dir / "work/split.json");
  EXPECT_EQ(r.metrics.at("val").at("bags").get<int>(), 8) << "legacy validates on the test fold";

  spec.split.protocol = "kfold";
  const JobResult plain = run_job(spec, {}, cache);
  ASSERT_TRUE(plain.ok()) << plain.error;
  EXPECT_FALSE(plain.metrics.contains("protocol_flags"));
  EXPECT_FALSE(plain.metrics.contains("val"));
}

TEST(JobRunner, FailsAJobWhoseSplitFileLeaksTestIntoValidation) {
  testing::TempDir dir;
  write_small(dir / "s");
  std::filesystem::create_directories(dir.path() / "s/splits");
  for (int k = 0; k < 3; ++k) {
    std::ofstream(dir / ("s/splits/splits_" + std::to_string(k) + ".csv"))
        << "train,val,test\nslide_0000,slide_0001,slide_0001\nslide_0002,,\n";
  }
  JobSpec spec = synthetic_job(dir / "s");
  spec.split.protocol = "file";
  spec.split.dir = "splits";
  DatasetCache cache;
  const JobResult r = run_job(spec, {}, cache);
  EXPECT_EQ(r.status, "failed");
  EXPECT_NE(r.error.find("splitting: split.protocol 'file'"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("validation equals test"), std::string::npos) << r.error;
}

}  // namespace mil::worker
