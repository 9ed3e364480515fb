// MHIM-MIL: values computed by running the reference (counts, schedules), masking and EMA
// properties, the GRN, teacher loading, and training through the trainer with exact resume.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/nn/functional/loss.h>

#include <cmath>
#include <filesystem>
#include <set>

#include "mil/data/splits.h"
#include "mil/mhim/grn.h"
#include "mil/mhim/masking.h"
#include "mil/mhim/mhim_network.h"
#include "mil/mhim/mhim_objective.h"
#include "mil/models/mil_model.h"
#include "mil/models/state_dict.h"
#include "mil/synthetic/generator.h"
#include "mil/train/trainer.h"
#include "tests/support/expect_throw.h"
#include "tests/support/temp_dir.h"

namespace mil {
namespace {

std::shared_ptr<MhimNetworkImpl> network(int64_t input_dim, int64_t classes,
                                         nlohmann::json options = {}) {
  if (options.is_null()) options = nlohmann::json::object();
  return std::make_shared<MhimNetworkImpl>(
      mhim_network_options_from_json(options, input_dim, classes));
}

MhimOptions random_teacher(nlohmann::json extra = nlohmann::json::object()) {
  extra["teacher_init"] = "random";
  return mhim_options_from_json(extra);
}

}  // namespace

// ---- mask counts computed by running the reference ----

TEST(MhimMaskCount, ReproducesTheReferenceVectors) {
  EXPECT_EQ(mask_count(1000, 0.03, 1.0).masked, 30);
  const MaskCount randomised = mask_count(9075, 0.01, 0.5);
  EXPECT_EQ(randomised.candidates, 182);
  EXPECT_EQ(randomised.masked, 91);
  EXPECT_EQ(mask_count(100, 0.07, 1.0).masked, 8) << "100 * 0.07 = 7.000000000000001 rounds up";
  EXPECT_EQ(mask_count(10, 0.01, 1.0).masked, 1);
}

TEST(MhimMaskCount, RandomMaskingTakesAllCandidatesThenARandomShare) {
  // v1 random masking calls the primitive with random_ratio 0.001: r' > 1, so every instance is a
  // candidate and ceil(N·r) of them are masked.
  const MaskCount count = mask_count(1000, 0.5, 0.001);
  EXPECT_EQ(count.candidates, 1000);
  EXPECT_EQ(count.masked, 500);
}

TEST(MhimMasking, MasksExactlyTheTopScoredInstancesAndKeepsTheRestInOrder) {
  at::manual_seed(3);
  const at::Tensor scores = at::rand({1000});
  const MaskSelection s = select_mask(scores, /*largest=*/true, 0.03, 1.0);
  ASSERT_EQ(s.masked.size(), 30u);
  ASSERT_EQ(s.kept.size(), 970u);
  const at::Tensor order = std::get<1>(scores.sort(0, /*descending=*/true));
  std::set<int64_t> top;
  for (int i = 0; i < 30; ++i) top.insert(order[i].item<int64_t>());
  EXPECT_EQ(std::set<int64_t>(s.masked.begin(), s.masked.end()), top);
  EXPECT_TRUE(std::is_sorted(s.kept.begin(), s.kept.end()));
  for (int64_t i : s.kept) EXPECT_EQ(top.count(i), 0u);
}

TEST(MhimMasking, V1CombinationUnitesOverlappingStrategies) {
  // Run by the reference: N = 1000, random 0.5, low 0.2, high 0.02 -> 500 -> ~403 -> ~388 kept.
  at::manual_seed(5);
  const at::Tensor scores = at::rand({1000});
  const MaskSelection random_only = select_mask(scores, false, 0.5, 0.001);
  EXPECT_EQ(random_only.kept.size(), 500u);
  const MaskSelection with_low = select_mask(scores, false, 0.2, 1.0, &random_only);
  const MaskSelection all = select_mask(scores, true, 0.02, 1.0, &with_low);
  // Candidates come from all N, so each step adds only the candidates not already masked.
  const at::Tensor order = std::get<1>(scores.sort(0));
  std::set<int64_t> expected(random_only.masked.begin(), random_only.masked.end());
  for (int i = 0; i < 200; ++i) expected.insert(order[i].item<int64_t>());
  EXPECT_EQ(with_low.masked.size(), expected.size());
  for (int i = 0; i < 20; ++i) expected.insert(order[999 - i].item<int64_t>());
  EXPECT_EQ(all.masked.size(), expected.size());
  EXPECT_NEAR(double(with_low.kept.size()), 400.0, 25.0);
  EXPECT_NEAR(double(all.kept.size()), 390.0, 25.0);
  EXPECT_EQ(apply_mask_plan(scores, MaskPlan{0.0, 0.0, 0.03, 1.0}).kept.size(), 970u);
}

TEST(MhimMasking, MultiHeadScoresAreFusedByVotes) {
  // Three heads over 6 instances, k = ceil(6·0.34) = 3: instances 0 and 1 are nominated by every
  // head, 2 by two heads, everything else by at most one.
  const at::Tensor scores = at::tensor({9.f, 8.f, 7.f, 0.f, 0.f, 0.f,  //
                                        9.f, 8.f, 0.f, 7.f, 0.f, 0.f,  //
                                        9.f, 8.f, 7.f, 0.f, 0.f, 6.f})
                                .view({3, 6});
  const MaskSelection s = select_mask(scores, true, 0.34, 1.0);
  EXPECT_EQ(s.masked, (std::vector<int64_t>{0, 1, 2}));
}

TEST(MhimMasking, AlwaysLeavesTheStudentAtLeastOneInstance) {
  const at::Tensor scores = at::tensor({0.3f});
  const MaskSelection s = apply_mask_plan(scores, MaskPlan{0.0, 0.0, 0.5, 1.0});
  EXPECT_EQ(s.kept, (std::vector<int64_t>{0}));
  EXPECT_TRUE(s.masked.empty());
}

TEST(MhimSchedules, ReproduceTheReferenceMaskDecayAndMomentumRamp) {
  const std::vector<double> decay = {0.03,  0.02949, 0.02799, 0.02561, 0.0225,  0.01888,
                                     0.015, 0.01112, 0.0075,  0.00439, 0.00201, 0.00051};
  const std::vector<double> ramp = {0.9997,  0.999705, 0.99972,  0.999744, 0.999775, 0.999811,
                                    0.99985, 0.999889, 0.999925, 0.999956, 0.99998,  0.999995};
  for (int i = 0; i < 12; ++i) {
    EXPECT_NEAR(cosine_schedule(0.03, 0.0, i, 12), decay[i], 5e-6) << i;
    EXPECT_NEAR(cosine_schedule(0.9997, 1.0, i, 12), ramp[i], 5e-7) << i;
  }
}

// ---- GRN ----

TEST(MhimGrn, HasTheReferenceParameterCountForAnyK) {
  for (int64_t k : {1, 5, 10}) {
    GlobalRecycle grn(GlobalRecycleOptions(512).tokens(k));
    EXPECT_EQ(count_trainable_parameters(*grn), 1050112);
    EXPECT_EQ(grn->global_q_mm.numel(), k * 512);
    EXPECT_FALSE(grn->global_q_mm.requires_grad());
    EXPECT_LE(grn->global_q_mm.abs().max().item<double>(), 0.06847 + 1e-6);
  }
}

TEST(MhimGrn, KeepsFloorOfTheRatioAndAppendsKTokens) {
  at::manual_seed(1);
  for (auto [ratio, kept] : {std::pair{0.8, 776}, std::pair{0.9, 873}}) {
    GlobalRecycle grn(GlobalRecycleOptions(512).tokens(5).keep_ratio(ratio));
    EXPECT_EQ(grn->kept_count(970), kept);
    grn->train();
    const at::Tensor x = at::randn({970, 512});
    EXPECT_EQ(grn->forward(x).size(0), kept + 5);
    grn->eval();
    EXPECT_EQ(grn->forward(x).size(0), 975);
  }
}

TEST(MhimGrn, KeptTokensAreUnchangedSurvivorsAndQueriesMoveOnlyInTraining) {
  at::manual_seed(2);
  GlobalRecycle grn(GlobalRecycleOptions(512).tokens(2).keep_ratio(0.5).momentum(0.9));
  const at::Tensor x = at::randn({10, 512});
  const at::Tensor queries = grn->global_q_mm.clone();
  grn->eval();
  grn->forward(x);
  EXPECT_TRUE(grn->global_q_mm.equal(queries)) << "eval must not update the queries";
  grn->train();
  const at::Tensor out = grn->forward(x);
  EXPECT_FALSE(grn->global_q_mm.equal(queries));
  for (int64_t i = 0; i < 5; ++i) {
    const at::Tensor row = out[i];
    EXPECT_TRUE((x - row).abs().sum(1).min().item<double>() == 0.0)
        << "kept row " << i << " is not a survivor";
  }
}

// ---- network ----

TEST(MhimNetwork, AttnParameterCountsMatchTheReferenceTable) {
  const std::vector<std::tuple<int64_t, int64_t, int64_t>> table = {
      {1024, 2, 591490}, {1024, 4, 592516}, {1536, 2, 853634}, {768, 2, 460418}, {512, 2, 329346}};
  for (const auto& [d, c, expected] : table) {
    EXPECT_EQ(count_trainable_parameters(*network(d, c)), expected) << d << "x" << c;
    EXPECT_EQ(count_trainable_parameters(*network(d, c, {{"merge", true}, {"merge_k", 5}})),
              expected + 1050112);
  }
}

TEST(MhimNetwork, SelfattnAndDsmilParameterCountsMatchTheReferenceTable) {
  const std::vector<std::tuple<int64_t, int64_t, int64_t, int64_t>> table = {
      // D, C, selfattn, dsmil: the reference's counts (instantiating its classes)
      {1024, 2, 2672146, 873734},
      {1024, 4, 2673172, 881932},
      {1536, 2, 2934290, 1135878},
      {768, 2, 2541074, 742662},
      {512, 2, 2410002, 611590}};
  for (const auto& [d, c, selfattn, dsmil] : table) {
    EXPECT_EQ(count_trainable_parameters(*network(d, c, {{"baseline", "selfattn"}})), selfattn)
        << d << "x" << c;
    EXPECT_EQ(count_trainable_parameters(*network(d, c, {{"baseline", "dsmil"}})), dsmil)
        << d << "x" << c;
  }
}

TEST(MhimObjective, TrainsEveryAggregatorWithMaskingAndTheGrn) {
  // One training bag through teacher scoring, masking, the GRN and the student for each baseline;
  // DSMIL's consistency target is its per-class representation [C, d].
  for (const char* baseline : {"attn", "selfattn", "dsmil"}) {
    SCOPED_TRACE(baseline);
    at::manual_seed(12);
    auto student = network(
        16, 2, {{"baseline", baseline}, {"merge", true}, {"merge_k", 2}, {"merge_ratio", 0.8}});
    MhimObjective objective(*student, random_teacher({{"mask_ratio_h", 0.05}}), 0, 10);
    student->train();
    Bag bag;
    bag.features = at::randn({60, 16});
    bag.label = 1;
    const at::Tensor loss = objective.loss(bag, 0, [](const at::Tensor& logits) {
      return torch::nn::functional::cross_entropy(logits, torch::full({1}, 1, torch::kLong));
    });
    loss.backward();
    EXPECT_TRUE(std::isfinite(loss.item<double>()));
    EXPECT_TRUE(student->predictor->weight.grad().defined() || std::string(baseline) == "dsmil");
    const auto stats = objective.take_epoch_stats();
    EXPECT_DOUBLE_EQ(stats.at("student_tokens"),
                     std::floor((60 - 3) * 0.8) + 2);  // ceil(60·0.05) = 3 masked
    EXPECT_GT(stats.at("consistency_loss"), 0.0);
  }
}

TEST(MhimNetwork, KeysMatchTheReferenceNames) {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : state_dict_of(*network(16, 2, {{"merge", true}})))
    names.push_back(name);
  for (const char* key :
       {"feature.0.weight", "feature.0.bias", "online_encoder.attention.attention.0.weight",
        "online_encoder.attention.attention.2.weight", "predictor.weight", "predictor.bias",
        "merge.norm.weight", "merge.attn.to_kv.weight", "merge.attn.to_q.weight",
        "merge.attn.to_out.0.weight", "merge.global_q_mm"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), key), names.end()) << key;
  }
}

