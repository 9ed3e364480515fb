#include "mil/train/trainer.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "mil/data/splits.h"
#include "mil/eval/metrics.h"
#include "mil/models/mil_model.h"
#include "mil/models/model_registry.h"
#include "mil/synthetic/generator.h"
#include "tests/support/expect_throw.h"
#include "tests/support/temp_dir.h"

namespace mil {
namespace {
struct Fixture {
  testing::TempDir dir;
  BagDataset data;
  Split split;
  explicit Fixture(double val_ratio = 0.0) {
    SyntheticOptions o;
    o.bag_count = 90;
    o.feature_dim = 16;
    o.min_instances = 10;
    o.max_instances = 40;
    write_synthetic_benchmark(dir / "s", o);
    data = load_dataset(DatasetSpec{"s", "bags", dir / "s", 2, false});
    split =
        make_split(data.labels(), stratified_fold_assignment(data.labels(), 3, 1), 0, val_ratio, 1);
  }
};

TrainSpec short_spec(int epochs) {
  TrainSpec spec;
  spec.epochs = epochs;
  spec.lr = 5e-4;
  return spec;
}

std::shared_ptr<MilModelImpl> fresh_model(const Fixture& f, std::uint64_t seed) {
  seed_torch(seed);
  return make_model(ModelSpec{"abmil", {{"dropout", 0.25}}}, f.data.feature_dim, 2);
}

std::shared_ptr<MilModelImpl> trained(const Fixture& f, std::uint64_t seed, int epochs) {
  auto model = fresh_model(f, seed);
  fit(*model, short_spec(epochs), f.data.bags, f.split.train, f.split.val, seed);
  return model;
}

void expect_same_weights(MilModelImpl& a, MilModelImpl& b) {
  const auto pa = a.parameters(), pb = b.parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i)
    EXPECT_TRUE(at::equal(pa[i], pb[i])) << "parameter " << i;
}
}  // namespace

TEST(LearningRate, ReproducesTheReferenceCosineVector) {
  // Computed with the reference's timm cosine: lr 2e-4, 200 epochs, lr_min 1e-7, stepped per epoch.
  TrainSpec spec;
  spec.epochs = 200;
  const std::vector<std::pair<int, double>> expected{
      {0, 2e-4}, {50, 1.707253e-4}, {100, 1.000500e-4}, {150, 2.937468e-5}, {199, 1.123306e-7}};
  for (const auto& [epoch, lr] : expected)
    EXPECT_NEAR(learning_rate_at(spec, epoch), lr, lr * 1e-6) << epoch;
}

TEST(LearningRate, WarmsUpLinearlyAndStepsByAFifthAtHalfway) {
  TrainSpec spec;
  spec.epochs = 10;
  spec.warmup_epochs = 4;
  spec.warmup_lr = 1e-6;
  EXPECT_DOUBLE_EQ(learning_rate_at(spec, 0), 1e-6);
  EXPECT_DOUBLE_EQ(learning_rate_at(spec, 2), 1e-6 + 2 * (2e-4 - 1e-6) / 4);
  spec.warmup_epochs = 0;
  spec.schedule = "step";
  EXPECT_DOUBLE_EQ(learning_rate_at(spec, 4), 2e-4);
  EXPECT_DOUBLE_EQ(learning_rate_at(spec, 5), 2e-4 * 0.2);
  spec.schedule = "const";
  EXPECT_DOUBLE_EQ(learning_rate_at(spec, 9), 2e-4);
}

TEST(EarlyStopping, FiresAfterPatienceOnlyPastTheStopEpoch) {
  EarlyStopping stopper(/*patience=*/2, /*stop_epoch=*/3);
  EXPECT_FALSE(stopper.update(0, 0.5));
  EXPECT_FALSE(stopper.update(1, 0.4));  // counter 1
  EXPECT_FALSE(stopper.update(2, 0.3));  // counter 2, but epoch 2 <= stop_epoch
  EXPECT_FALSE(stopper.update(3, 0.5));  // equal to best resets the counter
  EXPECT_EQ(stopper.counter(), 0);
  EXPECT_FALSE(stopper.update(4, 0.1));  // counter 1
  EXPECT_TRUE(stopper.update(5, 0.2));   // counter 2 and epoch 5 > 3
}

