#include "mil/train/checkpoint.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>
#include <torch/optim/adam.h>
#include <torch/serialize/output-archive.h>

#include <filesystem>
#include <mutex>
#include <random>
#include <sstream>

#include <nlohmann/json.hpp>

#include "mil/models/mil_model.h"
#include "mil/models/model_registry.h"
#include "tests/support/expect_throw.h"
#include "tests/support/temp_dir.h"

namespace mil {
namespace {

constexpr int64_t kFeatureDim = 4;  ///< Width of the tiny bags the models below train on.

std::shared_ptr<MilModelImpl> tiny_model(std::uint64_t seed) {
  seed_torch(seed);
  return make_model(ModelSpec{"abmil", {{"dropout", 0.0}}}, kFeatureDim, 2);
}

torch::optim::Adam adam_for(MilModelImpl& model) {
  return torch::optim::Adam(model.parameters(), torch::optim::AdamOptions(1e-2));
}

/// One optimizer step on a fixed bag of class 1, so that Adam has moments to checkpoint.
void take_step(MilModelImpl& model, torch::optim::Optimizer& optimizer) {
  model.eval();
  const at::Tensor bag = at::arange(3 * kFeatureDim, at::kFloat).reshape({3, kFeatureDim}) / 10;
  const at::Tensor logits = model.forward(bag).logits;
  const at::Tensor loss = -logits.log_softmax(1)[0][1];
  optimizer.zero_grad();
  loss.backward();
  optimizer.step();
}

void expect_same_weights(MilModelImpl& a, MilModelImpl& b) {
  const auto pa = a.parameters(), pb = b.parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (std::size_t i = 0; i < pa.size(); ++i)
    EXPECT_TRUE(at::equal(pa[i], pb[i])) << "parameter " << i;
}

TrainingState sample_state() {
  TrainingState state;
  state.epoch = 3;
  state.position = 7;
  state.order = {4, 1, 3};
  state.order_rng.seed(42);
  state.loss_sum = 1.5;
  state.finite_steps = 6;
  state.skipped_steps = 1;
  state.instances = 123;
  state.train_seconds = 2.25;
  state.best_epoch = 2;
  state.best_score = 0.75;
  state.stopper_counter = 1;
  state.stopper_best = 0.5;
  state.selection_metric = "auc";
  state.teacher_best_epoch = 1;
  state.teacher_best_score = 0.625;
  EpochRecord record;
  record.epoch = 2;
  record.mean_loss = 0.25;
  record.lr = 2e-4;
  record.val = {{"auc", 0.75}};
  record.improved = true;
  state.history = {record};
  state.best_model = {{"w", at::tensor({1.0, 2.0})}};
  state.teacher_best = {{"t", at::tensor({5.0})}};
  state.teacher_at_best = {{"t", at::tensor({6.0})}};
  return state;
}

}  // namespace

TEST(Checkpoint, RestoresTheLoopStateItWrote) {
  testing::TempDir dir;
  auto model = tiny_model(1);
  auto optimizer = adam_for(*model);
  write_checkpoint(dir / "c.pt", "job-a", sample_state(), *model, optimizer, {});

  auto other = tiny_model(2);
  auto other_optimizer = adam_for(*other);
  const TrainingState s = read_checkpoint(dir / "c.pt", "job-a", *other, other_optimizer, {});
  EXPECT_EQ(s.epoch, 3);
  EXPECT_EQ(s.position, 7u);
  EXPECT_EQ(s.order, (std::vector<int>{4, 1, 3}));
  EXPECT_EQ(s.loss_sum, 1.5);
  EXPECT_EQ(s.finite_steps, 6);
  EXPECT_EQ(s.skipped_steps, 1);
  EXPECT_EQ(s.instances, 123);
  EXPECT_EQ(s.train_seconds, 2.25);
  EXPECT_EQ(s.best_epoch, 2);
  EXPECT_EQ(s.best_score, 0.75);
  EXPECT_FALSE(s.stopped_early);
  EXPECT_EQ(s.stopper_counter, 1);
  EXPECT_EQ(s.stopper_best, 0.5);
  EXPECT_EQ(s.selection_metric, "auc");
  EXPECT_EQ(s.teacher_best_epoch, 1);
  EXPECT_EQ(s.teacher_best_score, 0.625);
  ASSERT_EQ(s.history.size(), 1u);
  EXPECT_EQ(s.history[0].epoch, 2);
  EXPECT_EQ(s.history[0].mean_loss, 0.25);
  EXPECT_EQ(s.history[0].val.at("auc"), 0.75);
  EXPECT_TRUE(s.history[0].improved);
}

TEST(Checkpoint, RestoresTheBestWeightsOfStudentAndTeacher) {
  testing::TempDir dir;
  auto model = tiny_model(1);
  auto optimizer = adam_for(*model);
  write_checkpoint(dir / "c.pt", "job-a", sample_state(), *model, optimizer, {});
  const TrainingState s = read_checkpoint(dir / "c.pt", "job-a", *model, optimizer, {});
  ASSERT_EQ(s.best_model.size(), 1u);
  EXPECT_EQ(s.best_model[0].first, "w");
  EXPECT_TRUE(at::equal(s.best_model[0].second, at::tensor({1.0, 2.0})));
  ASSERT_EQ(s.teacher_best.size(), 1u);
  EXPECT_TRUE(at::equal(s.teacher_best[0].second, at::tensor({5.0})));
  ASSERT_EQ(s.teacher_at_best.size(), 1u);
  EXPECT_TRUE(at::equal(s.teacher_at_best[0].second, at::tensor({6.0})));
}

TEST(Checkpoint, ContinuesTheShuffleGeneratorWhereItStood) {
  testing::TempDir dir;
  auto model = tiny_model(1);
  auto optimizer = adam_for(*model);
  TrainingState state = sample_state();
  state.order_rng.discard(5);
  write_checkpoint(dir / "c.pt", "job-a", state, *model, optimizer, {});
  TrainingState s = read_checkpoint(dir / "c.pt", "job-a", *model, optimizer, {});
  std::mt19937_64 expected(42);
  expected.discard(5);  // the draws made before writing: the next one must match
  EXPECT_EQ(s.order_rng(), expected());
}

TEST(Checkpoint, RestoresModelOptimizerAndTorchGeneratorSoTrainingContinuesIdentically) {
  testing::TempDir dir;
  auto model = tiny_model(1);
  auto optimizer = adam_for(*model);
  take_step(*model, optimizer);
  write_checkpoint(dir / "c.pt", "job-a", sample_state(), *model, optimizer, {});
  const at::Tensor draw_after_writing = at::rand({4});
  take_step(*model, optimizer);

  auto resumed = tiny_model(2);  // other initial weights, and an optimizer without moments
  auto resumed_optimizer = adam_for(*resumed);
  read_checkpoint(dir / "c.pt", "job-a", *resumed, resumed_optimizer, {});
  EXPECT_TRUE(at::equal(at::rand({4}), draw_after_writing));
  take_step(*resumed, resumed_optimizer);
  expect_same_weights(*model, *resumed);
}

TEST(Checkpoint, CopiesTheObjectivesTensorsBackInPlace) {
  testing::TempDir dir;
  auto model = tiny_model(1);
  auto optimizer = adam_for(*model);
  const StateDict written{{"teacher.a", at::tensor({3.0f, 4.0f})},
                          {"teacher.b", at::tensor({7.0f})}};
  write_checkpoint(dir / "c.pt", "job-a", sample_state(), *model, optimizer, written);
  const at::Tensor a = at::zeros({2}), b = at::zeros({1});
  read_checkpoint(dir / "c.pt", "job-a", *model, optimizer, {{"teacher.b", b}, {"teacher.a", a}});
  EXPECT_TRUE(at::equal(a, at::tensor({3.0f, 4.0f})));
  EXPECT_TRUE(at::equal(b, at::tensor({7.0f})));
}

TEST(Checkpoint, RefusesACheckpointOfAnotherRunNamingIt) {
  testing::TempDir dir;
  auto model = tiny_model(1);
  auto optimizer = adam_for(*model);
  write_checkpoint(dir / "c.pt", "job-a", sample_state(), *model, optimizer, {});
  MIL_EXPECT_THROW_WITH(read_checkpoint(dir / "c.pt", "job-b", *model, optimizer, {}),
                        "checkpoint '" + (dir / "c.pt") +
                            "' belongs to run 'job-a', not 'job-b'; remove it to start over");
}

TEST(Checkpoint, RefusesAnotherLayoutVersion) {
  testing::TempDir dir;
  torch::serialize::OutputArchive archive;
  archive.write("meta",
                c10::IValue(nlohmann::json{{"version", 2}, {"fingerprint", "job-a"}}.dump()));
  archive.save_to(dir / "c.pt");
  auto model = tiny_model(1);
  auto optimizer = adam_for(*model);
  MIL_EXPECT_THROW_WITH(read_checkpoint(dir / "c.pt", "job-a", *model, optimizer, {}),
                        "has layout version 2, this build reads 1");
}

TEST(Checkpoint, ReadsACheckpointWrittenBeforeTheTeacherWasValidated) {
  // The layout of version 1 before the teacher was validated and kept at the student's best: no
  // teacher_* fields in meta and no teacher archives.
  testing::TempDir dir;
  auto model = tiny_model(1);
  auto optimizer = adam_for(*model);
  torch::serialize::OutputArchive archive, model_archive, optimizer_archive, best, extra;
  model->save(model_archive);
  optimizer.save(optimizer_archive);
  archive.write("model", model_archive);
  archive.write("optimizer", optimizer_archive);
  archive.write("best_model", best);
  archive.write("extra", extra);
  {
    auto generator = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(generator.mutex());
    archive.write("torch_rng", generator.get_state());
  }
  std::ostringstream order_rng;
  order_rng << std::mt19937_64(7);
  const nlohmann::json meta = {
      {"version", 1},           {"fingerprint", "job-a"},    {"epoch", 4},
      {"position", 0},          {"order", {0, 1}},           {"order_rng", order_rng.str()},
      {"loss_sum", 0.0},        {"finite_steps", 0},         {"skipped_steps", 0},
      {"instances", 0},         {"train_seconds", 0.0},      {"best_epoch", -1},
      {"best_score", 0.0},      {"stopped_early", false},    {"stopper_counter", 0},
      {"stopper_best", -1e300}, {"selection_metric", "auc"}, {"history", nlohmann::json::array()}};
  archive.write("meta", c10::IValue(meta.dump()));
  archive.save_to(dir / "c.pt");

  TrainingState s = read_checkpoint(dir / "c.pt", "job-a", *model, optimizer, {});
  EXPECT_EQ(s.epoch, 4);
  EXPECT_EQ(s.order_rng(), std::mt19937_64(7)());
  EXPECT_EQ(s.teacher_best_epoch, -1);
  EXPECT_EQ(s.teacher_best_score, 0.0);
  EXPECT_TRUE(s.teacher_best.empty());
  EXPECT_TRUE(s.teacher_at_best.empty());
}

TEST(Checkpoint, LeavesOnlyTheCheckpointInItsFolder) {
  testing::TempDir dir;
  auto model = tiny_model(1);
  auto optimizer = adam_for(*model);
  write_checkpoint(dir / "c.pt", "job-a", sample_state(), *model, optimizer, {});
  write_checkpoint(dir / "c.pt", "job-a", sample_state(), *model, optimizer, {});
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
    names.push_back(entry.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"c.pt"});
}

}  // namespace mil
