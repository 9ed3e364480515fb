#include "mil/models/transmil.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/utils.h>
#include "mil/runtime/autocast.h"

#include <cmath>
#include <functional>

#include "mil/models/model_registry.h"
#include "mil/models/state_dict.h"
#include "mil/train/trainer.h"
#include "tests/support/expect_throw.h"

namespace mil {
namespace {

/// The small TransMIL the behaviour tests use: D = 6, width 16 (2-wide heads, 8 landmarks), 2
/// classes.
TransMil tiny_transmil() { return TransMil(TransMilOptions(6, 2).embed_dim(16)); }

/// d loss / d p[index] by central differences, with p changed in place and restored.
double central_difference(at::Tensor p, int64_t index, const std::function<double()>& loss,
                          double step) {
  torch::NoGradGuard no_grad;
  at::Tensor flat = p.view({-1});
  const double original = flat[index].item<double>();
  flat[index].fill_(original + step);
  const double up = loss();
  flat[index].fill_(original - step);
  const double down = loss();
  flat[index].fill_(original);
  return (up - down) / (2 * step);
}

}  // namespace

TEST(TransMil, ReturnsLogitsEmbeddingAndOneScorePerRealInstance) {
  seed_torch(1);
  TransMil model(TransMilOptions(32, 3));
  model->eval();
  torch::NoGradGuard no_grad;
  for (int64_t n : {1, 5, 50}) {  // 5 and 50 are padded with duplicates to 9 and 64 tokens
    const MilOutput out = model->forward(at::randn({n, 32}));
    EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{1, 3}));
    EXPECT_EQ(out.embedding.sizes(), (std::vector<int64_t>{1, 512}));
    EXPECT_EQ(out.instance_scores.sizes(), (std::vector<int64_t>{n}));
    EXPECT_TRUE(out.instance_scores.isfinite().all().item<bool>());
  }
}

TEST(TransMil, HasTheReferenceParameterCountsForEveryColumn) {
  // The reference's counts (instantiating its TransMIL) for every column.
  EXPECT_EQ(count_trainable_parameters(*TransMil(TransMilOptions(1024, 2))), 2672146);
  EXPECT_EQ(count_trainable_parameters(*TransMil(TransMilOptions(1024, 4))), 2673172);
  EXPECT_EQ(count_trainable_parameters(*TransMil(TransMilOptions(1536, 2))), 2934290);
  EXPECT_EQ(count_trainable_parameters(*TransMil(TransMilOptions(768, 2))), 2541074);
  EXPECT_EQ(count_trainable_parameters(*TransMil(TransMilOptions(512, 2))), 2410002);
}

TEST(TransMil, NamesParametersInTheReferenceStateDictOrder) {
  std::vector<std::string> names;
  for (const auto& [name, tensor] : state_dict_of(*tiny_transmil())) names.push_back(name);
  std::vector<std::string> expected{"cls_token",
                                    "pos_layer.proj.weight",
                                    "pos_layer.proj.bias",
                                    "pos_layer.proj1.weight",
                                    "pos_layer.proj1.bias",
                                    "pos_layer.proj2.weight",
                                    "pos_layer.proj2.bias",
                                    "feature.0.weight",
                                    "feature.0.bias"};
  for (const std::string layer : {"layer1", "layer2"}) {
    for (const char* key :
         {".norm.weight", ".norm.bias", ".attn.to_qkv.weight", ".attn.to_out.0.weight",
          ".attn.to_out.0.bias", ".attn.res_conv.weight"}) {
      expected.push_back(layer + key);
    }
  }
  for (const char* key : {"norm.weight", "norm.bias", "classifier.weight", "classifier.bias"})
    expected.push_back(key);
  EXPECT_EQ(names, expected);
}

TEST(TransMil, InitialisesLikeTheReference) {
  seed_torch(3);
  TransMil model(TransMilOptions(1024, 2));
  // Class token N(0, 1e-6²); every convolution Xavier-normal with zero bias; Linear biases zero.
  EXPECT_NEAR(model->cls_token.std().item<double>(), 1e-6, 1e-7);
  const double proj_std = std::sqrt(2.0 / (49.0 + 512.0 * 49.0));  // weight [512, 1, 7, 7]
  EXPECT_NEAR(model->pos_layer->proj->weight.std().item<double>(), proj_std, 0.03 * proj_std);
  EXPECT_EQ(model->pos_layer->proj->bias.abs().sum().item<double>(), 0.0);
  const double res_std = std::sqrt(2.0 / (33.0 + 8.0 * 33.0));  // weight [8, 1, 33, 1]
  EXPECT_NEAR(model->layer1->attn->res_conv->weight.std().item<double>(), res_std, 0.15 * res_std);
  const double qkv_std = std::sqrt(2.0 / (512.0 + 1536.0));
  EXPECT_NEAR(model->layer2->attn->to_qkv->weight.std().item<double>(), qkv_std, 0.01 * qkv_std);
  EXPECT_EQ(model->classifier->bias.abs().sum().item<double>(), 0.0);
}

