// The direct depth-wise convolution against torch's grouped conv2d: values and the gradients of
// input, weight and bias, over PPEG-like and residual-like shapes, odd sizes, and kernels wider
// than the plane.
#include "mil/models/depthwise_conv.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <torch/utils.h>

#include "mil/train/trainer.h"
#include "tests/support/expect_throw.h"

namespace mil {
namespace {

struct ConvCase {
  int64_t batch, channels, h, w, kh, kw;
  bool bias;
};

/// Values and gradients of ours and torch's conv2d for one case in `dtype` with one random upstream
/// gradient.
void expect_matches_conv2d(const ConvCase& c, at::ScalarType dtype, double tolerance) {
  const at::Tensor input = at::randn({c.batch, c.channels, c.h, c.w}, dtype);
  const at::Tensor weight = at::randn({c.channels, 1, c.kh, c.kw}, dtype);
  const at::Tensor bias = c.bias ? at::randn({c.channels}, dtype) : at::Tensor();
  const at::Tensor upstream = at::randn({c.batch, c.channels, c.h, c.w}, dtype);
  std::vector<at::Tensor> grads[2];
  at::Tensor outputs[2];
  for (int which = 0; which < 2; ++which) {
    const at::Tensor x = input.clone().requires_grad_(), w = weight.clone().requires_grad_();
    const at::Tensor b = c.bias ? bias.clone().requires_grad_() : at::Tensor();
    outputs[which] = which == 0
                         ? depthwise_conv2d(x, w, b)
                         : at::conv2d(x, w, b, {1, 1}, {c.kh / 2, c.kw / 2}, {1, 1}, c.channels);
    (outputs[which] * upstream).sum().backward();
    grads[which] = {x.grad(), w.grad()};
    if (c.bias) grads[which].push_back(b.grad());
  }
  const std::string label = "case [" + std::to_string(c.batch) + ", " + std::to_string(c.channels) +
                            ", " + std::to_string(c.h) + ", " + std::to_string(c.w) + "] kernel " +
                            std::to_string(c.kh) + "x" + std::to_string(c.kw);
  EXPECT_TRUE(at::allclose(outputs[0], outputs[1], tolerance, tolerance)) << label;
  const char* names[] = {"input", "weight", "bias"};
  for (std::size_t i = 0; i < grads[0].size(); ++i) {
    EXPECT_TRUE(at::allclose(grads[0][i], grads[1][i], tolerance, tolerance))
        << label << " gradient of " << names[i];
  }
}

const std::vector<ConvCase> kCases{
    {1, 512, 45, 45, 7, 7, true},  // PPEG's 7x7 on a 45 x 45 grid (N = 2025)
    {2, 3, 5, 7, 3, 3, true},      // odd, non-square planes, two images
    {1, 4, 6, 6, 5, 5, true},
    {1, 4, 1, 1, 7, 7, true},      // a single token: the kernel overhangs every side
    {1, 3, 2, 3, 7, 7, true},      // kernel wider than the plane
    {1, 8, 70, 16, 33, 1, false},  // Nyström's residual over the sequence, no bias
    {1, 8, 10, 4, 33, 1, false},   // sequence shorter than the residual kernel
};

}  // namespace

TEST(DepthwiseConv2d, MatchesGroupedConv2dValuesAndGradientsInDouble) {
  seed_torch(21);
  for (const ConvCase& c : kCases) expect_matches_conv2d(c, at::kDouble, 1e-11);
}

TEST(DepthwiseConv2d, MatchesGroupedConv2dValuesAndGradientsInFloat) {
  seed_torch(22);
  for (const ConvCase& c : kCases) expect_matches_conv2d(c, at::kFloat, 2e-4);
}

TEST(DepthwiseConv2d, GivesBitIdenticalResultsAtAnyThreadCount) {
  seed_torch(23);
  const at::Tensor input = at::randn({1, 64, 20, 20}), weight = at::randn({64, 1, 7, 7}),
                   bias = at::randn({64});
  const int previous = at::get_num_threads();
  std::vector<at::Tensor> results[2];
  for (int threads : {1, 2}) {
    at::set_num_threads(threads);
    const at::Tensor x = input.clone().requires_grad_(), w = weight.clone().requires_grad_(),
                     b = bias.clone().requires_grad_();
    const at::Tensor out = depthwise_conv2d(x, w, b);
    out.square().sum().backward();
    results[threads - 1] = {out.detach(), x.grad(), w.grad(), b.grad()};
  }
  at::set_num_threads(previous);
  for (std::size_t i = 0; i < results[0].size(); ++i)
    EXPECT_TRUE(at::equal(results[0][i], results[1][i])) << i;
}

TEST(DepthwiseConv2d, RejectsWeightsThatAreNotOnePerChannel) {
  MIL_EXPECT_THROW_WITH(
      depthwise_conv2d(at::randn({1, 4, 5, 5}), at::randn({4, 2, 3, 3}), at::Tensor()),
      "expects input [N, C, H, W] and weight [C, 1, kh, kw], got [1, 4, 5, 5] and [4, 2, 3, 3]");
  MIL_EXPECT_THROW_WITH(
      depthwise_conv2d(at::randn({1, 4, 5, 5}), at::randn({4, 1, 2, 2}), at::Tensor()),
      "needs an odd kernel");
}

}  // namespace mil
