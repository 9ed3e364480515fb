#include "mil/mhim/selfattn_aggregator.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/utils.h>
#include <nlohmann/json.hpp>

#include <cmath>

#include "mil/models/mil_model.h"
#include "mil/models/state_dict.h"
#include "mil/train/trainer.h"
#include "tests/support/expect_throw.h"

namespace mil {
namespace {

/// The small aggregator the behaviour tests use: width 16 (8 heads of 2, 8 landmarks).
MhimSelfAttention tiny_selfattn() { return MhimSelfAttention(MhimSelfAttentionOptions(16)); }

}  // namespace

TEST(MhimSelfAttention, ReturnsEmbeddingAndOnRequestHeadAttentionAndContributions) {
  seed_torch(1);
  MhimSelfAttention aggregator(MhimSelfAttentionOptions(64));  // 8 heads of 8, 32 landmarks
  aggregator->eval();
  torch::NoGradGuard no_grad;
  for (int64_t n :
       {1, 3, 49, 300}) {  // 1 and 3 take PPEG's 7 x 7 zero padding; 300 ten landmark groups
    const AggregatorOutput plain = aggregator->forward(at::randn({n, 64}), /*want_scores=*/false);
    EXPECT_EQ(plain.embedding.sizes(), (std::vector<int64_t>{1, 64}));
    EXPECT_FALSE(plain.attention.defined());
    const AggregatorOutput scored = aggregator->forward(at::randn({n, 64}), /*want_scores=*/true);
    EXPECT_EQ(scored.attention.sizes(), (std::vector<int64_t>{8, n}));
    EXPECT_EQ(scored.contributions.sizes(), (std::vector<int64_t>{n, 64}));
  }
}

TEST(MhimSelfAttention, ScoringDoesNotChangeTheEmbedding) {
  seed_torch(2);
  MhimSelfAttention aggregator = tiny_selfattn();
  aggregator->eval();
  const at::Tensor x = at::randn({30, 16});
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(
      aggregator->forward(x, false).embedding.equal(aggregator->forward(x, true).embedding));
}

TEST(MhimSelfAttention, WithEmbeddingAndPredictorHasTheMhimSelfattnParameterCounts) {
  // The reference's MHIM-selfattn counts (instantiating its MHIM) = embedding Linear(D, 512) + this
  // aggregator + predictor Linear(512, C).
  const int64_t aggregator =
      count_trainable_parameters(*MhimSelfAttention(MhimSelfAttentionOptions(512)));
  const auto total = [&](int64_t d, int64_t c) { return d * 512 + 512 + aggregator + 512 * c + c; };
  EXPECT_EQ(total(1024, 2), 2672146);
  EXPECT_EQ(total(1024, 4), 2673172);
  EXPECT_EQ(total(1536, 2), 2934290);
  EXPECT_EQ(total(768, 2), 2541074);
  EXPECT_EQ(total(512, 2), 2410002);
}

TEST(MhimSelfAttention, NamesParametersInTheReferenceStateDictOrder) {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : state_dict_of(*tiny_selfattn())) names.push_back(name);
  std::vector<std::string> expected{"cls_token", "norm.weight", "norm.bias"};
  for (const std::string layer : {"layer1", "layer2"}) {
    for (const char* key :
         {".norm.weight", ".norm.bias", ".attn.to_qkv.weight", ".attn.to_out.0.weight",
          ".attn.to_out.0.bias", ".attn.res_conv.weight"}) {
      expected.push_back(layer + key);
    }
  }
  for (const char* key : {"proj", "proj1", "proj2"}) {
    expected.push_back(std::string("pos_embedding.") + key + ".weight");
    expected.push_back(std::string("pos_embedding.") + key + ".bias");
  }
  EXPECT_EQ(names, expected);
}

TEST(MhimSelfAttention, InitialisesLikeMhim) {
  seed_torch(3);
  MhimSelfAttention aggregator(MhimSelfAttentionOptions(512));
  // Class token N(0, 1); Linear Xavier-normal with zero bias; convolutions at PyTorch's default
  // (Kaiming-uniform a = √5: weights uniform in ±1/√fan_in, fan_in = 49 for the 7 x 7 depth-wise
  // kernel).
  EXPECT_NEAR(aggregator->cls_token.std().item<double>(), 1.0, 0.1);
  const double qkv_std = std::sqrt(2.0 / (512.0 + 1536.0));
  EXPECT_NEAR(aggregator->layer1->attn->to_qkv->weight.std().item<double>(), qkv_std,
              0.01 * qkv_std);
  EXPECT_EQ(
      aggregator->layer1->attn->to_out[0]->as<torch::nn::Linear>()->bias.abs().sum().item<double>(),
      0.0);
  const at::Tensor proj = aggregator->pos_embedding->proj->weight;
  EXPECT_LE(proj.abs().max().item<double>(), 1.0 / 7.0);
  EXPECT_NEAR(proj.std().item<double>(), 1.0 / 7.0 / std::sqrt(3.0), 0.02);
  EXPECT_GT(aggregator->pos_embedding->proj->bias.abs().sum().item<double>(), 0.0);
}

