#include "orchestrator/schedule/cost_model.h"

#include <gtest/gtest.h>

#include "orchestrator/schedule/cost_table.h"

namespace mil::orch {
namespace {

/// 100 bags of 50 instances, the largest 200.
DatasetSize hundred_bags(const DatasetSpec&) {
  DatasetSize size;
  size.bags = 100;
  size.instances_per_bag = 50;
  size.largest_bag = 200;
  return size;
}

InstanceCost row(const std::string& model, const std::string& variant, double train_s,
                 double eval_s) {
  InstanceCost r;
  r.model = model;
  r.variant = variant;
  r.device = "cpu";
  r.precision = "fp32";
  r.train_s = train_s;
  r.eval_s = eval_s;
  r.bytes_per_instance = 1000;
  return r;
}

JobSpec ten_epoch_job() {
  JobSpec job;
  job.dataset.name = "d";
  job.model.name = "abmil";
  job.train.epochs = 10;
  job.train.early_stopping = false;
  job.split.fold_count = 5;
  job.split.val_ratio = 0.25;
  return job;
}

TEST(CostModel, ExpectedEpochsAreTheMidpointOfTheEarlyStoppingWindow) {
  TrainSpec train;
  train.epochs = 200;
  train.stop_epoch = 100;
  SplitSpec validated;
  validated.val_ratio = 0.15;
  // Stopping may fire after epoch index 100, i.e. once 102 epochs ran: midpoint of [102, 200].
  EXPECT_DOUBLE_EQ(expected_epochs(train, validated), 151);
  EXPECT_DOUBLE_EQ(expected_epochs(train, SplitSpec{}), 200) << "no validation: no early stopping";
  train.epochs = 50;
  EXPECT_DOUBLE_EQ(expected_epochs(train, validated), 50) << "stop_epoch beyond the last epoch";
  train.epochs = 200;
  train.early_stopping = false;
  EXPECT_DOUBLE_EQ(expected_epochs(train, validated), 200);
}

TEST(CostModel, WorkSplitsTheBagsOutsideTheTestFoldIntoTrainingAndValidation) {
  const auto work = job_work(ten_epoch_job(), hundred_bags({}));
  ASSERT_TRUE(work.has_value());
  // 5,000 instances; 4/5 outside the test fold = 4,000; a quarter of those validate.
  EXPECT_DOUBLE_EQ(work->train_instances, 3000);
  EXPECT_DOUBLE_EQ(work->val_instances, 1000);
  EXPECT_DOUBLE_EQ(work->final_instances, 5000);
  EXPECT_DOUBLE_EQ(work->epochs, 10);
  EXPECT_DOUBLE_EQ(work->largest_bag, 200);
  EXPECT_FALSE(job_work(ten_epoch_job(), DatasetSize{}).has_value());
}

TEST(CostModel, CostKeyNamesTheMhimAggregatorWithAttnAsDefault) {
  ModelSpec model;
  model.name = "transmil";
  EXPECT_EQ(cost_key(model), "transmil");
  model.name = "mhim";
  EXPECT_EQ(cost_key(model), "mhim:attn");
  model.options["baseline"] = "selfattn";
  EXPECT_EQ(cost_key(model), "mhim:selfattn");
  model.name = "mhim_pure";
  EXPECT_EQ(cost_key(model), "mhim_pure:selfattn");
}

TEST(CostModel, PredictsOverheadPlusEpochsOfTrainingAndValidationPlusTheFinalEvaluation) {
  RunContext context;
  context.threads = 2;
  context.overhead_s = 1;
  const CostModel model({row("abmil", "", 0.001, 0.0004)}, context, hundred_bags);
  const JobPrediction p = model.predict(ten_epoch_job());
  ASSERT_TRUE(p.known) << p.basis;
  // 1 + (10 x (3,000 x 0.001 + 1,000 x 0.0004) + 5,000 x 0.0004) / 2 threads = 1 + (34 + 2) / 2.
  EXPECT_DOUBLE_EQ(p.seconds, 19);
  EXPECT_DOUBLE_EQ(p.device_bytes, kJobFixedDeviceBytes + 200 * 1000);
}

TEST(CostModel, PicksTheRowOfTheJobsAggregatorDeviceAndPrecision) {
  RunContext cuda;
  cuda.device = "cuda";
  cuda.overhead_s = 0;
  InstanceCost gpu = row("mhim", "selfattn", 0.0001, 0);
  gpu.device = "cuda";
  const CostModel model({row("mhim", "selfattn", 0.01, 0), row("mhim", "attn", 0.002, 0), gpu},
                        cuda, hundred_bags);
  JobSpec job = ten_epoch_job();
  job.model.name = "mhim";
  job.model.options["baseline"] = "selfattn";
  // 10 epochs x 3,000 training instances x 1e-4 s; a GPU row ignores the host's threads.
  EXPECT_NEAR(model.predict(job).seconds, 3.0, 1e-12);
  job.train.precision = "bf16";
  const JobPrediction unmeasured = model.predict(job);
  EXPECT_FALSE(unmeasured.known);
  EXPECT_DOUBLE_EQ(unmeasured.seconds, kUnknownJobSeconds);
  EXPECT_NE(unmeasured.basis.find("mhim:selfattn on cuda bf16"), std::string::npos)
      << unmeasured.basis;
}

TEST(CostModel, WithoutACudaRowAGpuJobDerivesFromTheCpuRowAtAnAssumedSpeedUpAndSaysSo) {
  RunContext cuda;
  cuda.device = "cuda";
  cuda.threads = 8;  // host threads do not speed up a GPU job
  cuda.overhead_s = 0;
  cuda.cuda_speedup = 50;
  const CostModel model({row("abmil", "", 0.001, 0.0004)}, cuda, hundred_bags);
  const JobPrediction p = model.predict(ten_epoch_job());
  ASSERT_TRUE(p.known);
  EXPECT_NEAR(p.seconds, 36.0 / 50, 1e-12);  // (10 x 3.4 + 2) s on one CPU thread, 50x faster
  EXPECT_NE(p.basis.find("assumed"), std::string::npos) << p.basis;
  cuda.cuda_speedup = 0;
  EXPECT_FALSE(CostModel({row("abmil", "", 0.001, 0.0004)}, cuda, hundred_bags)
                   .predict(ten_epoch_job())
                   .known);
}

TEST(CostModel, AJobOnADatasetOfUnknownSizeIsUnknownAndSaysWhich) {
  const CostModel model({row("abmil", "", 0.001, 0.001)}, RunContext{},
                        [](const DatasetSpec&) { return DatasetSize{}; });
  const JobPrediction p = model.predict(ten_epoch_job());
  EXPECT_FALSE(p.known);
  EXPECT_NE(p.basis.find("'d'"), std::string::npos) << p.basis;
}

TEST(CostModel, ProbesEachDistinctDatasetOnce) {
  int probes = 0;
  const CostModel model({row("abmil", "", 0.001, 0.001)}, RunContext{}, [&](const DatasetSpec& s) {
    ++probes;
    return hundred_bags(s);
  });
  JobSpec job = ten_epoch_job();
  model.predict(job);
  job.split.fold_index = 3;
  model.predict(job);
  job.dataset.name = "other";
  model.predict(job);
  EXPECT_EQ(probes, 2);
}

TEST(CostTable, RowsAreTheCatalogueFactorTimesAbmilsMeasuredRate) {
  const std::vector<InstanceCost> table = builtin_cost_table();
  const auto find = [&](const std::string& model, const std::string& variant,
                        const std::string& precision) -> const InstanceCost* {
    for (const InstanceCost& r : table) {
      if (r.model == model && r.variant == variant && r.precision == precision) return &r;
    }
    return nullptr;
  };
  // abmil: 0.871 s for an epoch of 4 x 4,710 instances; transmil's factor is 11.52.
  const double abmil_s = 0.871 / 18840;
  const InstanceCost* transmil = find("transmil", "", "fp32");
  ASSERT_NE(transmil, nullptr);
  EXPECT_NEAR(transmil->train_s, 11.52 * abmil_s, 1e-15);
  EXPECT_NEAR(transmil->eval_s, 0.5 * 11.52 * abmil_s, 1e-15);
  EXPECT_NEAR(transmil->bytes_per_instance, 11.52 * (33.5 * 1048576 / 4000 + 4096), 1e-6);
  EXPECT_TRUE(transmil->measured);
  // MHIM validates student and teacher: two forwards of mhim_pure (0.84) on the same aggregator.
  const InstanceCost* mhim = find("mhim", "attn", "fp32");
  ASSERT_NE(mhim, nullptr);
  EXPECT_NEAR(mhim->train_s, 1.66 * abmil_s, 1e-15);
  EXPECT_NEAR(mhim->eval_s, 2 * 0.5 * 0.84 * abmil_s, 1e-15);
  const InstanceCost* selfattn = find("mhim", "selfattn", "fp32");
  ASSERT_NE(selfattn, nullptr);
  EXPECT_NEAR(selfattn->train_s, (1.66 + 11.52 - 1) * abmil_s, 1e-15);
  const InstanceCost* bf16 = find("mhim", "selfattn", "bf16");
  ASSERT_NE(bf16, nullptr);
  EXPECT_FALSE(bf16->measured) << "bf16 is assumed as fp32, not measured";
  EXPECT_DOUBLE_EQ(bf16->train_s, selfattn->train_s);
  for (const InstanceCost& r : table) EXPECT_EQ(r.device, "cpu") << r.model;
}

}  // namespace
}  // namespace mil::orch