TEST(Trainer, LearnsThePlantedSignalWellAboveChance) {
  Fixture f;
  auto model = trained(f, 11, 15);
  const Predictions p = predict(*model, f.data.bags, f.split.test);
  const auto metrics = classification_metrics(p.probabilities, p.labels);
  EXPECT_GT(metrics.at("auc"), 0.9);
  EXPECT_GT(metrics.at("accuracy"), 0.8);
}

TEST(Trainer, LearnsUnderBf16AutocastAndKeepsFp32Weights) {
  Fixture f;
  auto model = fresh_model(f, 11);
  TrainSpec spec = short_spec(15);
  spec.precision = "bf16";
  const FitResult result = fit(*model, spec, f.data.bags, f.split.train, {}, 11);
  for (const auto& r : result.history) EXPECT_TRUE(std::isfinite(r.mean_loss));
  for (const auto& p : model->parameters())
    EXPECT_EQ(p.scalar_type(), at::kFloat) << "autocast must not recast weights";
  const Predictions p = predict(*model, f.data.bags, f.split.test);
  EXPECT_GT(classification_metrics(p.probabilities, p.labels).at("auc"), 0.9);
}

TEST(Trainer, GivesBitIdenticalWeightsForTheSameSeed) {
  Fixture f;
  auto a = trained(f, 5, 2), b = trained(f, 5, 2), c = trained(f, 6, 2);
  expect_same_weights(*a, *b);
  bool any_difference_with_other_seed = false;
  const auto pa = a->parameters(), pc = c->parameters();
  for (std::size_t i = 0; i < pa.size(); ++i)
    any_difference_with_other_seed |= !at::equal(pa[i], pc[i]);
  EXPECT_TRUE(any_difference_with_other_seed);
}

TEST(Trainer, GivesBitIdenticalWeightsAtTwoThreadsToo) {
  Fixture f;
  const int previous = at::get_num_threads();
  at::set_num_threads(2);
  auto a = trained(f, 5, 2), b = trained(f, 5, 2);
  at::set_num_threads(previous);
  expect_same_weights(*a, *b);
}

TEST(Trainer, RecordsOneEpochRecordPerEpochWithTheScheduledLr) {
  Fixture f;
  auto model = fresh_model(f, 1);
  TrainSpec spec = short_spec(3);
  int callbacks = 0;
  FitOptions options;
  options.on_epoch = [&](const EpochRecord&) { ++callbacks; };
  const FitResult result = fit(*model, spec, f.data.bags, f.split.train, {}, 1, options);
  ASSERT_EQ(result.history.size(), 3u);
  EXPECT_EQ(callbacks, 3);
  for (const auto& r : result.history) {
    EXPECT_TRUE(std::isfinite(r.mean_loss));
    EXPECT_EQ(r.skipped_steps, 0);
    // timm cosine over 3 epochs from 5e-4 to 1e-7: 1e-7 + (5e-4 - 1e-7)(1 + cos(pi e / 3)) / 2.
    const double scheduled[] = {5e-4, 1e-7 + 0.75 * (5e-4 - 1e-7), 1e-7 + 0.25 * (5e-4 - 1e-7)};
    EXPECT_NEAR(r.lr, scheduled[r.epoch], 1e-15) << "epoch " << r.epoch;
    EXPECT_TRUE(r.val.empty());
  }
  EXPECT_LT(result.history.back().mean_loss, result.history.front().mean_loss);
  EXPECT_EQ(result.best_epoch, -1) << "no validation split, so no selection";
}

TEST(Trainer, KeepsTheWeightsOfTheBestValidationEpoch) {
  Fixture f(/*val_ratio=*/0.3);
  auto model = fresh_model(f, 3);
  const FitResult result = fit(*model, short_spec(6), f.data.bags, f.split.train, f.split.val, 3);
  ASSERT_EQ(result.selection_metric, "auc");
  // The best epoch is the first one with the strictly largest validation AUC.
  int expected_best = -1;
  double best = 0.0;
  for (const auto& r : result.history) {
    if (r.val.at("auc") > best) best = r.val.at("auc"), expected_best = r.epoch;
  }
  EXPECT_EQ(result.best_epoch, expected_best);
  EXPECT_DOUBLE_EQ(result.best_score, best);
  const Predictions p = predict(*model, f.data.bags, f.split.val);
  EXPECT_DOUBLE_EQ(classification_metrics(p.probabilities, p.labels).at("auc"), best)
      << "the returned model must hold the best epoch's weights, not the last";
}

