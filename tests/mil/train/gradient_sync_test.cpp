// The bucketing and averaging every backend shares, against a fake two-rank backend whose peer
// holds known gradients.
#include "mil/train/gradient_sync.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

namespace mil {
namespace {

/// Two ranks; the peer's buffers hold `peer_factor` times ours, so a sum is (1 + factor) x ours.
/// Records every buffer it is handed.
class FakeTwoRankSync final : public GradientSync {
 public:
  explicit FakeTwoRankSync(double peer_factor) : peer_factor_(peer_factor) {}
  std::string name() const override { return "fake"; }
  int rank() const override { return 0; }
  int size() const override { return 2; }
  void allreduce_sum(std::vector<double>& values) override {
    for (double& v : values) v *= 1.0 + peer_factor_;
  }
  void abort(int) noexcept override {}
  std::vector<std::pair<at::ScalarType, int64_t>> reduced;  ///< dtype and length of each bucket
  int broadcasts = 0;

 protected:
  void allreduce_sum_buffer(at::Tensor& flat) override {
    reduced.emplace_back(flat.scalar_type(), flat.numel());
    flat.mul_(1.0 + peer_factor_);
  }
  void broadcast_buffer(at::Tensor& flat) override {
    ++broadcasts;
    flat.fill_(7.0);  // rank 0's values
  }

 private:
  double peer_factor_;
};

at::Tensor parameter_with_grad(std::vector<int64_t> shape, double grad_value) {
  at::Tensor p = at::zeros(shape).set_requires_grad(true);
  p.mutable_grad() = at::full(shape, grad_value);
  return p;
}

}  // namespace

TEST(GradientSync, AveragesGradientsOverRanksInPlace) {
  FakeTwoRankSync sync(/*peer_factor=*/3.0);  // peer gradients 3 g: mean (g + 3 g) / 2 = 2 g
  const std::vector<at::Tensor> params{parameter_with_grad({3, 4}, 0.5),
                                       parameter_with_grad({5}, -1.25)};
  sync.allreduce_gradients(params);
  EXPECT_TRUE(at::allclose(params[0].grad(), at::full({3, 4}, 1.0)));
  EXPECT_TRUE(at::allclose(params[1].grad(), at::full({5}, -2.5)));
}

TEST(GradientSync, IssuesOneCollectivePerBucketNotPerTensor) {
  FakeTwoRankSync sync(1.0);
  std::vector<at::Tensor> params;
  for (int i = 0; i < 10; ++i) params.push_back(parameter_with_grad({100}, 1.0));  // 400 bytes each
  sync.set_bucket_bytes(1000);  // two tensors per bucket
  sync.allreduce_gradients(params);
  ASSERT_EQ(sync.reduced.size(), 5u);
  for (const auto& [dtype, n] : sync.reduced) EXPECT_EQ(n, 200);
  EXPECT_EQ(sync.buffer_collectives(), 5u);

  FakeTwoRankSync one_bucket(1.0);  // the 25 MiB default holds them all
  one_bucket.allreduce_gradients(params);
  ASSERT_EQ(one_bucket.reduced.size(), 1u);
  EXPECT_EQ(one_bucket.reduced[0].second, 1000);
}

TEST(GradientSync, KeepsDtypesInSeparateBucketsAndTensorsLargerThanABucketWhole) {
  FakeTwoRankSync sync(1.0);
  at::Tensor wide = at::zeros({10}, at::kDouble).set_requires_grad(true);
  wide.mutable_grad() = at::ones({10}, at::kDouble);
  const std::vector<at::Tensor> params{parameter_with_grad({4}, 1.0), wide,
                                       parameter_with_grad({1000}, 1.0)};
  sync.set_bucket_bytes(64);
  sync.allreduce_gradients(params);
  ASSERT_EQ(sync.reduced.size(), 3u);
  EXPECT_EQ(sync.reduced[0], std::make_pair(at::kFloat, int64_t{4}));
  EXPECT_EQ(sync.reduced[1], std::make_pair(at::kDouble, int64_t{10}));
  EXPECT_EQ(sync.reduced[2], std::make_pair(at::kFloat, int64_t{1000}));
}

TEST(GradientSync, AParameterWithoutGradientContributesZerosAndReceivesTheMean) {
  FakeTwoRankSync sync(1.0);
  at::Tensor untouched = at::zeros({3}).set_requires_grad(true);  // this rank saw no bag
  at::Tensor frozen = at::zeros({3});                             // no gradient wanted at all
  sync.allreduce_gradients({untouched, frozen, parameter_with_grad({2}, 1.0)});
  ASSERT_TRUE(untouched.grad().defined());
  EXPECT_TRUE(at::equal(untouched.grad(), at::zeros({3})));
  EXPECT_FALSE(frozen.grad().defined());
  ASSERT_EQ(sync.reduced.size(), 1u);
  EXPECT_EQ(sync.reduced[0].second,
            5);  // untouched (3) + the other (2); the frozen tensor is skipped
}

TEST(GradientSync, BroadcastOverwritesEveryTensorWithRootValues) {
  FakeTwoRankSync sync(1.0);
  std::vector<at::Tensor> tensors{at::zeros({2, 2}), at::ones({3}), at::zeros({1}, at::kLong)};
  sync.broadcast_parameters(tensors);
  EXPECT_EQ(sync.broadcasts, 2);  // float tensors share a bucket, the int64 buffer has its own
  EXPECT_TRUE(at::equal(tensors[0], at::full({2, 2}, 7.0)));
  EXPECT_TRUE(at::equal(tensors[1], at::full({3}, 7.0)));
  EXPECT_TRUE(at::equal(tensors[2], at::full({1}, 7, at::kLong)));
}

TEST(GradientSync, LocalBackendLeavesEverythingUntouched) {
  LocalGradientSync local;
  const std::vector<at::Tensor> params{parameter_with_grad({3}, 0.25)};
  local.allreduce_gradients(params);
  std::vector<double> values{1.0, 2.0};
  local.allreduce_sum(values);
  EXPECT_TRUE(at::equal(params[0].grad(), at::full({3}, 0.25)));
  EXPECT_EQ(values, (std::vector<double>{1.0, 2.0}));
  EXPECT_EQ(local.buffer_collectives(), 0u);
  EXPECT_EQ(local.name(), "local");
}

}  // namespace mil
