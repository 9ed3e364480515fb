#include "mil/trainer.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "mil/metrics.h"
#include "mil/models/mil_model.h"
#include "mil/splits.h"
#include "mil/synthetic.h"
#include "tests/support/temp_dir.h"

namespace mil {
namespace {
struct Fixture {
  testing::TempDir dir;
  BagDataset data;
  Split split;
  Fixture() {
    SyntheticOptions o;
    o.bag_count = 90;
    o.feature_dim = 16;
    o.min_instances = 10;
    o.max_instances = 40;
    o.signal_strength = 3.0;
    write_synthetic_benchmark(dir / "s", o);
    data = load_dataset(DatasetSpec{"s", "bags", dir / "s", 2, false});
    split = make_split(data.labels(), stratified_fold_assignment(data.labels(), 3, 1), 0, 0.0, 1);
  }
};

std::shared_ptr<MilModelImpl> trained(const Fixture& f, std::uint64_t seed, int epochs) {
  seed_torch(seed);
  auto model = make_model(ModelSpec{"abmil", {{"dropout", 0.25}}}, f.data.feature_dim, 2);
  TrainSpec spec;
  spec.epochs = epochs;
  spec.lr = 5e-4;
  fit(*model, spec, f.data.bags, f.split.train, seed);
  return model;
}
}  // namespace

TEST(Trainer, LearnsThePlantedSignalWellAboveChance) {
  Fixture f;
  auto model = trained(f, 11, 15);
  const Predictions p = predict(*model, f.data.bags, f.split.test);
  const auto metrics = classification_metrics(p.probabilities, p.labels);
  EXPECT_GT(metrics.at("auc"), 0.9);
  EXPECT_GT(metrics.at("accuracy"), 0.8);
}

TEST(Trainer, GivesBitIdenticalWeightsForTheSameSeed) {
  Fixture f;
  auto a = trained(f, 5, 2), b = trained(f, 5, 2), c = trained(f, 6, 2);
  const auto pa = a->parameters(), pb = b->parameters(), pc = c->parameters();
  bool any_difference_with_other_seed = false;
  for (std::size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(at::equal(pa[i], pb[i])) << "parameter " << i;
    any_difference_with_other_seed |= !at::equal(pa[i], pc[i]);
  }
  EXPECT_TRUE(any_difference_with_other_seed);
}

TEST(Trainer, GivesBitIdenticalWeightsAtTwoThreadsToo) {
  Fixture f;
  const int previous = at::get_num_threads();
  at::set_num_threads(2);
  auto a = trained(f, 5, 2), b = trained(f, 5, 2);
  at::set_num_threads(previous);
  const auto pa = a->parameters(), pb = b->parameters();
  for (std::size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(at::equal(pa[i], pb[i])) << "parameter " << i;
}

TEST(Trainer, RecordsOneEpochRecordPerEpochWithFiniteLoss) {
  Fixture f;
  seed_torch(1);
  auto model = make_model(ModelSpec{}, f.data.feature_dim, 2);
  TrainSpec spec;
  spec.epochs = 3;
  int callbacks = 0;
  const auto history = fit(*model, spec, f.data.bags, f.split.train, 1, [&](const EpochRecord&) { ++callbacks; });
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(callbacks, 3);
  for (const auto& r : history) {
    EXPECT_TRUE(std::isfinite(r.mean_loss));
    EXPECT_EQ(r.skipped_steps, 0);
    EXPECT_DOUBLE_EQ(r.lr, spec.lr);
  }
  EXPECT_LT(history.back().mean_loss, history.front().mean_loss);
}

}  // namespace mil
