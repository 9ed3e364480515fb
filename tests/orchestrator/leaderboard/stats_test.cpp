#include "orchestrator/leaderboard/stats.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace mil::orch::stats {
namespace {

// Reference values marked "scipy" were computed once with Debian 12's python3-scipy 1.10.1, e.g.
// `scipy.special.betainc(10, 20, 0.35)` or `scipy.stats.t.cdf(-1.5, 9)`, and are pasted here; the
// tests do not need scipy.

TEST(LeaderboardStats, MeanPopulationStdAndSampleVarianceByHand) {
  const std::vector<double> v = {0.8, 0.9, 1.0};
  EXPECT_NEAR(mean(v), 0.9, 1e-15);
  EXPECT_NEAR(population_std(v), std::sqrt(0.02 / 3), 1e-15);  // squares 0.01 + 0 + 0.01 over n
  EXPECT_NEAR(sample_variance(v), 0.01, 1e-15);                // over n - 1
  EXPECT_TRUE(std::isnan(sample_variance({1.0})));
  EXPECT_EQ(population_std({0.7}), 0.0);
}

TEST(LeaderboardStats, IncompleteBetaMatchesClosedFormsAndScipy) {
  // I_x(2, 3) = sum_{j=2..4} C(4, j) x^j (1-x)^(4-j) = 0.3456 + 0.1536 + 0.0256 at x = 0.4.
  EXPECT_NEAR(regularized_incomplete_beta(2, 3, 0.4), 0.5248, 1e-14);
  EXPECT_NEAR(regularized_incomplete_beta(1, 1, 0.77), 0.77, 1e-14);  // the uniform CDF
  // I_x(1/2, 1/2) = (2/pi) asin(sqrt(x)), the arcsine distribution.
  EXPECT_NEAR(regularized_incomplete_beta(0.5, 0.5, 0.3), 2 / M_PI * std::asin(std::sqrt(0.3)),
              1e-13);
  EXPECT_NEAR(regularized_incomplete_beta(0.5, 0.5, 0.3), 0.3690101195655454, 1e-13);  // scipy
  EXPECT_NEAR(regularized_incomplete_beta(5, 0.5, 0.9), 0.316642915020012, 1e-13);     // scipy
  EXPECT_NEAR(regularized_incomplete_beta(10, 20, 0.35), 0.592386663663905, 1e-13);    // scipy
  EXPECT_EQ(regularized_incomplete_beta(3, 4, 0.0), 0.0);
  EXPECT_EQ(regularized_incomplete_beta(3, 4, 1.0), 1.0);
  EXPECT_THROW(regularized_incomplete_beta(0, 1, 0.5), std::invalid_argument);
}

TEST(LeaderboardStats, StudentTCdfMatchesClosedFormsAndScipy) {
  EXPECT_NEAR(student_t_cdf(0.7, 1), 0.5 + std::atan(0.7) / M_PI, 1e-14);                 // Cauchy
  EXPECT_NEAR(student_t_cdf(1.3, 2), 0.5 + 1.3 / (2 * std::sqrt(2 + 1.3 * 1.3)), 1e-14);  // df = 2
  EXPECT_EQ(student_t_cdf(0, 7), 0.5);
  EXPECT_NEAR(student_t_cdf(2.0, 3), 0.9303370157205785, 1e-13);       // scipy
  EXPECT_NEAR(student_t_cdf(-1.5, 9), 0.08392532802853743, 1e-13);     // scipy
  EXPECT_NEAR(student_t_cdf(4.2, 24), 0.9998412474170293, 1e-13);      // scipy
  EXPECT_NEAR(student_t_cdf(2.262157, 9), 0.9749999933477842, 1e-13);  // the 97.5% quantile, scipy
  EXPECT_NEAR(student_t_cdf(-3.0, 2.5), 0.036288047774515914, 1e-13);  // scipy
  EXPECT_NEAR(student_t_cdf(1e-3, 100), 0.5003979461199484, 1e-13);    // scipy
  EXPECT_EQ(student_t_cdf(INFINITY, 4), 1.0);
}

TEST(LeaderboardStats, NormalCdfAtKnownQuantiles) {
  EXPECT_EQ(normal_cdf(0), 0.5);
  EXPECT_NEAR(normal_cdf(1.959963984540054), 0.975, 1e-15);
  EXPECT_NEAR(normal_cdf(-1), 0.15865525393145707, 1e-15);
}

TEST(LeaderboardStats, BootstrapIntervalIsDeterministicAndSpansTheResampledMeans) {
  // Two values: a resampled mean is 0, 0.5 or 1 with probabilities 1/4, 1/2, 1/4, so with 2,000
  // resamples the 2.5% and 97.5% quantiles are 0 and 1.
  const Interval two = bootstrap_mean_interval({0.0, 1.0}, /*seed=*/7);
  EXPECT_EQ(two.low, 0.0);
  EXPECT_EQ(two.high, 1.0);
  const Interval constant = bootstrap_mean_interval({0.7, 0.7, 0.7}, /*seed=*/7);
  EXPECT_NEAR(constant.low, 0.7, 1e-15);
  EXPECT_NEAR(constant.high, 0.7, 1e-15);
  const std::vector<double> v = {0.71, 0.84, 0.66, 0.92, 0.78};
  const Interval a = bootstrap_mean_interval(v, 11), b = bootstrap_mean_interval(v, 11);
  EXPECT_EQ(a.low, b.low);
  EXPECT_EQ(a.high, b.high);
  EXPECT_LT(a.low, mean(v));
  EXPECT_GT(a.high, mean(v));
  EXPECT_GE(a.low, 0.66);
  EXPECT_LE(a.high, 0.92);
  EXPECT_TRUE(std::isnan(bootstrap_mean_interval({}, 1).low));
}

TEST(LeaderboardStats, CorrectedResampledTTestByHandAndScipy) {
  // d = 0.02, 0.04, 0.06, 0.08: mean 0.05, s^2 = (0.0009 + 0.0001 + 0.0001 + 0.0009) / 3. With
  // n_test/n_train = 1/4 the variance factor is 1/4 + 1/4 = 1/2 (uncorrected: 1/4), so
  // t = 0.05 / sqrt(0.5 * 0.002 / 3) = 2.7386 (uncorrected 3.873); p from scipy's t.sf(t, 3) * 2.
  const TTest t = corrected_resampled_t_test({0.02, 0.04, 0.06, 0.08}, 0.25);
  EXPECT_EQ(t.n, 4);
  EXPECT_EQ(t.df, 3);
  EXPECT_NEAR(t.mean_difference, 0.05, 1e-15);
  EXPECT_NEAR(t.t, 0.05 / std::sqrt(0.5 * 0.002 / 3), 1e-12);
  EXPECT_NEAR(t.t, 2.7386127875258306, 1e-12);
  EXPECT_NEAR(t.p_value, 0.07142153823145017, 1e-12);
  // Ten differences, ratio 0.25 (scipy: mean / sqrt((1/10 + 0.25) * var(ddof=1)), 2 * t.sf(|t|,
  // 9)).
  const TTest ten = corrected_resampled_t_test(
      {0.031, -0.012, 0.044, 0.027, 0.005, 0.019, -0.003, 0.038, 0.022, 0.016}, 0.25);
  EXPECT_NEAR(ten.t, 1.7756054311846428, 1e-12);
  EXPECT_NEAR(ten.p_value, 0.10953348975685236, 1e-12);
}

TEST(LeaderboardStats, CorrectedTTestEdgeCases) {
  EXPECT_TRUE(std::isnan(corrected_resampled_t_test({0.1}, 0.25).p_value));
  const TTest same = corrected_resampled_t_test({0.05, 0.05, 0.05}, 0.25);
  EXPECT_EQ(same.p_value, 0.0);
  EXPECT_TRUE(std::isinf(same.t));
  EXPECT_EQ(corrected_resampled_t_test({0.0, 0.0}, 0.25).p_value, 1.0);
}

TEST(LeaderboardStats, WilcoxonExactByHand) {
  // n = 5, all positive: W+ = 15 is reached by 1 of 2^5 sign patterns, so p = 2 / 32.
  const Wilcoxon all = wilcoxon_signed_rank({0.1, 0.2, 0.3, 0.4, 0.5});
  EXPECT_EQ(all.method, "exact");
  EXPECT_EQ(all.w_plus, 15);
  EXPECT_EQ(all.statistic, 0);
  EXPECT_DOUBLE_EQ(all.p_value, 0.0625);
  // d = 1, 2, -3, 4: W+ = 7, W- = 3. Subsets of {1..4} with sum <= 3: {}, {1}, {2}, {3}, {1,2},
  // so P(W+ >= 7) = P(W+ <= 3) = 5/16 and p = 10/16.
  const Wilcoxon four = wilcoxon_signed_rank({1, 2, -3, 4});
  EXPECT_EQ(four.w_plus, 7);
  EXPECT_EQ(four.w_minus, 3);
  EXPECT_DOUBLE_EQ(four.p_value, 0.625);
}

TEST(LeaderboardStats, WilcoxonMatchesScipyExactAndNormalWithTies) {
  // scipy.stats.wilcoxon(d, method='exact')
  const Wilcoxon exact =
      wilcoxon_signed_rank({0.05, -0.02, 0.031, 0.04, 0.011, 0.06, -0.035, 0.07});
  EXPECT_EQ(exact.method, "exact");
  EXPECT_EQ(exact.statistic, 6);
  EXPECT_NEAR(exact.p_value, 0.109375, 1e-15);
  // Ties (0.125 x2, 0.375 x3, 0.0625 and 0.25 with both signs): the normal approximation with tie
  // correction; scipy.stats.wilcoxon(d, method='approx', correction=False).
  const Wilcoxon tied = wilcoxon_signed_rank(
      {0.125, 0.125, -0.25, 0.375, 0.375, 0.375, 0.0625, -0.0625, 0.5, 0.25, 0.3125, 0.1875});
  EXPECT_TRUE(tied.ties);
  EXPECT_EQ(tied.method, "normal");
  EXPECT_EQ(tied.statistic, 8);
  EXPECT_NEAR(tied.p_value, 0.014751872538073401, 1e-12);
  // n = 30 > 25 without ties: normal approximation; scipy method='approx', correction=False.
  const Wilcoxon thirty = wilcoxon_signed_rank(
      {0.010037,  0.018962,  0.001776,  -0.016718, -0.00364,  -0.019749, 0.011804,  0.050206,
       -0.004766, -0.008614, 0.024695,  0.020707,  0.013162,  -0.017914, 0.009122,  0.030859,
       -0.030326, -0.003728, -0.047037, -0.028686, -0.045252, 0.002947,  -0.028023, 0.018138,
       0.014703,  0.004392,  -0.065503, -0.006161, 0.008545,  0.013399});
  EXPECT_EQ(thirty.method, "normal");
  EXPECT_EQ(thirty.statistic, 226);
  EXPECT_NEAR(thirty.p_value, 0.8936443871266052, 1e-12);
}

TEST(LeaderboardStats, WilcoxonDropsZeroDifferencesBeforeRanking) {
  // Wilcox's method: the zeros go, the other 7 are ranked alone and, untied, tested exactly;
  // scipy.stats.wilcoxon of the 7 non-zero values with method='exact' gives 4.0, 0.109375.
  const Wilcoxon w =
      wilcoxon_signed_rank({0.0, 0.125, 0.25, -0.0625, 0.0, 0.375, 0.5, -0.1875, 0.4375});
  EXPECT_EQ(w.zeros, 2);
  EXPECT_EQ(w.n, 7);
  EXPECT_EQ(w.method, "exact");
  EXPECT_EQ(w.statistic, 4);
  EXPECT_NEAR(w.p_value, 0.109375, 1e-15);
  // Float noise is not a difference: 0.9 - 0.8 and 0.8 - 0.7 tie, 0.3 - 0.3 is zero.
  const Wilcoxon noisy = wilcoxon_signed_rank({0.9 - 0.8, 0.8 - 0.7, 0.3 - 0.3});
  EXPECT_EQ(noisy.zeros, 1);
  EXPECT_TRUE(noisy.ties);
  EXPECT_EQ(wilcoxon_signed_rank({0.0, 0.0}).method, "none");
}

TEST(LeaderboardStats, AverageRanksShareTiedPlaces) {
  EXPECT_EQ(average_ranks_descending({0.9, 0.7, 0.8}), (std::vector<double>{1, 3, 2}));
  EXPECT_EQ(average_ranks_descending({0.8, 0.9, 0.8, 0.7}), (std::vector<double>{2.5, 1, 2.5, 4}));
  EXPECT_EQ(average_ranks_descending({0.5, 0.5, 0.5}), (std::vector<double>{2, 2, 2}));
}

TEST(LeaderboardStats, NemenyiCriticalDifferenceMatchesDemsar) {
  EXPECT_NEAR(nemenyi_q05(2), 1.960, 5e-4);
  EXPECT_NEAR(nemenyi_q05(5), 2.728, 5e-4);
  EXPECT_NEAR(nemenyi_q05(10), 3.164, 5e-4);
  EXPECT_NEAR(nemenyi_q05(20), 3.543799, 1e-6);
  // Demšar (2006), section 3.2.4: k = 4 classifiers on N = 14 data sets give CD = 2.569 sqrt(20 /
  // 84) = 1.25.
  EXPECT_NEAR(nemenyi_critical_difference(4, 14), 1.2536, 1e-4);
  EXPECT_THROW(nemenyi_q05(1), std::out_of_range);
  EXPECT_THROW(nemenyi_q05(51), std::out_of_range);
}

}  // namespace
}  // namespace mil::orch::stats