TEST(MhimNetwork, ClassAwareScoreIsTheMaxClassProbabilityOfEachContribution) {
  at::manual_seed(4);
  auto net = network(16, 2);
  net->eval();
  const at::Tensor h = net->embed(at::randn({7, 16}));
  const AggregatorOutput out = net->online_encoder->forward(h, true);
  const at::Tensor scores = net->instance_scores(out, /*class_aware=*/true);
  ASSERT_EQ(scores.sizes(), (std::vector<int64_t>{7}));
  for (int64_t i = 0; i < 7; ++i) {
    const at::Tensor contribution = out.attention[i] * h[i];
    // b_0 added to every class (as the reference does) cancels in the softmax, leaving the weight
    // difference.
    const double diff = ((net->predictor->weight[1] - net->predictor->weight[0]) * contribution)
                            .sum()
                            .item<double>();
    const double p1 = 1.0 / (1.0 + std::exp(-diff));
    EXPECT_NEAR(scores[i].item<double>(), std::max(p1, 1.0 - p1), 1e-5);
  }
  // Without attn2score the score is ABMIL's softmax attention, computed here from the aggregator's
  // weights: a = softmax_i(w2 · relu(W1 h_i)) (da_act relu, no biases).
  const auto weights = net->online_encoder->named_parameters();
  const at::Tensor logits = at::relu(h.matmul(weights["attention.attention.0.weight"].t()))
                                .matmul(weights["attention.attention.2.weight"].t());
  const at::Tensor attention = logits.reshape({-1}).softmax(0);
  EXPECT_TRUE(net->instance_scores(out, false).allclose(attention, 1e-6, 1e-7));
}

