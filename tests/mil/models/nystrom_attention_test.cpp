#include "mil/models/nystrom_attention.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/utils.h>

#include <cmath>

#include "mil/models/state_dict.h"
#include "mil/runtime/allocation_meter.h"
#include "mil/train/trainer.h"
#include "tests/support/expect_throw.h"

namespace mil {
namespace {

/// One head of width 3 whose queries and keys are 3·x and whose values are x, with no residual
/// convolution and an identity output projection, in double precision: its output is plain
/// attention of x.
NystromAttention identity_valued_attention(int64_t landmarks) {
  NystromAttention attention(NystromAttentionOptions(3)
                                 .heads(1)
                                 .head_dim(3)
                                 .landmarks(landmarks)
                                 .pinv_iterations(40)
                                 .dropout(0.0));
  attention->to(at::kDouble);
  torch::NoGradGuard no_grad;
  const at::Tensor eye = at::eye(3, at::kDouble);
  attention->to_qkv->weight.copy_(at::cat({3 * eye, 3 * eye, eye}));
  attention->res_conv->weight.zero_();
  attention->to_out[0]->as<torch::nn::Linear>()->weight.copy_(eye);
  attention->to_out[0]->as<torch::nn::Linear>()->bias.zero_();
  return attention;
}

}  // namespace

TEST(MoorePenrosePinv, InvertsAWellConditionedMatrixPerHead) {
  const at::Tensor x =
      at::eye(5, at::kDouble).expand({2, 5, 5}) + 0.1 * at::rand({2, 5, 5}, at::kDouble);
  const at::Tensor z = moore_penrose_pinv(x, /*iterations=*/12);
  EXPECT_TRUE(at::allclose(x.matmul(z), at::eye(5, at::kDouble).expand({2, 5, 5}), 0.0, 1e-10));
}

TEST(MoorePenrosePinv, StartsFromTheTransposeScaledByMaximaOverAllHeads) {
  // Head 0 = [[1, 2], [3, 4]] (row sums 3, 7; column sums 4, 6), head 1 = 10 x head 0. The global
  // maxima are 70 and 60, so Z0 of head 0 is its transpose / 4200 (a per-head rule would give /
  // 42).
  const at::Tensor head0 = at::tensor({1.0, 2.0, 3.0, 4.0}, at::kDouble).view({2, 2});
  const at::Tensor z = moore_penrose_pinv(at::stack({head0, 10 * head0}), /*iterations=*/0);
  EXPECT_TRUE(at::allclose(z[0], head0.t() / 4200.0, 0.0, 1e-15));
  EXPECT_TRUE(at::allclose(z[1], 10 * head0.t() / 4200.0, 0.0, 1e-15));
}

TEST(NystromAttention, IsExactSoftmaxAttentionWithFrontZeroPaddingWhenEveryTokenIsALandmark) {
  // n = 3 tokens e1, e2, e3 and m = 4 landmarks: one zero token goes in front, every padded token
  // is its own landmark, so (given a converged pseudo-inverse) the output is softmax attention over
  // the 4 padded keys. Logits are q_i·k_j = (3/√3)(3) δ_ij = 3√3 δ_ij for real keys and 0 for the
  // zero key, which still takes softmax mass: output row i = d on the diagonal, o elsewhere, d =
  // e^a/(e^a + 3), o = 1/(e^a + 3).
  NystromAttention attention = identity_valued_attention(/*landmarks=*/4);
  const double a = 3.0 * std::sqrt(3.0), d = std::exp(a) / (std::exp(a) + 3.0),
               o = 1.0 / (std::exp(a) + 3.0);
  const at::Tensor expected = o * at::ones({3, 3}, at::kDouble) + (d - o) * at::eye(3, at::kDouble);
  const NystromAttentionOutput out =
      attention->forward(at::eye(3, at::kDouble), /*want_attention=*/true);
  EXPECT_TRUE(at::allclose(out.output, expected, 0.0, 1e-9)) << out.output;
  // Token 0's row over tokens 1 and 2: o each; its mass on the zero token and on itself is not
  // returned.
  EXPECT_TRUE(at::allclose(out.attention, at::full({1, 2}, o, at::kDouble), 0.0, 1e-9))
      << out.attention;
  EXPECT_TRUE(at::allclose(out.values, at::eye(3, at::kDouble).slice(0, 1).unsqueeze(0), 0.0, 0.0));
}

TEST(NystromAttention, ZeroQueriesAverageTheValuesOfThePaddedSequence) {
  // n = 3 tokens e1, e2, e3, m = 2 landmarks of l = 2 tokens each, one zero token in front. With q
  // = k = 0 every kernel is uniform, K2 = 11ᵀ/2 is a projector (its own pseudo-inverse, a fixed
  // point of the Newton step), so every output row is the mean of the 4 padded values: (0 + e1 + e2
  // + e3) / 4 = 1/4 each, not 1/3: the padding counts.
  NystromAttention attention = identity_valued_attention(/*landmarks=*/2);
  {
    torch::NoGradGuard no_grad;
    attention->to_qkv->weight.slice(0, 0, 6).zero_();  // q = k = 0
  }
  const NystromAttentionOutput out = attention->forward(at::eye(3, at::kDouble));
  EXPECT_TRUE(at::allclose(out.output, at::full({3, 3}, 0.25, at::kDouble), 0.0, 1e-9))
      << out.output;
}

TEST(NystromAttention, NamesParametersLikeTheReference) {
  NystromAttention attention(NystromAttentionOptions(512));
  std::vector<std::string> names;
  std::vector<std::vector<int64_t>> shapes;
  for (const auto& [name, tensor] : state_dict_of(*attention)) {
    names.push_back(name);
    shapes.push_back(tensor.sizes().vec());
  }
  EXPECT_EQ(names, (std::vector<std::string>{"to_qkv.weight", "to_out.0.weight", "to_out.0.bias",
                                             "res_conv.weight"}));
  EXPECT_EQ(shapes,
            (std::vector<std::vector<int64_t>>{{1536, 512}, {512, 512}, {512}, {8, 1, 33, 1}}));
}

TEST(NystromAttention, ReturnsTokenZeroAttentionAndValuesOverTheOtherTokens) {
  // As the reference (return_attn): n = 100/300/1000 tokens -> attention [8, n-1], values
  // [8, n-1, 64].
  seed_torch(4);
  NystromAttention attention(NystromAttentionOptions(512));
  torch::NoGradGuard no_grad;
  for (int64_t n : {100, 300, 1000}) {
    const NystromAttentionOutput out =
        attention->forward(at::randn({n, 512}), /*want_attention=*/true);
    EXPECT_EQ(out.output.sizes(), (std::vector<int64_t>{n, 512}));
    EXPECT_EQ(out.attention.sizes(), (std::vector<int64_t>{8, n - 1}));
    EXPECT_EQ(out.values.sizes(), (std::vector<int64_t>{8, n - 1, 64}));
  }
}

TEST(NystromAttention, NeedsMemoryLinearInTheSequenceLength) {
  // 20,000 tokens: an n x n float matrix alone would be 1.6 GB; everything Nyström keeps is O(n·m).
  NystromAttention attention(NystromAttentionOptions(16).heads(2).head_dim(8).landmarks(8));
  const at::Tensor x = at::randn({20000, 16});
  AllocationMeter meter;
  attention->forward(x).output.sum().backward();
  EXPECT_GT(meter.peak_bytes(), 20000 * 16 * 4);
  EXPECT_LT(meter.peak_bytes(), 64 << 20) << "peak " << meter.peak_bytes() << " bytes";
}

TEST(NystromAttention, RejectsTokensOfTheWrongWidthWithTheShapeInTheMessage) {
  NystromAttention attention(NystromAttentionOptions(16).heads(2).head_dim(8).landmarks(8));
  MIL_EXPECT_THROW_WITH(attention->forward(at::randn({4, 15})),
                        "NystromAttention expects [n, 16] tokens, got [4, 15]");
  MIL_EXPECT_THROW_WITH(attention->forward(at::randn({1, 16}), true), "need a token 0 and others");
}

TEST(AllocationMeter, SeesTensorsAllocatedWhileAliveAndTheirRelease) {
  AllocationMeter meter;
  {
    const at::Tensor big = at::empty({1 << 20}, at::kFloat);  // 4 MiB
    EXPECT_GE(meter.current_bytes(), 4 << 20);
  }
  EXPECT_LT(meter.current_bytes(), 4 << 20);
  EXPECT_GE(meter.peak_bytes(), 4 << 20);
}

}  // namespace mil
