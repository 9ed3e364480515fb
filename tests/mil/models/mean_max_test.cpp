// MeanMIL / MaxMIL: the pooling of per-instance logits.
#include "mil/models/mean_max.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>

#include "mil/train/trainer.h"

namespace mil {
namespace {

TEST(MeanMaxMil, MeanPoolingAveragesInstanceLogitsAndIsTheClassifierOfTheMeanEmbedding) {
  seed_torch(51);
  MeanMaxMil model(MeanMaxMilOptions(8, 3).pooling("mean"));
  model->eval();
  const MilOutput out = model->forward(at::randn({9, 8}));
  EXPECT_EQ(out.instance_logits.sizes(), (std::vector<int64_t>{9, 3}));
  EXPECT_TRUE(at::allclose(out.logits, out.instance_logits.mean(0, true)));
  const auto last = model->head->ptr<torch::nn::LinearImpl>(3);
  EXPECT_TRUE(at::allclose(out.logits, last->forward(out.embedding), 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(out.instance_scores, at::full({9}, 1.0 / 9)));
}

TEST(MeanMaxMil, MaxPoolingTakesEachClassMaximumAndScoresItsHolders) {
  seed_torch(52);
  MeanMaxMil model(MeanMaxMilOptions(8, 4).pooling("max"));
  model->eval();
  const MilOutput out = model->forward(at::randn({6, 8}));
  EXPECT_TRUE(at::allclose(out.logits, out.instance_logits.amax(0, true)));
  EXPECT_FALSE(out.embedding.defined());
  EXPECT_NEAR(out.instance_scores.sum().item<double>(), 1.0, 1e-6);
  const at::Tensor winners = out.instance_logits.argmax(0);  // [4]
  for (int64_t i = 0; i < 6; ++i) {
    const double share = winners.eq(i).sum().item<double>() / 4.0;
    EXPECT_DOUBLE_EQ(out.instance_scores[i].item<double>(), share) << "instance " << i;
  }
}

}  // namespace
}  // namespace mil
