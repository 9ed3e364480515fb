#include "orchestrator/schedule/cost_estimate.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace mil::orch {
namespace {

void write_text(const std::string& path, const std::string& text) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path) << text;
}

TEST(CostEstimate, ProbeCountsLabelRowsFeatureBytesAndSyntheticInstances) {
  testing::TempDir dir;
  write_text(dir / "d/labels.csv", "slide_id,label\na,0\nb,1\n\nc,1\n");  // header + 3 rows
  write_text(dir / "d/pt_files/a.pt", std::string(100, 'x'));
  write_text(dir / "d/pt_files/b.pt", std::string(50, 'x'));
  write_text(dir / "d/synthetic.json", R"({"min_instances": 10, "max_instances": 30})");
  DatasetSpec spec;
  spec.root = dir / "d";
  const DatasetSize size = probe_dataset(spec);
  ASSERT_TRUE(size.bags.has_value()) << size.error;
  EXPECT_EQ(*size.bags, 3);
  EXPECT_EQ(size.feature_bytes.value_or(-1), 150);
  EXPECT_EQ(size.instances_per_bag.value_or(-1), 20);  // uniform in [10, 30]

  write_text(dir / "h/labels.csv", "a,0\nb,1\n");  // headerless: every row is a bag
  spec.root = dir / "h";
  const DatasetSize headerless = probe_dataset(spec);
  EXPECT_EQ(headerless.bags.value_or(-1), 2);
  EXPECT_FALSE(headerless.instances_per_bag.has_value());
  EXPECT_FALSE(headerless.feature_bytes.has_value());

  spec.root = dir / "missing";
  EXPECT_FALSE(probe_dataset(spec).bags.has_value());
  EXPECT_NE(probe_dataset(spec).error.find("labels.csv"), std::string::npos);
}

TEST(CostEstimate, ProbeCountsMuskInstancesAndSurvivalCases) {
  testing::TempDir dir;
  write_text(dir / "musk1.csv",
             "bag_id,bag_label,instance_index,f0\n0,1,0,1\n0,1,1,2\n0,1,2,3\n1,0,0,4\n");
  DatasetSpec musk;
  musk.kind = "musk";
  musk.root = dir / "musk1";
  const DatasetSize m = probe_dataset(musk);
  EXPECT_EQ(m.bags.value_or(-1), 2);
  EXPECT_EQ(m.instances_per_bag.value_or(-1), 2);  // 4 instances / 2 bags

  write_text(dir / "s/survival.csv",
             "Study,ID,Event,Status,WSI\nx,c1,3,1,c1_a\nx,c1,3,1,c1_b\nx,c2,5,0,c2_a\n");
  DatasetSpec surv;
  surv.kind = "survival";
  surv.root = dir / "s";
  EXPECT_EQ(probe_dataset(surv).bags.value_or(-1), 2) << "a case's slides form one bag";
}

TEST(CostEstimate, ProbeReadsAStandInsCountsAndBoundsItsLargestBag) {
  testing::TempDir dir;
  write_text(dir / "d/labels.csv", "a,0\nb,1\nc,0\nd,1\n");
  write_text(
      dir / "d/synthetic.json",
      R"({"options": {"feature_dim": 64}, "counts": {"bags": 4, "slides": 4, "instances": 1000}})");
  DatasetSpec spec;
  spec.root = dir / "d";
  const DatasetSize size = probe_dataset(spec);
  EXPECT_EQ(size.instances_per_bag.value_or(-1), 250);
  EXPECT_EQ(size.largest_bag.value_or(-1), 1000) << "stand-in bags are clamped at 4x the mean";
  EXPECT_EQ(size.feature_dim, 64);
}

TEST(CostEstimate, ProbeCountsInstancesFromFeatureFileSizesAtAnAssumedWidth) {
  testing::TempDir dir;
  write_text(dir / "d/labels.csv", "a,0\nb,1\n");
  write_text(dir / "d/pt_files/a.pt", std::string(4096 * 10, 'x'));  // 10 instances at D = 1024
  write_text(dir / "d/pt_files/b.pt", std::string(4096 * 30, 'x'));
  DatasetSpec spec;
  spec.root = dir / "d";
  const DatasetSize size = probe_dataset(spec);
  EXPECT_EQ(size.instances_per_bag.value_or(-1), 20);
  EXPECT_EQ(size.largest_bag.value_or(-1), 30);
  EXPECT_NE(size.instances_source.find("assumed"), std::string::npos) << size.instances_source;
}

