#pragma once
// Shared checks of TransMIL and MHIM's selfattn aggregator against the files written by
// tests/fixtures/models/make_transmil_fixtures.py (committed at width 64, or generated at width
// 512).
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/utils.h>

#include <cstdio>
#include <string>

#include "mil/mhim/selfattn_aggregator.h"
#include "mil/models/state_dict.h"
#include "mil/models/transmil.h"

namespace mil::testing {

/// Absolute tolerance of every parity comparison.
constexpr double kParityTolerance = 1e-5;
/// The bag sizes the fixture script writes.
inline const std::vector<int64_t> kParityBagSizes{1, 7, 100, 1000};

/// The tensor `name` of a fixture file; fails the test when absent.
inline at::Tensor fixture_tensor(const StateDict& tensors, const std::string& name) {
  for (const auto& [key, value] : tensors) {
    if (key == name) return value;
  }
  ADD_FAILURE() << "fixture has no tensor '" << name << "'";
  return at::zeros({1});
}

/// max |a - b|, with a test failure when the shapes differ or the difference exceeds
/// kParityTolerance.
inline double expect_close(const at::Tensor& ours, const at::Tensor& reference,
                           const std::string& what) {
  EXPECT_EQ(ours.sizes(), reference.sizes()) << what;
  if (ours.sizes() != reference.sizes()) return INFINITY;
  const double error =
      (ours.to(at::kDouble) - reference.to(at::kDouble)).abs().max().item<double>();
  EXPECT_LE(error, kParityTolerance) << what;
  return error;
}

/// The file's key order, and a strict load of it into `module` (missing/unexpected keys throw).
inline void expect_same_keys_and_load(torch::nn::Module& module, const StateDict& file) {
  std::vector<std::string> ours, theirs;
  for (const auto& item : state_dict_of(module)) ours.push_back(item.first);
  for (const auto& item : file) theirs.push_back(item.first);
  EXPECT_EQ(ours, theirs);
  load_state_dict(module, file, /*strict=*/true);
}

/// With `with_gradients` the forward passes run with autograd on (still in eval mode, no dropout),
/// which takes the training kernels (the eigendecomposition pseudo-inverse, the direct depth-wise
/// convolutions).
inline void expect_transmil_parity(const std::string& dir, bool with_gradients = false) {
  const StateDict state = read_state_dict(dir + "/transmil_state_dict.pt");
  const StateDict cases = read_state_dict(dir + "/transmil_cases.pt");
  const at::Tensor embed = fixture_tensor(state, "feature.0.weight");
  const int64_t classes = fixture_tensor(state, "classifier.weight").size(0);
  TransMil model(TransMilOptions(embed.size(1), classes).embed_dim(embed.size(0)));
  expect_same_keys_and_load(*model, state);
  model->eval();
  torch::AutoGradMode grad_mode(with_gradients);
  for (int64_t n : kParityBagSizes) {
    const std::string suffix = "." + std::to_string(n), label = " N=" + std::to_string(n);
    const MilOutput out = model->forward(fixture_tensor(cases, "bag" + suffix));
    const double logits =
        expect_close(out.logits, fixture_tensor(cases, "logits" + suffix), "logits" + label);
    const double embedding = expect_close(
        out.embedding, fixture_tensor(cases, "embedding" + suffix), "embedding" + label);
    const double scores =
        expect_close(out.instance_scores, fixture_tensor(cases, "attention" + suffix).mean(0),
                     "instance scores" + label);
    std::printf(
        "[parity] transmil width %lld N=%lld%s: max |diff| logits %.2e embedding %.2e "
        "instance_scores %.2e\n",
        static_cast<long long>(embed.size(0)), static_cast<long long>(n),
        with_gradients ? " (autograd on)" : "", logits, embedding, scores);
  }
}

inline void expect_selfattn_parity(const std::string& dir, bool with_gradients = false) {
  const StateDict state = read_state_dict(dir + "/selfattn_state_dict.pt");
  const StateDict cases = read_state_dict(dir + "/selfattn_cases.pt");
  const int64_t width = fixture_tensor(state, "cls_token").size(2);
  MhimSelfAttention aggregator{MhimSelfAttentionOptions(width)};
  expect_same_keys_and_load(*aggregator, state);
  aggregator->eval();
  torch::AutoGradMode grad_mode(with_gradients);
  for (int64_t n : kParityBagSizes) {
    const std::string suffix = "." + std::to_string(n), label = " N=" + std::to_string(n);
    const at::Tensor instances = fixture_tensor(cases, "instances" + suffix);
    const AggregatorOutput plain = aggregator->forward(instances, /*want_scores=*/false);
    const AggregatorOutput out = aggregator->forward(instances, /*want_scores=*/true);
    const at::Tensor reference = fixture_tensor(cases, "embedding" + suffix);
    const double embedding =
        std::max(expect_close(out.embedding, reference, "embedding" + label),
                 expect_close(plain.embedding, reference, "embedding without scores" + label));
    const double attention = expect_close(
        out.attention, fixture_tensor(cases, "attention" + suffix), "attention" + label);
    const double contributions =
        expect_close(out.contributions, fixture_tensor(cases, "contributions" + suffix),
                     "contributions" + label);
    std::printf(
        "[parity] selfattn width %lld N=%lld%s: max |diff| embedding %.2e attention %.2e "
        "contributions %.2e\n",
        static_cast<long long>(width), static_cast<long long>(n),
        with_gradients ? " (autograd on)" : "", embedding, attention, contributions);
  }
}

}  // namespace mil::testing
