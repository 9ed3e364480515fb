#include "mil/models/gated_abmil.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <set>

#include "mil/train/trainer.h"
#include "tests/support/expect_throw.h"

namespace mil {

TEST(GatedAbmil, HasTheReferenceParameterCounts) {
  // The reference's counts (instantiating its AttentionGated): D=1024,C=2 -> 920,195; D=1024,C=4 ->
  // 921,221; D=512,C=2 -> 658,051.
  EXPECT_EQ(count_trainable_parameters(*GatedAbmil(GatedAbmilOptions(1024, 2))), 920195);
  EXPECT_EQ(count_trainable_parameters(*GatedAbmil(GatedAbmilOptions(1024, 4))), 921221);
  EXPECT_EQ(count_trainable_parameters(*GatedAbmil(GatedAbmilOptions(512, 2))), 658051);
}

TEST(GatedAbmil, NamesParametersLikeTheReferenceStateDict) {
  GatedAbmil model(GatedAbmilOptions(16, 2));
  std::set<std::string> names;
  for (const auto& item : model->named_parameters()) names.insert(item.key());
  const std::set<std::string> expected{
      "feature.0.weight",     "feature.0.bias",     "attention_a.0.weight", "attention_a.0.bias",
      "attention_b.0.weight", "attention_b.0.bias", "attention_c.weight",   "attention_c.bias",
      "classifier.0.weight",  "classifier.0.bias"};
  EXPECT_EQ(names, expected);
}

TEST(GatedAbmil, PoolsWithGatedAttentionThatSumsToOne) {
  seed_torch(4);
  GatedAbmil model(GatedAbmilOptions(8, 3));
  model->eval();
  const at::Tensor bag = at::randn({9, 8});
  const MilOutput out = model->forward(bag);
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{1, 3}));
  EXPECT_NEAR(out.instance_scores.sum().item<double>(), 1.0, 1e-5);
  // The embedding is the attention-weighted mean of the embedded instances.
  const at::Tensor h = model->feature->forward(bag);
  EXPECT_TRUE(at::allclose(out.embedding, out.instance_scores.unsqueeze(0).mm(h), 1e-5, 1e-6));
  // The attention logits are attention_c(tanh(a(h)) * sigmoid(b(h))), softmaxed over instances.
  auto* a = model->attention_a[0]->as<torch::nn::Linear>();
  auto* b = model->attention_b[0]->as<torch::nn::Linear>();
  const at::Tensor gated =
      at::tanh(h.mm(a->weight.t()) + a->bias) * at::sigmoid(h.mm(b->weight.t()) + b->bias);
  const at::Tensor expected =
      (gated.mm(model->attention_c->weight.t()) + model->attention_c->bias).squeeze(1).softmax(0);
  EXPECT_TRUE(at::allclose(out.instance_scores, expected, 1e-5, 1e-6));
}

TEST(GatedAbmil, RejectsBagsOfTheWrongShape) {
  GatedAbmil model(GatedAbmilOptions(8, 2));
  MIL_EXPECT_THROW_WITH(model->forward(at::randn({4})),
                        "GatedAbmil expects [N, D] bag features, got [4]");
}

}  // namespace mil
