#include "mil/data/bag_dataset.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "mil/data/feature_io.h"
#include "mil/synthetic/generator.h"
#include "tests/support/expect_throw.h"
#include "tests/support/temp_dir.h"

namespace mil {
namespace {
SyntheticOptions small_options() {
  SyntheticOptions o;
  o.bag_count = 12;
  o.feature_dim = 8;
  o.min_instances = 3;
  o.max_instances = 9;
  return o;
}
DatasetSpec bags_spec(const std::string& root) {
  return DatasetSpec{"synth", "bags", root, 2, false};
}
}  // namespace

TEST(FeatureIo, RoundTripsATensorThroughTorchSaveFormat) {
  testing::TempDir dir;
  const at::Tensor x = at::arange(12, at::kFloat).reshape({3, 4});
  write_feature_file(dir / "x.pt", x);
  EXPECT_TRUE(at::equal(read_feature_file(dir / "x.pt"), x));
}

TEST(FeatureIo, RejectsNonArchivesNamingTheFile) {
  testing::TempDir dir;
  std::ofstream(dir / "bad.pt") << "not a zip";
  MIL_EXPECT_THROW_WITH(read_feature_file(dir / "bad.pt"), "bad.pt");
}

TEST(SyntheticBenchmark, LoadsWithTheRequestedShapeAndLabels) {
  testing::TempDir dir;
  const auto o = small_options();
  write_synthetic_benchmark(dir / "synth", o);
  const BagDataset data = load_dataset(bags_spec(dir / "synth"));
  ASSERT_EQ(data.bags.size(), 12u);
  EXPECT_EQ(data.feature_dim, 8);
  const auto labels = data.labels();
  EXPECT_EQ(std::count(labels.begin(), labels.end(), 1), 6);  // positive_fraction 0.5
  for (const Bag& bag : data.bags) {
    EXPECT_GE(bag.features.size(0), 3);
    EXPECT_LE(bag.features.size(0), 9);
  }
}

TEST(SyntheticBenchmark, IsReproducibleFromItsSeedAndHashedAsSuch) {
  testing::TempDir dir;
  auto o = small_options();
  write_synthetic_benchmark(dir / "a", o);
  write_synthetic_benchmark(dir / "b", o);
  o.seed = 8;
  write_synthetic_benchmark(dir / "c", o);
  const auto hash = [&](const std::string& root) {
    return load_dataset(bags_spec(root)).inputs.at("features").at("sha256").get<std::string>();
  };
  EXPECT_EQ(hash(dir / "a"), hash(dir / "b"));
  EXPECT_NE(hash(dir / "a"), hash(dir / "c"));
}

TEST(SyntheticBenchmark, PlantsWitnessesOnlyInPositiveBags) {
  // The mean projection on the hidden direction is larger in positive bags; recover the direction
  // as the difference of class means and check it separates the bags' max projections perfectly.
  testing::TempDir dir;
  SyntheticOptions o = small_options();
  o.bag_count = 40;
  o.feature_dim = 16;
  o.signal_strength = 6.0;
  write_synthetic_benchmark(dir / "s", o);
  const BagDataset data = load_dataset(bags_spec(dir / "s"));
  std::vector<at::Tensor> pos, neg;
  for (const Bag& b : data.bags) (b.label ? pos : neg).push_back(b.features);
  const at::Tensor direction = at::cat(pos).mean(0) - at::cat(neg).mean(0);
  double min_pos = 1e9, max_neg = -1e9;
  for (const Bag& b : data.bags) {
    const double top = b.features.matmul(direction).max().item<double>();
    if (b.label)
      min_pos = std::min(min_pos, top);
    else
      max_neg = std::max(max_neg, top);
  }
  EXPECT_GT(min_pos, max_neg);
}

TEST(SyntheticBenchmark, EasyWitnessesAreAddedToAShareOfPositiveBagsOfOtherwiseIdenticalData) {
  // The hard/easy-witness setting MHIM is built for: the same options plus easy witnesses give the
  // same bags, except that some positive bags gain exactly easy_witnesses instances shifted by
  // easy_signal along the direction.
  testing::TempDir dir;
  SyntheticOptions o = small_options();
  o.bag_count = 60;
  o.min_instances = 10;
  o.max_instances = 30;
  o.signal_strength = 1.0;
  write_synthetic_benchmark(dir / "hard", o);
  o.easy_witnesses = 2;
  o.easy_signal = 40.0;
  o.easy_bag_fraction = 0.5;
  write_synthetic_benchmark(dir / "easy", o);
  const BagDataset hard = load_dataset(bags_spec(dir / "hard"));
  const BagDataset easy = load_dataset(bags_spec(dir / "easy"));
  ASSERT_EQ(hard.bags.size(), easy.bags.size());
  int with_easy = 0, positives = 0;
  for (std::size_t i = 0; i < hard.bags.size(); ++i) {
    ASSERT_EQ(hard.bags[i].label, easy.bags[i].label);
    ASSERT_TRUE(hard.bags[i].features.sizes().equals(easy.bags[i].features.sizes()));
    const at::Tensor shift =
        (easy.bags[i].features - hard.bags[i].features).norm(2, 1);  // per instance
    const int64_t changed = shift.gt(1e-3).sum().item<int64_t>();
    if (hard.bags[i].label == 0) {
      EXPECT_EQ(changed, 0) << "negative bag " << i;
      continue;
    }
    ++positives;
    EXPECT_TRUE(changed == 0 || changed == 2) << "positive bag " << i << " changed " << changed;
    if (changed == 2) {
      ++with_easy;
      EXPECT_NEAR(shift.max().item<double>(), 40.0, 1e-3);
    }
  }
  // Binomial(30, 0.5): 15 expected, 6 sigma = 16.4, so any share strictly inside (0, 30) would pass
  // that; ask for the middle third at least.
  EXPECT_EQ(positives, 30);
  EXPECT_GE(with_easy, 5);
  EXPECT_LE(with_easy, 25);
}

TEST(BagDataset, FailsNamingTheMissingFeatureFile) {
  testing::TempDir dir;
  write_synthetic_benchmark(dir / "s", small_options());
  std::filesystem::remove(dir.path() / "s" / "pt_files" / "slide_0003.pt");
  MIL_EXPECT_THROW_WITH(load_dataset(bags_spec(dir / "s")), "slide_0003.pt");
}

TEST(BagDataset, FailsNamingFileAndLineOfABadLabel) {
  testing::TempDir dir;
  write_synthetic_benchmark(dir / "s", small_options());
  {
    std::ofstream csv(dir / "s/labels.csv");
    csv << "slide_id,label\nslide_0000,0\nslide_0001,x\n";
  }
  MIL_EXPECT_THROW_WITH(load_dataset(bags_spec(dir / "s")), "labels.csv:3: 'x' is not an integer");
  {
    std::ofstream csv(dir / "s/labels.csv");
    csv << "slide_id,label\nslide_0000,2\n";
  }
  MIL_EXPECT_THROW_WITH(load_dataset(bags_spec(dir / "s")),
                        "labels.csv:2: label 2 is outside [0, 2)");
}

TEST(BagDataset, StandardizesWithStatisticsOfTheGivenBagsOnly) {
  std::vector<Bag> bags{{"a", at::tensor({1.f, 3.f}).reshape({2, 1}), 0},
                        {"b", at::tensor({10.f}).reshape({1, 1}), 1}};
  const auto out = standardize_with(bags, {0});  // mean 2, population std 1
  EXPECT_TRUE(at::allclose(out[0].features, at::tensor({-1.f, 1.f}).reshape({2, 1})));
  EXPECT_FLOAT_EQ(out[1].features.item<float>(), 8.f);
}

TEST(MuskDataset, MatchesThePublishedCountsWhenShared) {
  const std::string root = std::string(MIL_SHARED_DATA_DIR) + "/musk1";
  if (!std::filesystem::exists(root + ".csv")) GTEST_SKIP() << "no shared MUSK data at " << root;
  const BagDataset data = load_dataset(DatasetSpec{"musk1", "musk", root, 2, false}, 0);
  EXPECT_EQ(data.bags.size(), 92u);
  EXPECT_EQ(data.feature_dim, 166);
  int64_t instances = 0;
  for (const Bag& b : data.bags) instances += b.features.size(0);
  EXPECT_EQ(instances, 476);
  const auto labels = data.labels();
  EXPECT_EQ(std::count(labels.begin(), labels.end(), 1), 47);
  EXPECT_EQ(data.file_fold_count, 10);
}

}  // namespace mil
