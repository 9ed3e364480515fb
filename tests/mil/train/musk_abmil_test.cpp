// Real-data check: ABMIL on MUSK1 (Dietterich et al. 1997) over the 10 published folds of
// repetition 0 (komartom/MIDatasets.jl indices). Published ABMIL: 0.892 ± 0.040 accuracy (Ilse et
// al. 2018, Table 1).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "worker/job_runner.h"

namespace mil {

TEST(MuskAbmil, ReachesPublishedAccuracyRangeOverTenFolds) {
  const std::string root = std::string(MIL_SHARED_DATA_DIR) + "/musk1";
  if (!std::filesystem::exists(root + ".csv")) GTEST_SKIP() << "no shared MUSK data at " << root;
  JobSpec spec;
  spec.dataset = DatasetSpec{"musk1", "musk", root, 2, /*standardize=*/true};
  spec.model = ModelSpec{"abmil", {{"dropout", 0.25}}};
  spec.split.protocol = "file";
  spec.split.fold_count = 10;
  spec.split.repetition = 0;
  spec.train.epochs = 40;
  spec.train.lr = 5e-4;
  spec.train.weight_decay = 1e-4;
  spec.seed = 2021;
  worker::DatasetCache cache;
  double accuracy_sum = 0.0, auc_sum = 0.0;
  for (int fold = 0; fold < 10; ++fold) {
    spec.split.fold_index = fold;
    const JobResult result = worker::run_job(spec, {}, cache);
    ASSERT_TRUE(result.ok()) << result.error;
    accuracy_sum += result.metrics.at("test").at("accuracy").get<double>();
    auc_sum += result.metrics.at("test").at("auc").get<double>();
  }
  const double mean_accuracy = accuracy_sum / 10.0;
  std::printf(
      "MUSK1 ABMIL, repetition 0, 10 folds: mean test accuracy %.3f, mean test AUC %.3f "
      "(published ABMIL accuracy 0.892 ± 0.040)\n",
      mean_accuracy, auc_sum / 10.0);
  EXPECT_GE(mean_accuracy, 0.80);
}

}  // namespace mil