// ---- objective ----

TEST(MhimObjective, StudentSeesTheReferenceTokenCount) {
  // Run by the reference: N = 1000, r_h 0.03, merge_ratio 0.8, k = 5 -> 970 survivors -> 776 + 5
  // = 781 tokens.
  at::manual_seed(6);
  auto student = network(32, 2, {{"merge", true}, {"merge_k", 5}, {"merge_ratio", 0.8}});
  MhimObjective objective(*student, random_teacher({{"mask_ratio_h", 0.03}}), 0, 100);
  student->train();
  Bag bag;
  bag.features = at::randn({1000, 32});
  bag.label = 1;
  const auto ce = [](const at::Tensor& logits) { return logits.sum() * 0.0; };
  objective.loss(bag, 0, ce);
  EXPECT_DOUBLE_EQ(objective.take_epoch_stats().at("student_tokens"), 781.0);
}

TEST(MhimObjective, InitialConsistencyLossIsNearLn512) {
  // With a random teacher equal to the student the 512-channel soft cross-entropy starts near
  // ln 512 ≈ 6.24 (the reference measured 6.22).
  at::manual_seed(7);
  auto student = network(64, 2);
  MhimObjective objective(*student, random_teacher({{"mask_ratio_h", 0.03}}), 0, 100);
  student->train();
  double sum = 0.0;
  for (int i = 0; i < 5; ++i) {
    Bag bag;
    bag.features = at::randn({200, 64});
    objective.loss(bag, 0, [](const at::Tensor& l) { return l.sum() * 0.0; });
  }
  sum = objective.take_epoch_stats().at("consistency_loss");
  EXPECT_NEAR(sum, std::log(512.0), 0.1);
}

