// CLAM_SB / CLAM_MB: the smooth top-1 SVM against hand-computed values, attention pooling, and
// which instances the instance loss picks (including bags smaller than k_sample).
#include "mil/models/clam.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>

#include "mil/train/trainer.h"
#include "tests/support/expect_throw.h"

namespace mil {
namespace {

at::Tensor longs(std::vector<int64_t> values) {
  return at::tensor(values, at::TensorOptions().dtype(at::kLong));
}

/// A [rows, 2] float tensor of logits, row-major.
at::Tensor logits2(std::vector<float> values) {
  const auto rows = static_cast<int64_t>(values.size() / 2);
  return at::tensor(values).reshape({rows, 2});
}

TEST(SmoothTop1Svm, MatchesHandComputedSmoothRowsAndHardHingeRows) {
  // Smooth rows: tau·log Σ_j exp((x_j + [j != y] - x_y) / tau).
  // logits (0, 0), target 1: log(e^(0 + 1 - 0) + e^0) = log(1 + e).
  EXPECT_NEAR(smooth_top1_svm_loss(at::zeros({1, 2}), longs({1})).item<double>(),
              std::log(1.0 + std::exp(1.0)), 1e-6);
  // logits (2, 0), target 0: log(e^0 + e^(0 + 1 - 2)) = log(1 + 1/e).
  EXPECT_NEAR(smooth_top1_svm_loss(logits2({2.0f, 0.0f}), longs({0})).item<double>(),
              std::log(1.0 + std::exp(-1.0)), 1e-6);
  // Rows whose top logit leads the second by >= ln 1000 use the hard hinge max_j (x_j + [j != y] -
  // x_y). Gap 10 >= ln 1000 = 6.91: hard. Target 1: max(10 + 1 - 0, 0) = 11; target 0: max(0, 0 + 1
  // - 10) = 0.
  EXPECT_NEAR(smooth_top1_svm_loss(logits2({10.0f, 0.0f}), longs({1})).item<double>(), 11.0, 1e-6);
  EXPECT_NEAR(smooth_top1_svm_loss(logits2({10.0f, 0.0f}), longs({0})).item<double>(), 0.0, 1e-6);
  // Gap 6.9 < 6.9078: still smooth, log(1 + e^(1 - 6.9)).
  EXPECT_NEAR(smooth_top1_svm_loss(logits2({0.0f, 6.9f}), longs({1})).item<double>(),
              std::log(1.0 + std::exp(1.0 - 6.9)), 1e-6);
  // The loss is the mean over rows: (11 + log(1 + e)) / 2.
  EXPECT_NEAR(
      smooth_top1_svm_loss(logits2({10.0f, 0.0f, 0.0f, 0.0f}), longs({1, 1})).item<double>(),
      (11.0 + std::log(1.0 + std::exp(1.0))) / 2.0, 1e-6);
}

TEST(Clam, MultiBranchClassifiesEachClassFromItsOwnAttentionPooling) {
  seed_torch(31);
  Clam model(ClamOptions(8, 3).multi_branch(true));
  model->eval();
  const MilOutput out = model->forward(at::randn({20, 8}));
  ASSERT_EQ(out.class_attention.sizes(), (std::vector<int64_t>{3, 20}));
  EXPECT_TRUE(at::allclose(out.class_attention.sum(1), at::ones({3}), 1e-5, 1e-6));
  const at::Tensor pooled = out.class_attention.mm(out.instance_embeddings);  // [3, 512]
  for (int64_t c = 0; c < 3; ++c) {
    const auto linear = model->classifiers->ptr<torch::nn::LinearImpl>(c);
    const double expected = (pooled[c].dot(linear->weight[0]) + linear->bias[0]).item<double>();
    EXPECT_NEAR(out.logits[0][c].item<double>(), expected, 1e-5);
  }
  const int64_t predicted = out.logits.argmax(1).item<int64_t>();
  EXPECT_TRUE(out.instance_scores.equal(out.class_attention[predicted]));
}

/// The instance loss recomputed from its definition: instance classifier `label` on the k top and k
/// bottom instances of attention row `row`, targets 1 then 0.
double instance_loss_by_hand(ClamImpl& model, const MilOutput& out, int64_t row, int64_t label,
                             int64_t k) {
  const at::Tensor order = out.class_attention[row].argsort(/*dim=*/0, /*descending=*/true);
  const at::Tensor chosen = at::cat({order.slice(0, 0, k), order.flip(0).slice(0, 0, k)});
  const at::Tensor logits = model.instance_classifiers->ptr<torch::nn::LinearImpl>(label)->forward(
      out.instance_embeddings.index_select(0, chosen));
  const at::Tensor targets = at::cat({at::ones({k}, at::kLong), at::zeros({k}, at::kLong)});
  return smooth_top1_svm_loss(logits, targets).item<double>();
}

TEST(Clam, InstanceLossUsesTheTopAndBottomKOfTheTrueClassAttention) {
  seed_torch(32);
  Clam sb(ClamOptions(8, 3).aux_alpha(0.3));
  Clam mb(ClamOptions(8, 3).multi_branch(true).aux_alpha(0.3));
  sb->eval();
  mb->eval();
  const at::Tensor bag = at::randn({50, 8});
  const MilOutput sb_out = sb->forward(bag);
  const MilOutput mb_out = mb->forward(bag);
  EXPECT_NEAR(sb->auxiliary_loss(sb_out, 2).item<double>(),
              0.3 * instance_loss_by_hand(*sb, sb_out, 0, 2, 8), 1e-6);
  EXPECT_NEAR(mb->auxiliary_loss(mb_out, 2).item<double>(),
              0.3 * instance_loss_by_hand(*mb, mb_out, 2, 2, 8), 1e-6);
  EXPECT_NEAR(mb->auxiliary_loss(mb_out, 1).item<double>(),
              0.3 * instance_loss_by_hand(*mb, mb_out, 1, 1, 8), 1e-6);
}

TEST(Clam, BagsSmallerThanKSampleUseEveryInstanceAtBothEnds) {
  // The reference's topk raises for N < k_sample; we take min(k_sample, N) from each end.
  seed_torch(33);
  Clam model(ClamOptions(8, 2).aux_alpha(1.0));
  model->eval();
  for (int64_t n : {1, 3}) {
    const MilOutput out = model->forward(at::randn({n, 8}));
    const at::Tensor loss = model->auxiliary_loss(out, 1);
    EXPECT_TRUE(std::isfinite(loss.item<double>()));
    EXPECT_NEAR(loss.item<double>(), instance_loss_by_hand(*model, out, 0, 1, n), 1e-6);
  }
}

TEST(Clam, InstanceLossReachesOnlyTheTrueClassInstanceClassifier) {
  seed_torch(34);
  Clam model(ClamOptions(8, 3).aux_alpha(1.0));
  const MilOutput out = model->forward(at::randn({30, 8}));
  model->auxiliary_loss(out, 1).backward();
  EXPECT_TRUE(model->instance_classifiers->ptr<torch::nn::LinearImpl>(1)->weight.grad().defined());
  EXPECT_FALSE(model->instance_classifiers->ptr<torch::nn::LinearImpl>(0)->weight.grad().defined());
  EXPECT_FALSE(model->instance_classifiers->ptr<torch::nn::LinearImpl>(2)->weight.grad().defined());
}

}  // namespace
}  // namespace mil