TEST(MhimSelfAttention, ToOutDropoutMovesContributionsButNotAttentionInTrainMode) {
  // The reference's teacher scores in train mode: layer 1's attention has no dropout before it,
  // while the contributions pass through to_out's Dropout(0.1), as in the reference's scores.
  seed_torch(4);
  MhimSelfAttention aggregator = tiny_selfattn();
  const at::Tensor x = at::randn({20, 16});
  torch::NoGradGuard no_grad;
  aggregator->train();
  const AggregatorOutput a = aggregator->forward(x, true), b = aggregator->forward(x, true);
  EXPECT_TRUE(a.attention.equal(b.attention));
  EXPECT_FALSE(a.contributions.equal(b.contributions));
  aggregator->eval();
  EXPECT_TRUE(
      aggregator->forward(x, true).contributions.equal(aggregator->forward(x, true).contributions));
}

TEST(MhimSelfAttention, ContributionsAreToOutOfAttentionWeightedValues) {
  // With attention A and values V, the contributions are to_out(concat_h A[h,i]·V[h,i,:]); with a
  // zero to_out weight they are its bias on every row, and with the identity they are the weighted
  // values.
  seed_torch(5);
  MhimSelfAttention aggregator = tiny_selfattn();
  aggregator->eval();
  torch::NoGradGuard no_grad;
  auto* to_out = aggregator->layer1->attn->to_out[0]->as<torch::nn::Linear>();
  to_out->weight.copy_(at::eye(16));
  to_out->bias.fill_(0.5);
  const at::Tensor x = at::randn({5, 16});
  const AggregatorOutput out = aggregator->forward(x, true);
  // Recompute V of layer 1 by hand: v = (to_qkv(LayerNorm(cat(cls, x))))[:, 32:48], head h =
  // columns 2h..2h+1.
  const at::Tensor tokens = at::cat({aggregator->cls_token.view({1, 16}), x});
  const at::Tensor v =
      aggregator->layer1->attn->to_qkv->forward(aggregator->layer1->norm->forward(tokens))
          .slice(1, 32, 48)
          .slice(0, 1);  // [5, 16], head-major columns
  const at::Tensor weights = out.attention.t().repeat_interleave(2, /*dim=*/1);  // [5, 16]
  EXPECT_TRUE(at::allclose(out.contributions, v * weights + 0.5, 1e-5, 1e-6));
}

TEST(MhimSelfAttention, GradientsMatchCentralDifferences) {
  seed_torch(6);
  MhimSelfAttention aggregator = tiny_selfattn();
  aggregator->to(at::kDouble);
  aggregator->eval();
  const at::Tensor x =
      at::randn({3, 16}, at::kDouble);  // 3 instances: square 2 x 2, then zeros to 7 x 7
  const at::Tensor direction = at::randn({1, 16}, at::kDouble);
  const auto loss_tensor = [&] {
    return (aggregator->forward(x, false).embedding * direction).sum();
  };
  aggregator->zero_grad();
  loss_tensor().backward();
  const auto params = aggregator->named_parameters();
  for (const auto& [name, index] :
       std::vector<std::pair<std::string, int64_t>>{{"cls_token", 5},
                                                    {"layer1.attn.to_qkv.weight", 100},
                                                    {"layer1.attn.res_conv.weight", 20},
                                                    {"pos_embedding.proj1.weight", 60},
                                                    {"pos_embedding.proj.bias", 9},
                                                    {"layer2.attn.to_out.0.weight", 33}}) {
    SCOPED_TRACE(name);
    at::Tensor p = params[name];
    const double analytic = p.grad().view({-1})[index].item<double>();
    double numeric = 0;
    {
      torch::NoGradGuard no_grad;
      at::Tensor flat = p.view({-1});
      const double original = flat[index].item<double>();
      flat[index].fill_(original + 1e-6);
      const double up = loss_tensor().item<double>();
      flat[index].fill_(original - 1e-6);
      const double down = loss_tensor().item<double>();
      flat[index].fill_(original);
      numeric = (up - down) / 2e-6;
    }
    EXPECT_NEAR(analytic, numeric, 1e-7 + 1e-5 * std::abs(numeric));
  }
}

TEST(MhimSelfAttention, MakeMhimAggregatorBuildsSelfattnAndRejectsUnknownKeys) {
  auto aggregator = make_mhim_aggregator("selfattn", 64, 2, nlohmann::json{{"n_heads", 4}});
  auto* selfattn = dynamic_cast<MhimSelfAttentionImpl*>(aggregator.get());
  ASSERT_NE(selfattn, nullptr);
  // Four heads, each still 64 / 8 = 8 wide (the reference's fixed head width): q, k, v of 3 x 32.
  EXPECT_EQ(selfattn->layer1->attn->to_qkv->weight.sizes(), (std::vector<int64_t>{96, 64}));
  MIL_EXPECT_THROW_WITH(make_mhim_aggregator("selfattn", 64, 2, nlohmann::json{{"heads", 4}}),
                        "heads");
}

TEST(MhimSelfAttention, RejectsInstancesOfTheWrongWidthWithTheShapeInTheMessage) {
  MhimSelfAttention aggregator = tiny_selfattn();
  MIL_EXPECT_THROW_WITH(
      aggregator->forward(at::randn({4, 15}), false),
      "selfattn aggregator expects [N, 16] instance embeddings with N >= 1, got [4, 15]");
}

}  // namespace mil