TEST(MhimObjective, TeacherFollowsTheClosedFormEmaOfAFixedStudent) {
  // With the student fixed, k updates give θ_T = m^k θ_T0 + (1 − m^k) θ_S.
  at::manual_seed(8);
  auto student = network(16, 2);
  MhimObjective objective(*student, random_teacher({{"mm", 0.9}}), 0, 100);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : student->parameters()) p.add_(1.0);
  }
  const at::Tensor t0 = objective.teacher().predictor->weight.clone();
  const at::Tensor s = student->predictor->weight.clone();
  for (int step = 0; step < 5; ++step) objective.after_optimizer_step(step);
  const double mk = std::pow(0.9, 5);
  EXPECT_TRUE(objective.teacher().predictor->weight.allclose(mk * t0 + (1 - mk) * s, 1e-6, 1e-6));
}

TEST(MhimObjective, RampedMomentumAndDecayedRatioFollowTheNominalRun) {
  auto student = network(16, 2);
  MhimObjective objective(
      *student,
      random_teacher(
          {{"mm", 0.9997}, {"mm_sche", true}, {"mask_ratio_h", 0.03}, {"mrh_sche", true}}),
      0, 12);
  EXPECT_NEAR(objective.momentum_at(4), 0.999775, 5e-7);
  EXPECT_NEAR(objective.high_mask_ratio_at(6), 0.015, 1e-9);
}

