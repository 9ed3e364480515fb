#include "mil/models/fast_dropout.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <limits>
#include <mutex>

namespace mil {
namespace {

// Binomial standard deviation of a kept fraction over n draws, for tolerances of 6 sigma.
double six_sigma(double p, int64_t n) { return 6.0 * std::sqrt(p * (1.0 - p) / double(n)); }

TEST(FastDropout, KeepsOneMinusPOfTheElementsScaledByItsInverse) {
  torch::manual_seed(3);
  const double p = 0.25;
  const at::Tensor input = torch::ones({1000, 1000});
  const at::Tensor output = fast_dropout(input, p, /*training=*/true);
  const at::Tensor kept = output.ne(0);
  const double kept_fraction = kept.to(torch::kDouble).mean().item<double>();
  EXPECT_NEAR(kept_fraction, 1.0 - p, six_sigma(1.0 - p, input.numel()));
  // Every kept element is exactly 1 / (1 - p); every other one is exactly zero.
  EXPECT_TRUE(
      torch::all(output.masked_select(kept).eq(static_cast<float>(1.0 / (1.0 - p)))).item<bool>());
}

TEST(FastDropout, NeighbouringDecisionsAreIndependent) {
  // A weak hash shows up as correlated keeps of consecutive elements or of the same column in
  // adjacent rows.
  torch::manual_seed(4);
  const double p = 0.5;
  const at::Tensor kept =
      fast_dropout(torch::ones({2000, 512}), p, true).ne(0).to(torch::kDouble).flatten();
  const int64_t n = kept.numel();
  for (int64_t lag : {int64_t{1}, int64_t{2}, int64_t{512}}) {
    const double both = (kept.slice(0, 0, n - lag) * kept.slice(0, lag, n)).mean().item<double>();
    EXPECT_NEAR(both, (1 - p) * (1 - p), six_sigma((1 - p) * (1 - p), n - lag)) << "lag " << lag;
  }
}

TEST(FastDropout, TorchManualSeedReplaysTheMaskAndConsecutiveCallsDiffer) {
  const at::Tensor input = torch::randn({300, 64});
  torch::manual_seed(11);
  const at::Tensor first = fast_dropout(input, 0.3, true);
  const at::Tensor second = fast_dropout(input, 0.3, true);
  torch::manual_seed(11);
  const at::Tensor replay = fast_dropout(input, 0.3, true);
  EXPECT_TRUE(torch::equal(first, replay));
  EXPECT_FALSE(torch::equal(first, second));
}

TEST(FastDropout, MaskDoesNotDependOnTheThreadCount) {
  const at::Tensor input = torch::randn({4000, 128});
  const int threads = at::get_num_threads();
  at::set_num_threads(1);
  torch::manual_seed(5);
  const at::Tensor one_thread = fast_dropout(input, 0.25, true);
  at::set_num_threads(2);
  torch::manual_seed(5);
  const at::Tensor two_threads = fast_dropout(input, 0.25, true);
  at::set_num_threads(threads);
  EXPECT_TRUE(torch::equal(one_thread, two_threads));
}

TEST(FastDropout, GradientIsTheSameMaskAndScale) {
  torch::manual_seed(6);
  const at::Tensor input = torch::randn({257, 33}).requires_grad_(true);
  const at::Tensor output = fast_dropout(input, 0.4, true);
  const at::Tensor upstream = torch::randn({257, 33});
  (output * upstream).sum().backward();
  // d output / d input is diagonal: scale where kept, 0 where dropped; output / input recovers it.
  const at::Tensor factor = (output / input).detach();
  EXPECT_TRUE(torch::allclose(input.grad(), upstream * factor, 1e-6, 1e-6));
  EXPECT_TRUE(torch::all(factor.eq(0) | (factor - 1.0 / 0.6).abs().lt(1e-5)).item<bool>());
}

TEST(FastDropout, EvalModeAndZeroPReturnTheInputItself) {
  const at::Tensor input = torch::randn({10, 4});
  EXPECT_TRUE(fast_dropout(input, 0.5, /*training=*/false).is_same(input));
  EXPECT_TRUE(fast_dropout(input, 0.0, /*training=*/true).is_same(input));
  FastDropout module(0.5);
  module->eval();
  EXPECT_TRUE(module->forward(input).is_same(input));
}

TEST(FastDropout, Bfloat16KeepsTheSameMaskAsFloat) {
  const at::Tensor input = torch::ones({100, 100});
  torch::manual_seed(8);
  const at::Tensor as_float = fast_dropout(input, 0.2, true);
  torch::manual_seed(8);
  const at::Tensor as_bf16 = fast_dropout(input.to(torch::kBFloat16), 0.2, true);
  EXPECT_EQ(as_bf16.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(as_float.ne(0), as_bf16.ne(0)));
}

// The seed fast_dropout draws after torch::manual_seed(seed): one random64() of the default CPU
// generator.
uint64_t first_draw_after(uint64_t seed) {
  torch::manual_seed(seed);
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return at::check_generator<at::CPUGeneratorImpl>(generator)->random64();
}

TEST(FastDropout, EveryElementIsTheScalarRuleInFloatAndBfloat16) {
  // The element loops run as vectorised clones (AVX2, AVX-512) picked at load time; each must give
  // exactly what the scalar rule gives: keep iff fast_dropout_keeps(seed, i, p), then x * (1 / (1 -
  // p)) rounded to the dtype.
  const double p = 0.3;
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  const int64_t count = 4099;  // not a multiple of any vector width: the tails run too
  at::Tensor input = torch::randn({count}) * 7.0;
  input[5] = std::numeric_limits<float>::infinity();
  const uint64_t seed = first_draw_after(21);
  for (const auto dtype : {torch::kFloat, torch::kBFloat16}) {
    const at::Tensor x = input.to(dtype);
    torch::manual_seed(21);
    const at::Tensor output = fast_dropout(x, p, true).to(torch::kFloat);
    const at::Tensor as_float = x.to(torch::kFloat);
    int mismatches = 0;
    for (int64_t i = 0; i < count; ++i) {
      float expected = 0.0f;
      if (fast_dropout_keeps(seed, i, p)) {
        const float product = as_float[i].item<float>() * scale;
        expected = dtype == torch::kFloat ? product : static_cast<float>(c10::BFloat16(product));
      }
      if (output[i].item<float>() != expected) ++mismatches;
    }
    EXPECT_EQ(mismatches, 0) << dtype;
  }
}

TEST(FastDropout, RejectsProbabilitiesOutsideZeroToOne) {
  EXPECT_THROW(FastDropout(1.0), c10::Error);
  EXPECT_THROW(fast_dropout(torch::ones({2}), -0.1, true), c10::Error);
}

}  // namespace
}  // namespace mil
