#include "mil/eval/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

#include "tests/support/expect_throw.h"

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
  const std::vector<std::vector<double>> p{
      {0.8, 0.1, 0.1}, {0.1, 0.8, 0.1}, {0.3, 0.3, 0.0}, {0.2, 0.2, 0.6}};
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

TEST(ClassificationMetrics, ReportsTheReferenceMetricSet) {
  // Argmax predictions 0 0 1 1 against labels 0 1 0 1: half right in each class, chance-level
  // agreement.
  const auto m =
      classification_metrics({{0.9, 0.1}, {0.6, 0.4}, {0.4, 0.6}, {0.2, 0.8}}, {0, 1, 0, 1});
  EXPECT_DOUBLE_EQ(m.at("auc"),
                   0.75);  // class-1 scores: positives .4 .8 vs negatives .1 .6, 3 of 4 pairs
  EXPECT_DOUBLE_EQ(m.at("accuracy"), 0.5);
  EXPECT_DOUBLE_EQ(m.at("balanced_accuracy"), 0.5);
  EXPECT_DOUBLE_EQ(m.at("precision"), 0.5);
  EXPECT_DOUBLE_EQ(m.at("recall"), 0.5);
  EXPECT_DOUBLE_EQ(m.at("f1"), 0.5);
  EXPECT_DOUBLE_EQ(m.at("kappa"), 0.0);
}

TEST(ClassificationMetrics, DropsKappaWhenOnlyOneClassIsSeenOrPredicted) {
  const auto m = classification_metrics({{0.9, 0.1}, {0.8, 0.2}}, {0, 0});
  EXPECT_EQ(m.count("kappa"), 0u);
  EXPECT_DOUBLE_EQ(m.at("accuracy"), 1.0);
}

TEST(ConfusionMatrix, CountsTrueClassByPredictedClass) {
  const auto counts =
      confusion_matrix(/*predictions=*/{0, 1, 1, 2, 0, 2}, /*labels=*/{0, 0, 1, 2, 2, 2}, 3);
  const std::vector<std::vector<int64_t>> expected{{1, 1, 0}, {0, 1, 0}, {1, 0, 2}};
  EXPECT_EQ(counts, expected);
}

TEST(ConfusionMatrix, ThrowsNamingTheItemWhenAClassIsOutOfRange) {
  MIL_EXPECT_THROW_WITH(confusion_matrix({0, 3}, {0, 1}, 3), "item 1");
  MIL_EXPECT_THROW_WITH(confusion_matrix({0}, {-1}, 3), "outside [0, 3)");
}

TEST(MacroPrecisionRecallF1, MatchesAHandWorkedThreeClassCase) {
  // labels 0 0 0 1 1 2, predictions 0 0 1 1 2 2:
  //   class 0: tp 2, fp 0, fn 1 -> P 1,   R 2/3, F1 2*2/(4+0+1) = 4/5
  //   class 1: tp 1, fp 1, fn 1 -> P 1/2, R 1/2, F1 2/(2+1+1)   = 1/2
  //   class 2: tp 1, fp 1, fn 0 -> P 1/2, R 1,   F1 2/(2+1+0)   = 2/3
  // Class 3 (class_count 4) has no targets and no predictions, so it is left out of the means.
  const std::vector<int> labels{0, 0, 0, 1, 1, 2};
  const std::vector<int> predictions{0, 0, 1, 1, 2, 2};
  for (int class_count : {3, 4}) {
    const MacroScores s = precision_recall_f1_macro(predictions, labels, class_count);
    EXPECT_NEAR(s.precision, (1.0 + 0.5 + 0.5) / 3.0, 1e-12) << class_count;
    EXPECT_NEAR(s.recall, (2.0 / 3.0 + 0.5 + 1.0) / 3.0, 1e-12) << class_count;
    EXPECT_NEAR(s.f1, (0.8 + 0.5 + 2.0 / 3.0) / 3.0, 1e-12) << class_count;
  }
}

