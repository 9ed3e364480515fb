#include "mil/models/abmil.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <set>

#include "mil/train/trainer.h"
#include "tests/support/expect_throw.h"

namespace mil {

TEST(Abmil, ReturnsLogitsAttentionAndEmbeddingOfTheRightShapes) {
  seed_torch(1);
  Abmil model(AbmilOptions(32, 3));
  const MilOutput out = model->forward(at::randn({17, 32}));
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(out.instance_scores.sizes(), (std::vector<int64_t>{17}));
  EXPECT_EQ(out.embedding.sizes(), (std::vector<int64_t>{1, 512}));
  EXPECT_NEAR(out.instance_scores.sum().item<double>(), 1.0, 1e-5);
  EXPECT_GE(out.instance_scores.min().item<double>(), 0.0);
}

TEST(Abmil, HasTheReferenceParameterCounts) {
  // The reference's counts (instantiating its DAttention): D=1024,C=2 -> 591,619; D=1024,C=4 ->
  // 592,645; D=512,C=2 -> 329,475.
  EXPECT_EQ(count_trainable_parameters(*Abmil(AbmilOptions(1024, 2))), 591619);
  EXPECT_EQ(count_trainable_parameters(*Abmil(AbmilOptions(1024, 4))), 592645);
  EXPECT_EQ(count_trainable_parameters(*Abmil(AbmilOptions(512, 2))), 329475);
}

TEST(Abmil, NamesParametersLikeTheReferenceStateDict) {
  Abmil model(AbmilOptions(16, 2));
  std::set<std::string> names;
  for (const auto& item : model->named_parameters()) names.insert(item.key());
  const std::set<std::string> expected{
      "feature.0.weight",   "feature.0.bias",   "attention.0.weight", "attention.0.bias",
      "attention.2.weight", "attention.2.bias", "classifier.weight",  "classifier.bias"};
  EXPECT_EQ(names, expected);
}

TEST(Abmil, IsInvariantToInstanceOrderInEvalMode) {
  seed_torch(2);
  Abmil model(AbmilOptions(8, 2));
  model->eval();
  const at::Tensor bag = at::randn({11, 8});
  const at::Tensor permuted = bag.index_select(0, at::randperm(11, at::kLong));
  EXPECT_TRUE(
      at::allclose(model->forward(bag).logits, model->forward(permuted).logits, 1e-5, 1e-6));
}

TEST(Abmil, RejectsBagsOfTheWrongShapeWithTheShapeInTheMessage) {
  Abmil model(AbmilOptions(8, 2));
  MIL_EXPECT_THROW_WITH(model->forward(at::randn({2, 3, 8})),
                        "Abmil expects [N, D] bag features, got [2, 3, 8]");
  MIL_EXPECT_THROW_WITH(model->forward(at::randn({4, 9})), "expects D = 8");
}

TEST(Abmil, InitialisesBiasesToZeroAndWeightsXavierNormal) {
  seed_torch(3);
  Abmil model(AbmilOptions(1024, 2));
  EXPECT_EQ(model->feature[0]->as<torch::nn::Linear>()->bias.abs().sum().item<double>(), 0.0);
  // Xavier-normal std for Linear(1024, 512) = sqrt(2 / (1024 + 512)) = 0.0361.
  const double std = model->feature[0]->as<torch::nn::Linear>()->weight.std().item<double>();
  EXPECT_NEAR(std, std::sqrt(2.0 / 1536.0), 0.001);
}

}  // namespace mil