TEST(MhimObjective, RefusesToStartWithoutATeacherChoice) {
  auto student = network(16, 2);
  MIL_EXPECT_THROW_WITH(
      MhimObjective(*student, mhim_options_from_json({{"mask_ratio_h", 0.03}}), 0, 10),
      "MHIM needs a teacher");
}

TEST(MhimObjective, LoadsTheFoldsBaselineCheckpointIntoTheTeacher) {
  testing::TempDir dir;
  at::manual_seed(9);
  auto baseline = network(16, 2);
  write_state_dict(state_dict_of(*baseline), dir / "fold_3_model_best.pt");
  at::manual_seed(10);
  auto student = network(16, 2, {{"merge", true}});
  MhimObjective objective(*student, mhim_options_from_json({{"teacher_init", dir.path().string()}}),
                          3, 10);
  EXPECT_TRUE(objective.teacher().predictor->weight.equal(baseline->predictor->weight));
  EXPECT_TRUE(objective.teacher().feature->named_parameters()["0.weight"].equal(
      baseline->feature->named_parameters()["0.weight"]));
  EXPECT_FALSE(student->predictor->weight.equal(baseline->predictor->weight))
      << "v2 leaves the student at its init";
}

TEST(MhimObjective, NamesEveryKeyOfAMismatchedTeacherCheckpoint) {
  testing::TempDir dir;
  auto other = network(32, 2);  // wrong input width
  StateDict state = state_dict_of(*other);
  state.erase(state.begin() + 2);  // drop one aggregator key
  write_state_dict(state, dir / "t.pt");
  auto student = network(16, 2);
  MIL_EXPECT_THROW_WITH(
      MhimObjective(*student, mhim_options_from_json({{"teacher_init", dir / "t.pt"}}), 0, 10),
      "feature.0.weight: [512, 32] in the file vs [512, 16] in the model");
  MIL_EXPECT_THROW_WITH(
      MhimObjective(*student, mhim_options_from_json({{"teacher_init", dir / "t.pt"}}), 0, 10),
      "missing keys: online_encoder.attention.attention.0.weight");
  MIL_EXPECT_THROW_WITH(
      MhimObjective(*student, mhim_options_from_json({{"teacher_init", dir / "none.pt"}}), 0, 10),
      "does not exist");
}

TEST(MhimOptions, RejectUnknownKeysAndImpossibleRatios) {
  MIL_EXPECT_THROW_WITH(mhim_options_from_json({{"mask_ratio_hh", 0.1}}), "mask_ratio_hh");
  MIL_EXPECT_THROW_WITH(mhim_options_from_json({{"mask_ratio_hr", 0.0}}), "mask_ratio_hr");
  MIL_EXPECT_THROW_WITH(mhim_options_from_json({{"mask_ratio_h", 1.0}}),
                        "mask_ratio_h must be in [0, 1)");
}

