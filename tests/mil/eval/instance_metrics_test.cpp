// Instance-truth metrics on cases small enough to count by hand, and the per-instance score kinds
// against their definitions.
#include "mil/eval/instance_metrics.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include <nlohmann/json.hpp>

#include "mil/eval/instance_scores.h"
#include "mil/models/abmil.h"
#include "mil/models/mil_model.h"
#include "mil/models/model_registry.h"

namespace mil {
namespace {

TEST(InstanceAuc, CountsWitnessOverNonWitnessPairsWithinASlide) {
  // Codes: hard, background, easy, background, background.
  const std::vector<double> scores{0.2, 0.4, 0.9, 0.3, 0.6};
  const std::vector<std::uint8_t> codes{1, 0, 2, 0, 0};
  // Hard 0.2 beats none of {0.4, 0.3, 0.6}: 0/3.
  EXPECT_DOUBLE_EQ(within_slide_instance_auc(scores, codes, WitnessKind::kHard), 0.0);
  // Easy 0.9 beats all three: 3/3.
  EXPECT_DOUBLE_EQ(within_slide_instance_auc(scores, codes, WitnessKind::kEasy), 1.0);
  // Both witnesses against the three: 0 + 3 of 6 pairs.
  EXPECT_DOUBLE_EQ(within_slide_instance_auc(scores, codes, WitnessKind::kAny), 0.5);
  // A tie counts one half; a slide without witnesses has no AUC.
  EXPECT_DOUBLE_EQ(within_slide_instance_auc({0.5, 0.5, 0.1}, {1, 0, 0}, WitnessKind::kAny), 0.75);
  EXPECT_TRUE(std::isnan(within_slide_instance_auc({0.5, 0.1}, {0, 0}, WitnessKind::kAny)));
  // Tumour (3) and aggressive (4) instances are not witnesses.
  EXPECT_DOUBLE_EQ(within_slide_instance_auc({0.1, 0.9, 0.8}, {1, 3, 4}, WitnessKind::kAny), 0.0);
}

TEST(TruthMetrics, HardOnlyAucUsesHardOnlyPositivesAgainstEveryNegative) {
  std::vector<TruthSlide> slides(4);
  slides[0] = {1, 0.7, {0.9, 0.1, 0.2}, {1, 0, 0}};           // hard-only positive, hard AUC 1
  slides[1] = {1, 0.95, {0.3, 0.8, 0.1, 0.2}, {1, 2, 0, 0}};  // hard AUC 1, easy AUC 1
  slides[2] = {0, 0.4, {0.5, 0.5}, {0, 0}};
  slides[3] = {0, 0.8, {0.1, 0.2}, {0, 0}};
  const TruthMetrics m = truth_metrics(slides);
  // Hard-only: positive 0.7 against negatives 0.4 and 0.8: 1 of 2. (With the easy slide's 0.95 it
  // would be 3 of 4.)
  EXPECT_DOUBLE_EQ(m.auc_hard_only, 0.5);
  EXPECT_EQ(m.hard_only_positives, 1);
  EXPECT_EQ(m.negatives, 2);
  EXPECT_DOUBLE_EQ(m.instance_auc_hard, 1.0);
  EXPECT_EQ(m.hard_slides, 2);
  EXPECT_DOUBLE_EQ(m.instance_auc_easy, 1.0);
  EXPECT_EQ(m.easy_slides, 1);
  // Any witness: slide 0: 2/2; slide 1: {0.3, 0.8} over {0.1, 0.2}: 4/4.
  EXPECT_DOUBLE_EQ(m.instance_auc, 1.0);
  EXPECT_EQ(m.instance_slides, 2);
  const nlohmann::json j = truth_metrics_json(m);
  EXPECT_DOUBLE_EQ(j.at("auc_hard_only").get<double>(), 0.5);
  EXPECT_EQ(j.at("slides").at("hard_only_positives").get<int>(), 1);
}

TEST(TruthMetrics, LeaveOutWhatNoSlideDefines) {
  const TruthMetrics m = truth_metrics({{0, 0.3, {0.1, 0.2}, {0, 0}}});
  const nlohmann::json j = truth_metrics_json(m);
  EXPECT_FALSE(j.contains("instance_auc"));
  EXPECT_FALSE(j.contains("auc_hard_only"));  // no hard-only positive
  EXPECT_EQ(j.at("slides").at("negatives").get<int>(), 1);
}

TEST(InstanceScores, FollowTheirDefinitionsOnAbmil) {
  torch::manual_seed(3);
  const ModelSpec spec{"abmil", {{"dropout", 0.0}}};
  std::shared_ptr<MilModelImpl> model = make_model(spec, 6, 2);
  model->eval();
  auto* abmil = dynamic_cast<AbmilImpl*>(model.get());
  ASSERT_NE(abmil, nullptr);
  torch::NoGradGuard no_grad;
  const at::Tensor x = at::randn({7, 6});
  const at::Tensor h = abmil->feature->forward(x);
  const MilOutput out = model->forward(x);
  const at::Tensor w = abmil->classifier->weight, b = abmil->classifier->bias;
  // attention: the model's own weights.
  const ScoredBag attention = score_instances(*model, x, ScoreKind::kAttention, 1);
  EXPECT_TRUE(attention.scores.allclose(out.instance_scores.to(at::kDouble)));
  EXPECT_NEAR(attention.scores.sum().item<double>(), 1.0, 1e-6);
  // class-aware: softmax over classes of W (a_i h_i) + b, class 1.
  const at::Tensor contribution = out.instance_scores.unsqueeze(1) * h;
  const at::Tensor expected = (contribution.matmul(w.t()) + b).softmax(1).select(1, 1);
  EXPECT_TRUE(score_instances(*model, x, ScoreKind::kClassAware, 1)
                  .scores.allclose(expected.to(at::kDouble), 1e-6, 1e-7));
  // logit: class 0's logit of each instance alone.
  const at::Tensor logit0 = (h.matmul(w.t()) + b).select(1, 0);
  EXPECT_TRUE(score_instances(*model, x, ScoreKind::kLogit, 0)
                  .scores.allclose(logit0.to(at::kDouble), 1e-5, 1e-6));
  EXPECT_THROW(parse_score_kind("gradcam"), std::invalid_argument);
  EXPECT_EQ(score_kind_name(parse_score_kind("class-aware")), "class-aware");
}

TEST(InstanceScores, TransmilGivesAttentionOnly) {
  torch::manual_seed(4);
  std::shared_ptr<MilModelImpl> model =
      make_model(ModelSpec{"transmil", {{"embed_dim", 64}, {"heads", 2}}}, 8, 2);
  model->eval();
  torch::NoGradGuard no_grad;
  const at::Tensor x = at::randn({20, 8});
  EXPECT_EQ(score_instances(*model, x, ScoreKind::kAttention, 1).scores.numel(), 20);
  EXPECT_THROW(score_instances(*model, x, ScoreKind::kLogit, 1), std::invalid_argument);
}

}  // namespace
}  // namespace mil