TEST(MacroPrecisionRecallF1, CountsAPredictedButAbsentClassAsZero) {
  // Class 0 is predicted once but never a target: tp 0, fp 1, fn 0 -> P 0, R 0/0 = 0
  // (zero_division), F1 0. Class 1: tp 1, fp 0, fn 1 -> P 1, R 1/2, F1 2/3.
  const MacroScores s = precision_recall_f1_macro({0, 1}, {1, 1}, 2);
  EXPECT_DOUBLE_EQ(s.precision, 0.5);
  EXPECT_DOUBLE_EQ(s.recall, 0.25);
  EXPECT_NEAR(s.f1, 1.0 / 3.0, 1e-12);
  // balanced_accuracy keeps sklearn's rule (classes present in the labels only), so it differs
  // here.
  EXPECT_DOUBLE_EQ(balanced_accuracy({0, 1}, {1, 1}), 0.5);
}

TEST(MacroPrecisionRecallF1, IsNaNForEmptyInput) {
  const MacroScores s = precision_recall_f1_macro({}, {}, 2);
  EXPECT_TRUE(std::isnan(s.precision) && std::isnan(s.recall) && std::isnan(s.f1));
}

TEST(CohenKappa, IsOneForPerfectAgreement) {
  EXPECT_DOUBLE_EQ(cohen_kappa({0, 1, 2, 2, 1}, {0, 1, 2, 2, 1}, 3), 1.0);
}

TEST(CohenKappa, IsZeroForChanceLevelAgreement) {
  // p_o = 2/4; rows 2, 2 and columns 2, 2 give p_e = (4 + 4) / 16 = 1/2.
  EXPECT_DOUBLE_EQ(cohen_kappa({0, 1, 0, 1}, {0, 0, 1, 1}, 2), 0.0);
}

TEST(CohenKappa, MatchesAHandWorkedTable) {
  // Confusion [true][pred] = {{20, 5}, {10, 15}}, n = 50: p_o = 35/50 = 0.7;
  // rows 25, 25 and columns 30, 20 give p_e = (25*30 + 25*20) / 2500 = 0.5; kappa = 0.2 / 0.5 =
  // 0.4.
  std::vector<int> labels, predictions;
  const auto add = [&](int t, int p, int count) {
    labels.insert(labels.end(), std::size_t(count), t);
    predictions.insert(predictions.end(), std::size_t(count), p);
  };
  add(0, 0, 20);
  add(0, 1, 5);
  add(1, 0, 10);
  add(1, 1, 15);
  EXPECT_NEAR(cohen_kappa(predictions, labels, 2), 0.4, 1e-12);
}

TEST(CohenKappa, IsNaNWhenChanceAgreementIsCertain) {
  // One class in both labels and predictions: p_o = p_e = 1, kappa = 0/0.
  EXPECT_TRUE(std::isnan(cohen_kappa({1, 1, 1}, {1, 1, 1}, 2)));
  EXPECT_TRUE(std::isnan(cohen_kappa({}, {}, 2)));
}

TEST(YoudenThreshold, PicksTheScoreThatMaximisesTprMinusFpr) {
  // Thresholds high to low (score >= t is positive), labels 0 1 0 1 1 at scores .2 .3 .6 .7 .9:
  //   .9: TPR 1/3, FPR 0 -> 1/3;  .7: 2/3, 0 -> 2/3;  .6: 2/3, 1/2 -> 1/6;
  //   .3: 1, 1/2 -> 1/2;  .2: 1, 1 -> 0.
  const std::vector<double> scores{0.2, 0.3, 0.6, 0.7, 0.9};
  const double t = youden_threshold(scores, {0, 1, 0, 1, 1});
  EXPECT_DOUBLE_EQ(t, 0.7);
  EXPECT_EQ(predictions_at_threshold(scores, t), (std::vector<int>{0, 0, 0, 1, 1}));
}

TEST(YoudenThreshold, BreaksTiesTowardsTheHighestThreshold) {
  // sklearn's example: .8: TPR 1/2, FPR 0 -> 1/2;  .4: 1/2, 1/2 -> 0;  .35: 1, 1/2 -> 1/2;  .1: 1,
  // 1 -> 0.
  EXPECT_DOUBLE_EQ(youden_threshold({0.1, 0.4, 0.35, 0.8}, {0, 0, 1, 1}), 0.8);
}