TEST(MhimOptions, TeacherEpochIsBestByDefaultAndLastOnlyFromASweepsBaseline) {
  EXPECT_EQ(mhim_options_from_json({{"teacher_init", "random"}}).teacher_epoch, "best");
  EXPECT_EQ(mhim_options_from_json({{"teacher_init", "baseline"}, {"teacher_epoch", "last"}})
                .teacher_epoch,
            "last");
  MIL_EXPECT_THROW_WITH(
      mhim_options_from_json({{"teacher_init", "baseline"}, {"teacher_epoch", "final"}}),
      "teacher_epoch: 'final' is not one of best, last");
  MIL_EXPECT_THROW_WITH(mhim_options_from_json({{"teacher_init", "/ckpt/fold_0_model_best.pt"},
                                                {"teacher_epoch", "last"}}),
                        "teacher_epoch 'last' needs teacher_init 'baseline'");
}

// ---- training through the trainer ----

namespace {
struct MhimFixture {
  testing::TempDir dir;
  BagDataset data;
  Split split;
  MhimFixture() {
    SyntheticOptions o;
    o.bag_count = 40;
    o.feature_dim = 16;
    o.min_instances = 10;
    o.max_instances = 40;
    write_synthetic_benchmark(dir / "s", o);
    data = load_dataset(DatasetSpec{"s", "bags", dir / "s", 2, false});
    split = make_split(data.labels(), stratified_fold_assignment(data.labels(), 4, 1), 0, 0.25, 1);
  }
};

struct MhimRun {
  std::shared_ptr<MhimNetworkImpl> student;
  std::unique_ptr<MhimObjective> objective;
  FitResult result;
};

MhimRun run_mhim(const MhimFixture& f, int epochs, const FitOptions& base = {}) {
  seed_torch(11);
  MhimRun run;
  run.student = network(16, 2, {{"merge", true}, {"merge_k", 2}, {"merge_ratio", 0.8}});
  run.objective = std::make_unique<MhimObjective>(
      *run.student, random_teacher({{"mask_ratio_h", 0.1}, {"mm", 0.99}, {"mrh_sche", true}}), 0,
      int64_t(epochs) * int64_t(f.split.train.size()));
  FitOptions options = base;
  options.objective = run.objective.get();
  TrainSpec spec;
  spec.epochs = epochs;
  spec.lr = 5e-4;
  run.result = fit(*run.student, spec, f.data.bags, f.split.train, f.split.val, 11, options);
  return run;
}
}  // namespace

TEST(MhimTraining, RecordsConsistencyLossAndMovesTheTeacher) {
  MhimFixture f;
  seed_torch(11);
  const at::Tensor initial = network(16, 2, {{"merge", true}, {"merge_k", 2}, {"merge_ratio", 0.8}})
                                 ->predictor->weight.clone();
  MhimRun run = run_mhim(f, 3);
  ASSERT_EQ(run.result.history.size(), 3u);
  for (const auto& r : run.result.history) {
    EXPECT_TRUE(std::isfinite(r.train_stats.at("consistency_loss")));
    EXPECT_LT(r.train_stats.at("student_tokens"), r.train_stats.at("instances"));
  }
  EXPECT_FALSE(run.objective->teacher().predictor->weight.equal(initial));
  for (const auto& p : run.objective->teacher().parameters()) EXPECT_FALSE(p.requires_grad());
}

