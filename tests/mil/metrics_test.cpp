#include "mil/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

namespace mil {

TEST(RocAuc, IsOneForAPerfectRankingAndZeroForAReversedOne) {
  EXPECT_DOUBLE_EQ(roc_auc({0.1, 0.2, 0.8, 0.9}, {0, 0, 1, 1}), 1.0);
  EXPECT_DOUBLE_EQ(roc_auc({0.9, 0.8, 0.2, 0.1}, {0, 0, 1, 1}), 0.0);
}

TEST(RocAuc, CountsTiesAsHalf) {
  EXPECT_DOUBLE_EQ(roc_auc({0.5, 0.5, 0.5, 0.5}, {0, 1, 0, 1}), 0.5);
  // Pairs (pos, neg): (0.5 vs 0.5) tie = 1/2, (0.5 vs 0.1) = 1, (0.9 vs both) = 2 -> 3.5 / 4.
  EXPECT_DOUBLE_EQ(roc_auc({0.5, 0.1, 0.5, 0.9}, {0, 0, 1, 1}), 3.5 / 4.0);
}

TEST(RocAuc, MatchesAHandWorkedExample) {
  // sklearn's doc example: scores 0.1 0.4 0.35 0.8, labels 0 0 1 1 -> 0.75.
  EXPECT_DOUBLE_EQ(roc_auc({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}), 0.75);
}

TEST(RocAuc, IsNaNWhenOnlyOneClassIsPresent) {
  EXPECT_TRUE(std::isnan(roc_auc({0.1, 0.7}, {1, 1})));
}

TEST(MacroRocAuc, EqualsBinaryAucOfClassOneForTwoClasses) {
  const std::vector<std::vector<double>> p{{0.9, 0.1}, {0.6, 0.4}, {0.65, 0.35}, {0.2, 0.8}};
  EXPECT_DOUBLE_EQ(macro_roc_auc(p, {0, 0, 1, 1}), roc_auc({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}));
}

TEST(MacroRocAuc, AveragesOneVsRestOverThreeClasses) {
  const std::vector<std::vector<double>> p{{0.8, 0.1, 0.1}, {0.1, 0.8, 0.1}, {0.3, 0.3, 0.0}, {0.2, 0.2, 0.6}};
  // Class 0: positives 0.8, 0.2 vs negatives 0.1, 0.3 -> 3 of 4 pairs = 0.75.
  // Class 1: positive 0.8 vs 0.1, 0.3, 0.2 -> 1.  Class 2: positive 0.0 vs 0.1, 0.1, 0.6 -> 0.
  EXPECT_NEAR(macro_roc_auc(p, {0, 1, 2, 0}), (0.75 + 1.0 + 0.0) / 3.0, 1e-12);
}

TEST(Accuracy, BalancedAccuracyAveragesPerClassRecall) {
  // Class 0: 3 of 4 right; class 1: 1 of 2 right.
  const std::vector<int> labels{0, 0, 0, 0, 1, 1};
  const std::vector<int> predictions{0, 0, 0, 1, 1, 0};
  EXPECT_DOUBLE_EQ(accuracy(predictions, labels), 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(balanced_accuracy(predictions, labels), (0.75 + 0.5) / 2.0);
}

TEST(ClassificationMetrics, UsesArgmaxAndDropsUndefinedAuc) {
  const auto m = classification_metrics({{0.2, 0.8}, {0.7, 0.3}}, {1, 1});
  EXPECT_EQ(m.count("auc"), 0u);
  EXPECT_DOUBLE_EQ(m.at("accuracy"), 0.5);
  EXPECT_DOUBLE_EQ(m.at("balanced_accuracy"), 0.5);
}

}  // namespace mil