TEST(YoudenThreshold, ReturnsInfinityWhenNoThresholdBeatsPredictingNothingPositive) {
  // A reversed ranking: every finite threshold has J <= 0, tying or losing to +infinity (J = 0).
  const double t = youden_threshold({0.9, 0.8, 0.2, 0.1}, {0, 0, 1, 1});
  EXPECT_TRUE(std::isinf(t) && t > 0);
  EXPECT_EQ(predictions_at_threshold({0.9, 0.1}, t), (std::vector<int>{0, 0}));
}

TEST(YoudenThreshold, IsNaNWhenOneClassIsAbsent) {
  EXPECT_TRUE(std::isnan(youden_threshold({0.1, 0.9}, {1, 1})));
}

TEST(CIndex, IsOneForRisksOrderedWithEventTimes) {
  // Earlier event, higher risk; all events.
  EXPECT_DOUBLE_EQ(harrell_c_index({0.9, 0.7, 0.4, 0.1}, {1, 2, 3, 4}, {1, 1, 1, 1}), 1.0);
}

TEST(CIndex, IsZeroForReversedRisks) {
  EXPECT_DOUBLE_EQ(harrell_c_index({0.1, 0.4, 0.7, 0.9}, {1, 2, 3, 4}, {1, 1, 1, 1}), 0.0);
}

TEST(CIndex, IsOneHalfWhenAllRisksAreTied) {
  EXPECT_DOUBLE_EQ(harrell_c_index({0.3, 0.3, 0.3, 0.3}, {1, 2, 3, 4}, {1, 0, 1, 0}), 0.5);
  // Within tied_tol counts as a tie too.
  EXPECT_DOUBLE_EQ(harrell_c_index({0.5 + 1e-9, 0.5}, {1, 2}, {1, 1}), 0.5);
}

TEST(CIndex, ACensoredSubjectBeforeAnEventIsNotComparable) {
  // Censored at 1, event at 2: no comparable pair at all.
  EXPECT_TRUE(std::isnan(harrell_c_index({0.1, 0.9}, {1, 2}, {0, 1})));
  // Event at 1, censored at 2: one comparable pair, concordant.
  EXPECT_DOUBLE_EQ(harrell_c_index({0.9, 0.1}, {1, 2}, {1, 0}), 1.0);
}

TEST(CIndex, AnEventAndACensoringAtTheSameTimeAreComparable) {
  EXPECT_DOUBLE_EQ(harrell_c_index({0.9, 0.1}, {2, 2}, {1, 0}), 1.0);
  EXPECT_DOUBLE_EQ(harrell_c_index({0.1, 0.9}, {2, 2}, {1, 0}), 0.0);
  // Two events at the same time are not comparable.
  EXPECT_TRUE(std::isnan(harrell_c_index({0.9, 0.1}, {2, 2}, {1, 1})));
}

TEST(CIndex, MatchesAHandWorkedMixedCase) {
  // (time, event, risk): A (1, 1, .9), B (2, 0, .5), C (3, 1, .7), D (3, 0, .7), E (4, 1, .8).
  // A's partners B C D E (all later): .9 beats .5 .7 .7 .8 -> 4 concordant.
  // C's partners: E (later) -> .7 < .8 discordant; D (same time, censored) -> tied risk, 1/2.
  // B and D are censored; E has no later partner. C = (4 + 0 + 1/2) / 6 = 3/4.
  EXPECT_DOUBLE_EQ(harrell_c_index({0.9, 0.5, 0.7, 0.7, 0.8}, {1, 2, 3, 3, 4}, {1, 0, 1, 0, 1}),
                   0.75);
}

TEST(CIndex, ThrowsWhenLengthsDiffer) {
  MIL_EXPECT_THROW_WITH(harrell_c_index({0.1, 0.2}, {1}, {1, 1}), "harrell_c_index");
}

}  // namespace mil