TEST(MhimTraining, ValidatesTheTeacherEveryEpochAndReturnsItAtItsOwnBestEpoch) {
  MhimFixture f;
  seed_torch(11);
  MhimRun run;
  run.student = network(16, 2, {{"merge", true}, {"merge_k", 2}, {"merge_ratio", 0.8}});
  run.objective = std::make_unique<MhimObjective>(
      *run.student, random_teacher({{"mask_ratio_h", 0.1}, {"mm", 0.99}, {"mrh_sche", true}}), 0,
      int64_t(5) * int64_t(f.split.train.size()));
  // The teacher's weights after each epoch (on_epoch runs after the epoch's validation).
  std::vector<std::vector<at::Tensor>> teacher_after;
  FitOptions options;
  options.objective = run.objective.get();
  options.on_epoch = [&](const EpochRecord&) {
    std::vector<at::Tensor> copy;
    for (const auto& p : run.objective->teacher().parameters()) copy.push_back(p.detach().clone());
    teacher_after.push_back(std::move(copy));
  };
  TrainSpec spec;
  spec.epochs = 5;
  spec.lr = 5e-4;
  run.result = fit(*run.student, spec, f.data.bags, f.split.train, f.split.val, 11, options);
  ASSERT_EQ(run.result.history.size(), 5u);
  // As the reference: the teacher's best epoch is the first strict maximum of its own validation
  // AUC, from 0.
  int expected_epoch = -1;
  double expected_score = 0.0;
  for (const auto& r : run.result.history) {
    ASSERT_TRUE(r.teacher_val.count("auc")) << "epoch " << r.epoch;
    const bool improves = r.teacher_val.at("auc") > expected_score;
    EXPECT_EQ(r.teacher_improved, improves) << "epoch " << r.epoch;
    if (improves) expected_epoch = r.epoch, expected_score = r.teacher_val.at("auc");
  }
  ASSERT_GE(expected_epoch, 0);
  EXPECT_EQ(run.result.teacher_best_epoch, expected_epoch);
  EXPECT_DOUBLE_EQ(run.result.teacher_best_score, expected_score);
  // On return the teacher holds that epoch's weights (this seed's teacher peaks before the last
  // epoch), and validating it again gives that epoch's score.
  ASSERT_LT(expected_epoch, 4);
  const auto returned = run.objective->teacher().parameters();
  for (std::size_t i = 0; i < returned.size(); ++i) {
    EXPECT_TRUE(returned[i].equal(teacher_after.at(std::size_t(expected_epoch))[i]))
        << "teacher parameter " << i;
  }
  const Predictions again = predict(run.objective->teacher(), f.data.bags, f.split.val);
  EXPECT_DOUBLE_EQ(evaluate(again, false).at("auc"), expected_score);
  // The teacher never selects the student: its metric has no say in the student's best epoch.
  double student_best = 0.0;
  int student_epoch = -1;
  for (const auto& r : run.result.history) {
    if (r.val.at("auc") > student_best) student_best = r.val.at("auc"), student_epoch = r.epoch;
  }
  EXPECT_EQ(run.result.best_epoch, student_epoch);
}

// As the reference: the student's best checkpoint also holds the teacher as it was at the student's
// best epoch, which is not the teacher's own best (returned in the teacher) nor its final weights.
TEST(MhimTraining, KeepsTheTeacherAsItWasAtTheStudentsBestEpoch) {
  MhimFixture f;
  seed_torch(11);
  MhimRun run;
  run.student = network(16, 2, {{"merge", true}, {"merge_k", 2}, {"merge_ratio", 0.8}});
  run.objective = std::make_unique<MhimObjective>(
      *run.student, random_teacher({{"mask_ratio_h", 0.1}, {"mm", 0.99}, {"mrh_sche", true}}), 0,
      int64_t(6) * int64_t(f.split.train.size()));
  std::vector<std::vector<at::Tensor>> teacher_after;  // parameters, then buffers, after each epoch
  FitOptions options;
  options.objective = run.objective.get();
  options.on_epoch = [&](const EpochRecord&) {
    std::vector<at::Tensor> copy;
    for (const auto& p : run.objective->teacher().named_parameters())
      copy.push_back(p.value().detach().clone());
    for (const auto& b : run.objective->teacher().named_buffers())
      copy.push_back(b.value().detach().clone());
    teacher_after.push_back(std::move(copy));
  };
  TrainSpec spec;
  spec.epochs = 6;
  spec.lr = 5e-4;
  run.result = fit(*run.student, spec, f.data.bags, f.split.train, f.split.val, 11, options);
  ASSERT_GE(run.result.best_epoch, 0);
  const auto& kept = run.result.teacher_at_best_epoch;
  const auto& expected = teacher_after.at(std::size_t(run.result.best_epoch));
  ASSERT_EQ(kept.size(), expected.size());
  const auto names = run.objective->teacher().named_parameters();
  for (std::size_t i = 0; i < kept.size(); ++i) {
    EXPECT_TRUE(kept[i].second.equal(expected[i])) << kept[i].first;
    if (i < names.size()) {
      EXPECT_EQ(kept[i].first, names[i].key());
    }
  }
  // Not trivially so: this seed's student peaks before the last epoch, and the teacher moved since.
  ASSERT_LT(run.result.best_epoch, 5);
  EXPECT_FALSE(teacher_after.back()[0].equal(expected[0]));
  EXPECT_NE(run.result.best_epoch, run.result.teacher_best_epoch)
      << "nor is it the teacher's own best here";
}