TEST(Trainer, StopsExactlyWhereTheEarlyStoppingRuleSays) {
  Fixture f(/*val_ratio=*/0.3);
  auto model = fresh_model(f, 4);
  TrainSpec spec = short_spec(30);
  spec.patience = 1;
  spec.stop_epoch = 1;
  spec.lr = 1e-2;  // large steps make the validation AUC fall at some point
  const FitResult result = fit(*model, spec, f.data.bags, f.split.train, f.split.val, 4);
  ASSERT_TRUE(result.stopped_early);
  // Replaying the recorded scores through the rule must stop at the last recorded epoch, not
  // before.
  EarlyStopping replay(spec.patience, spec.stop_epoch);
  for (std::size_t i = 0; i < result.history.size(); ++i) {
    const bool stop = replay.update(result.history[i].epoch, result.history[i].val.at("auc"));
    EXPECT_EQ(stop, i + 1 == result.history.size()) << "epoch " << i;
  }
}

TEST(Trainer, ResumesFromAnEpochCheckpointWithBitIdenticalWeights) {
  Fixture f(/*val_ratio=*/0.3);
  const TrainSpec spec = short_spec(4);
  auto straight = fresh_model(f, 9);
  const FitResult uninterrupted = fit(*straight, spec, f.data.bags, f.split.train, f.split.val, 9);

  std::atomic<bool> stop{false};
  FitOptions options;
  options.checkpoint_path = f.dir / "ckpt.pt";
  options.run_fingerprint = "job-a";
  options.stop_requested = &stop;
  options.on_epoch = [&](const EpochRecord& r) { stop = r.epoch == 1; };
  auto first = fresh_model(f, 9);
  const FitResult part = fit(*first, spec, f.data.bags, f.split.train, f.split.val, 9, options);
  EXPECT_TRUE(part.interrupted);
  EXPECT_EQ(part.history.size(), 2u);

  // A new process would start from scratch: other seed, other weights, then the checkpoint restores
  // all.
  stop = false;
  options.on_epoch = nullptr;
  auto resumed = fresh_model(f, 12345);
  const FitResult rest = fit(*resumed, spec, f.data.bags, f.split.train, f.split.val, 9, options);
  EXPECT_FALSE(rest.interrupted);
  EXPECT_EQ(rest.resumed_from_epoch, 2);
  EXPECT_EQ(rest.history.size(), 4u);
  EXPECT_EQ(rest.best_epoch, uninterrupted.best_epoch);
  expect_same_weights(*straight, *resumed);
}

TEST(Trainer, ResumesFromTheMiddleOfAnEpochWithBitIdenticalWeights) {
  Fixture f;
  TrainSpec spec = short_spec(2);
  spec.accumulation = 3;
  auto straight = fresh_model(f, 21);
  fit(*straight, spec, f.data.bags, f.split.train, {}, 21);

  std::atomic<bool> stop{true};  // stops at the first accumulation boundary
  FitOptions options;
  options.checkpoint_path = f.dir / "ckpt.pt";
  options.run_fingerprint = "job-b";
  options.stop_requested = &stop;
  auto first = fresh_model(f, 21);
  const FitResult part = fit(*first, spec, f.data.bags, f.split.train, {}, 21, options);
  EXPECT_TRUE(part.interrupted);
  EXPECT_TRUE(part.history.empty());
  stop = false;
  auto resumed = fresh_model(f, 777);
  fit(*resumed, spec, f.data.bags, f.split.train, {}, 21, options);
  expect_same_weights(*straight, *resumed);
}

TEST(Trainer, RefusesACheckpointOfAnotherRun) {
  Fixture f;
  FitOptions options;
  options.checkpoint_path = f.dir / "ckpt.pt";
  options.run_fingerprint = "job-a";
  auto model = fresh_model(f, 1);
  fit(*model, short_spec(1), f.data.bags, f.split.train, {}, 1, options);
  ASSERT_TRUE(std::filesystem::exists(options.checkpoint_path));
  options.run_fingerprint = "job-b";
  MIL_EXPECT_THROW_WITH(fit(*model, short_spec(1), f.data.bags, f.split.train, {}, 1, options),
                        "belongs to run 'job-a', not 'job-b'");
}

}  // namespace mil
