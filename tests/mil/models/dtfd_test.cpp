// DTFD-MIL: contiguous array_split pseudo-bags, the tier-2 attention-weighted instance scores, and
// the unused tier-1 classifier.
#include "mil/models/dtfd.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "mil/train/trainer.h"

namespace mil {
namespace {

TEST(Dtfd, PoolsContiguousArraySplitPseudoBagsThenThePseudoFeatures) {
  // N = 7 in 5 pseudo-bags: numpy's array_split gives sizes 2, 2, 1, 1, 1.
  seed_torch(41);
  Dtfd model(DtfdOptions(6, 2));
  model->eval();
  const at::Tensor bag = at::randn({7, 6});
  const MilOutput out = model->forward(bag);
  const at::Tensor h = out.instance_embeddings;
  const at::Tensor raw = model->attention->forward(h);
  const std::vector<std::pair<int64_t, int64_t>> ranges = {{0, 2}, {2, 4}, {4, 5}, {5, 6}, {6, 7}};
  std::vector<at::Tensor> pseudo;
  for (const auto& [begin, end] : ranges) {
    pseudo.push_back(raw.slice(0, begin, end).softmax(0).unsqueeze(0).mm(h.slice(0, begin, end)));
  }
  const at::Tensor features = at::cat(pseudo);
  const at::Tensor weights = model->u_classifier->attention->forward(features).softmax(0);
  const at::Tensor embedding = weights.unsqueeze(0).mm(features);
  EXPECT_TRUE(at::allclose(out.embedding, embedding, 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(out.logits, model->u_classifier->classifier->fc->forward(embedding),
                           1e-5, 1e-6));
  // Each instance's score is its weight in the tier-2 embedding: the scores pool h into the
  // embedding.
  EXPECT_NEAR(out.instance_scores.sum().item<double>(), 1.0, 1e-5);
  EXPECT_TRUE(at::allclose(out.instance_scores.unsqueeze(0).mm(h), out.embedding, 1e-5, 1e-6));
}

TEST(Dtfd, BagsSmallerThanThePseudoBagCountGetZeroPseudoFeatures) {
  seed_torch(42);
  Dtfd model(DtfdOptions(6, 2));
  model->eval();
  const MilOutput out = model->forward(at::randn({2, 6}));
  // Three of five pseudo-features are zero vectors that still take tier-2 attention mass.
  EXPECT_LT(out.instance_scores.sum().item<double>(), 1.0);
  EXPECT_TRUE(at::allclose(out.instance_scores.unsqueeze(0).mm(out.instance_embeddings),
                           out.embedding, 1e-5, 1e-6));
  EXPECT_TRUE(std::isfinite(out.logits.sum().item<double>()));
}

TEST(Dtfd, TierOneClassifierExistsButGetsNoGradient) {
  seed_torch(43);
  Dtfd model(DtfdOptions(6, 2));
  model->train();
  model->forward(at::randn({12, 6})).logits.sum().backward();
  EXPECT_FALSE(model->classifier->fc->weight.grad().defined());
  EXPECT_TRUE(model->u_classifier->classifier->fc->weight.grad().defined());
  EXPECT_TRUE(model->attention->attention_weights->weight.grad().defined());
  EXPECT_TRUE(model->dim_reduction->fc1->weight.grad().defined());
}

}  // namespace
}  // namespace mil