TEST(TransMil, GradientsMatchCentralDifferences) {
  seed_torch(5);
  TransMil model = tiny_transmil();
  model->to(at::kDouble);
  model->eval();  // dropout off, so the loss is a deterministic function of the parameters
  {
    torch::NoGradGuard no_grad;
    model->cls_token.normal_();  // off its ~0 init, so layer 1's class-token query matters
  }
  const at::Tensor bag =
      at::randn({10, 6}, at::kDouble);  // 10 -> 16 tokens (+ class token), 8 landmarks
  const auto loss = [&] { return model->forward(bag).logits[0][1].item<double>(); };
  model->zero_grad();
  model->forward(bag).logits[0][1].backward();
  const auto params = model->named_parameters();
  for (const auto& [name, index] :
       std::vector<std::pair<std::string, int64_t>>{{"cls_token", 3},
                                                    {"feature.0.weight", 7},
                                                    {"layer1.attn.to_qkv.weight", 40},
                                                    {"layer1.attn.res_conv.weight", 12},
                                                    {"pos_layer.proj.weight", 24},
                                                    {"layer2.attn.to_qkv.weight", 300},
                                                    {"layer2.norm.bias", 2}}) {
    SCOPED_TRACE(name);
    const at::Tensor p = params[name];
    const double analytic = p.grad().view({-1})[index].item<double>();
    const double numeric = central_difference(p, index, loss, 1e-6);
    EXPECT_NEAR(analytic, numeric, 1e-7 + 1e-5 * std::abs(numeric));
  }
}

TEST(TransMil, GivesIdenticalOutputsForTheSameSeedInTrainMode) {
  const at::Tensor bag = at::randn({40, 6});
  const auto run = [&](uint64_t seed) {
    seed_torch(seed);
    TransMil model = tiny_transmil();
    model->train();
    return model->forward(bag).logits;
  };
  EXPECT_TRUE(run(7).equal(run(7)));
  EXPECT_FALSE(run(7).equal(run(8)));
}

TEST(TransMil, DropsOutOnlyInTrainMode) {
  seed_torch(9);
  TransMil model = tiny_transmil();
  const at::Tensor bag = at::randn({40, 6});
  torch::NoGradGuard no_grad;
  model->train();
  EXPECT_FALSE(model->forward(bag).logits.equal(model->forward(bag).logits));
  model->eval();
  EXPECT_TRUE(model->forward(bag).logits.equal(model->forward(bag).logits));
}

TEST(TransMil, WithoutDropoutTrainAndEvalModesAgree) {
  seed_torch(10);
  TransMil model(TransMilOptions(6, 2).embed_dim(16).dropout(0.0).attention_dropout(0.0));
  const at::Tensor bag = at::randn({12, 6});
  torch::NoGradGuard no_grad;
  model->train();
  const at::Tensor train_logits = model->forward(bag).logits;
  model->eval();
  EXPECT_TRUE(train_logits.equal(model->forward(bag).logits));
}

TEST(TransMil, TrainsUnderCpuBf16AutocastLikeTheTrainersBf16Precision) {
  // The trainer's bf16 precision runs forward under CPU autocast, so bf16 matmul outputs meet the
  // fp32 class token, LayerNorms and residuals; the pseudo-inverse then iterates in bf16.
  seed_torch(11);
  TransMil model = tiny_transmil();
  model->eval();
  const at::Tensor bag = at::randn({20, 6});
  const at::Tensor fp32_logits = model->forward(bag).logits.detach();
  MilOutput out;
  {
    AutocastGuard autocast(c10::DeviceType::CPU, true);
    out = model->forward(bag);
  }
  const at::Tensor logits = out.logits.to(at::kFloat);
  logits.sum().backward();
  EXPECT_TRUE(at::allclose(logits, fp32_logits, /*rtol=*/0.05, /*atol=*/0.05))
      << logits << fp32_logits;
  for (const auto& item : model->named_parameters()) {
    ASSERT_TRUE(item.value().grad().defined()) << item.key();
    EXPECT_TRUE(item.value().grad().isfinite().all().item<bool>()) << item.key();
  }
}

TEST(TransMil, MakeModelReadsOptionsAndRejectsUnknownKeys) {
  auto model = make_model(
      ModelSpec{"transmil", {{"dropout", 0.0}, {"activation", "relu"}, {"embed_dim", 32}}}, 10, 2);
  auto* transmil = dynamic_cast<TransMilImpl*>(model.get());
  ASSERT_NE(transmil, nullptr);
  EXPECT_EQ(transmil->options.embed_dim(), 32);
  EXPECT_EQ(transmil->options.activation(), "relu");
  EXPECT_EQ(transmil->feature->size(), 2u) << "dropout 0 removes the embedding dropout";
  MIL_EXPECT_THROW_WITH(make_model(ModelSpec{"transmil", {{"dropuot", 0.1}}}, 10, 2), "dropuot");
  MIL_EXPECT_THROW_WITH(make_model(ModelSpec{"transmil", {{"activation", "tanh"}}}, 10, 2),
                        "activation");
}

TEST(TransMil, RejectsBagsOfTheWrongShapeWithTheShapeInTheMessage) {
  TransMil model = tiny_transmil();
  MIL_EXPECT_THROW_WITH(model->forward(at::randn({2, 3, 6})),
                        "TransMil expects [N, D] bag features, got [2, 3, 6]");
  MIL_EXPECT_THROW_WITH(model->forward(at::randn({4, 7})), "expects D = 6");
  MIL_EXPECT_THROW_WITH(model->forward(at::randn({0, 6})), "at least one instance");
}

}  // namespace mil