TEST(CostEstimate, ProbeReadsExactCountsFromAPackedCachesIndexWithoutItsFeatures) {
  testing::TempDir dir;
  write_text(dir / "d/labels.csv", "a,0\nb,1\n");
  const std::string index =
      R"({"slides": [{"id": "a", "instances": 7}, {"id": "b", "instances": 13}]})";
  std::string header(128, '\0');
  header.replace(0, 8, std::string("MILPACK\0", 8));
  const auto put = [&](int at, std::uint64_t value) { std::memcpy(&header[at], &value, 8); };
  put(16, 512);           // D
  put(32, 128);           // index offset
  put(40, index.size());  // index bytes
  write_text(dir / "d/packed.milpack", header + index);
  DatasetSpec spec;
  spec.root = dir / "d";
  const DatasetSize size = probe_dataset(spec);
  EXPECT_EQ(size.instances_per_bag.value_or(-1), 10);
  EXPECT_EQ(size.largest_bag.value_or(-1), 13);
  EXPECT_EQ(size.feature_dim, 512);
}

TEST(CostEstimate, SumsEpochsTimesNonTestBagsTimesInstancesTimesModelFactor) {
  JobSpec job;
  job.dataset.name = "d";
  job.model.name = "abmil";  // factor 1 by definition
  job.train.epochs = 10;
  job.split.fold_count = 5;
  std::vector<JobSpec> jobs = {job, job};
  jobs[1].split.fold_index = 1;
  JobSpec other = job;
  other.dataset.name = "unknown";
  jobs.push_back(other);
  const auto probe = [](const DatasetSpec& spec) {
    DatasetSize size;
    if (spec.name == "d") size.bags = 100, size.instances_per_bag = 50;
    return size;
  };
  const CostEstimate e = estimate_cost(jobs, probe);
  ASSERT_EQ(e.lines.size(), 2u);
  EXPECT_EQ(e.lines[0].jobs, 2);
  // Per job: 10 epochs x (100 x 4/5) bags x 1 = 800 bag-epochs; x 50 instances = 40,000.
  EXPECT_NEAR(e.lines[0].bag_epochs.value(), 2 * 800.0, 1e-9);
  EXPECT_NEAR(e.lines[0].instance_epochs.value(), 2 * 40000.0, 1e-6);
  EXPECT_FALSE(e.lines[1].bag_epochs.has_value());
  EXPECT_FALSE(e.complete);
  EXPECT_NEAR(e.instance_epochs, 80000.0, 1e-6);
  const std::string text = format_cost(e);
  EXPECT_NE(text.find("an estimate"), std::string::npos) << text;
  EXPECT_NE(text.find("80k instance-epochs"), std::string::npos) << text;
}

TEST(CostEstimate, ModelFactorsAreRelativeToAbmil) {
  bool known = false;
  EXPECT_EQ(model_cost_factor("abmil", &known), 1.0);
  EXPECT_TRUE(known);
  EXPECT_EQ(model_cost_factor("future_model", &known), 1.0);
  EXPECT_FALSE(known);
}

TEST(CostEstimate, MhimFactorsAddWhatMhimCostsBeyondAbmilToTheAggregatorsOwnModel) {
  // Catalogue factors: abmil 1, transmil 11.52, dsmil 1.58, mhim 1.66, mhim_pure 0.84 (on attn).
  bool known = false;
  EXPECT_DOUBLE_EQ(model_cost_factor("transmil", &known), 11.52);
  EXPECT_DOUBLE_EQ(model_cost_factor("mhim", &known, "attn"), 1.66);
  EXPECT_DOUBLE_EQ(model_cost_factor("mhim", &known), 1.66) << "attn by default";
  EXPECT_DOUBLE_EQ(model_cost_factor("mhim", &known, "selfattn"), 1.66 + 11.52 - 1);
  EXPECT_TRUE(known);
  EXPECT_DOUBLE_EQ(model_cost_factor("mhim_pure", &known, "dsmil"), 0.84 + 1.58 - 1);
  EXPECT_DOUBLE_EQ(model_cost_factor("transmil", &known, "dsmil"), 11.52) << "not an MHIM model";
  model_cost_factor("mhim", &known, "no_such_aggregator");
  EXPECT_FALSE(known);
  ModelSpec mhim;
  mhim.name = "mhim";
  EXPECT_EQ(model_aggregator(mhim), "attn");
  mhim.options["baseline"] = "dsmil";
  EXPECT_EQ(model_aggregator(mhim), "dsmil");
  mhim.name = "abmil";
  EXPECT_EQ(model_aggregator(mhim), "") << "only the MHIM models have an aggregator";
}

}  // namespace
}  // namespace mil::orch