TEST(MhimTraining, TrainsEveryAggregatorUnderCpuBf16Autocast) {
  // LibTorch 1.13's CPU LayerNorm rejects bf16 input with fp32 weights; the GRN and the
  // self-attention aggregator normalise in fp32, as CUDA autocast does.
  MhimFixture f;
  for (const char* baseline : {"attn", "selfattn", "dsmil"}) {
    seed_torch(11);
    auto student = network(
        16, 2, {{"baseline", baseline}, {"merge", true}, {"merge_k", 2}, {"merge_ratio", 0.8}});
    MhimObjective objective(*student, random_teacher({{"mask_ratio_h", 0.1}}), 0,
                            int64_t(f.split.train.size()));
    FitOptions options;
    options.objective = &objective;
    TrainSpec spec;
    spec.epochs = 1;
    spec.precision = "bf16";
    const FitResult result =
        fit(*student, spec, f.data.bags, f.split.train, f.split.val, 11, options);
    ASSERT_EQ(result.history.size(), 1u) << baseline;
    EXPECT_TRUE(std::isfinite(result.history[0].train_stats.at("consistency_loss"))) << baseline;
    EXPECT_TRUE(std::isfinite(result.history[0].mean_loss)) << baseline;
    EXPECT_EQ(result.history[0].skipped_steps, 0) << baseline;
  }
}

TEST(MhimTraining, ResumesFromAStoppedRunWithBitIdenticalStudentAndTeacher) {
  MhimFixture f;
  const MhimRun straight = run_mhim(f, 3);
  testing::TempDir dir;
  std::atomic<bool> stop{false};
  FitOptions options;
  options.checkpoint_path = dir / "ckpt.pt";
  options.run_fingerprint = "mhim-test";
  options.stop_requested = &stop;
  options.on_epoch = [&](const EpochRecord& r) {
    if (r.epoch == 0) stop = true;  // stop at the end of epoch 0
  };
  const MhimRun first = run_mhim(f, 3, options);
  ASSERT_TRUE(first.result.interrupted);
  stop = false;
  options.on_epoch = nullptr;
  const MhimRun resumed = run_mhim(f, 3, options);
  ASSERT_FALSE(resumed.result.interrupted);
  const auto a = straight.student->parameters(), b = resumed.student->parameters();
  for (std::size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(a[i].equal(b[i])) << "student parameter " << i;
  // The teacher's own best epoch survives the resume: both runs return it at the same epoch's
  // weights.
  EXPECT_EQ(resumed.result.teacher_best_epoch, straight.result.teacher_best_epoch);
  EXPECT_EQ(resumed.result.teacher_best_score, straight.result.teacher_best_score);
  const auto ta = straight.objective->teacher().parameters(),
             tb = resumed.objective->teacher().parameters();
  for (std::size_t i = 0; i < ta.size(); ++i)
    EXPECT_TRUE(ta[i].equal(tb[i])) << "teacher parameter " << i;
  // So does the teacher kept at the student's best epoch (it is in the checkpoint).
  ASSERT_EQ(resumed.result.teacher_at_best_epoch.size(),
            straight.result.teacher_at_best_epoch.size());
  ASSERT_FALSE(straight.result.teacher_at_best_epoch.empty());
  for (std::size_t i = 0; i < straight.result.teacher_at_best_epoch.size(); ++i) {
    EXPECT_TRUE(straight.result.teacher_at_best_epoch[i].second.equal(
        resumed.result.teacher_at_best_epoch[i].second))
        << straight.result.teacher_at_best_epoch[i].first;
  }
}

}  // namespace mil
