#pragma once
// The statistics behind the leaderboard, in plain C++ (no LibTorch, no external maths library):
// summaries of fold-runs, a seeded bootstrap interval of their mean, the corrected resampled t-test
// (Nadeau & Bengio 2003) and the Wilcoxon signed-rank test for paired differences, average ranks
// and the Nemenyi critical difference (Demšar 2006) across benchmarks.
#include <cstdint>
#include <string>
#include <vector>

namespace mil::orch::stats {

/// Arithmetic mean; NaN for no values.
double mean(const std::vector<double>& values);
/// sqrt(sum((x - mean)^2) / n), the population (ddof 0) standard deviation; 0 for one value.
double population_std(const std::vector<double>& values);
/// sum((x - mean)^2) / (n - 1), the unbiased (ddof 1) variance; NaN for fewer than two values.
double sample_variance(const std::vector<double>& values);

/// The regularised incomplete beta function I_x(a, b) for a, b > 0 and x in [0, 1], by the
/// continued fraction of Numerical Recipes §6.4 evaluated with the modified Lentz method (using
/// the symmetry I_x(a, b) = 1 - I_{1-x}(b, a) where it converges faster).
double regularized_incomplete_beta(double a, double b, double x);
/// P(T <= t) for Student's t with `df` > 0 degrees of freedom:
/// 1 - I_{df/(df+t^2)}(df/2, 1/2) / 2 for t >= 0, and the mirror image for t < 0.
double student_t_cdf(double t, double df);
/// P(Z <= z) for a standard normal Z.
double normal_cdf(double z);

/// A two-sided interval.
struct Interval {
  double low = 0;   ///< Lower end.
  double high = 0;  ///< Upper end.
};

/// Percentile bootstrap interval of the mean of `values`: `resamples` resamples with replacement
/// drawn by a mt19937_64 seeded with `seed` (index = next() % n), the means sorted, and the
/// (1-level)/2 and (1+level)/2 quantiles taken with linear interpolation (numpy's default).
/// Deterministic for given inputs; NaN ends for no values.
Interval bootstrap_mean_interval(const std::vector<double>& values, std::uint64_t seed,
                                 int resamples = 2000, double level = 0.95);

/// Corrected resampled t-test of paired differences d_1..d_n (Nadeau & Bengio 2003): the variance
/// of the mean is (1/n + n_test/n_train) * s^2 instead of s^2 / n, because the training sets of
/// cross-validation folds overlap; t = mean(d) / sqrt((1/n + n_test/n_train) s^2), df = n - 1,
/// two-sided p = 2 (1 - T_df(|t|)).
struct TTest {
  int n = 0;                    ///< Pairs.
  double mean_difference = 0;   ///< mean(d).
  double test_train_ratio = 0;  ///< n_test / n_train used in the correction.
  double t = 0;                 ///< Statistic (±inf when s = 0 and mean != 0).
  double df = 0;                ///< n - 1.
  double p_value = 1;           ///< Two-sided; NaN when n < 2.
};
TTest corrected_resampled_t_test(const std::vector<double>& differences, double test_train_ratio);

/// Wilcoxon signed-rank test of paired differences, two-sided. Zero differences (|d| <= 1e-12) are
/// dropped before ranking (Wilcox's method, scipy's default); |d| within 1e-12 of each other are
/// ties and share their average rank. The p-value is exact (the null distribution of W+ by
/// counting subsets of ranks 1..n) for n <= 25 non-zero differences without ties; otherwise the
/// normal approximation z = (W+ - n(n+1)/4) / sqrt(n(n+1)(2n+1)/24 - sum(t^3 - t)/48) over tie
/// groups of size t, without continuity correction.
struct Wilcoxon {
  int n = 0;             ///< Non-zero differences used.
  int zeros = 0;         ///< Zero differences dropped.
  bool ties = false;     ///< Some non-zero |d| are tied.
  double w_plus = 0;     ///< Sum of ranks of positive differences.
  double w_minus = 0;    ///< Sum of ranks of negative differences.
  double statistic = 0;  ///< min(W+, W-), as scipy reports for two-sided tests.
  std::string method;    ///< "exact", "normal", or "none" (n = 0).
  double p_value = 1;    ///< Two-sided; NaN when n = 0.
};
Wilcoxon wilcoxon_signed_rank(const std::vector<double>& differences);

/// Rank of each score, 1 for the highest, ties sharing the average of their ranks.
std::vector<double> average_ranks_descending(const std::vector<double>& scores);

/// q_0.05 of the Nemenyi test for k = 2..50 methods: the studentized range quantile
/// q(0.95; k, inf) / sqrt(2) (Demšar 2006, Table 5). Throws outside [2, 50].
double nemenyi_q05(int k);
/// Critical difference of average ranks at alpha 0.05: q_0.05(k) sqrt(k (k + 1) / (6 N)) for k
/// methods over N benchmarks.
double nemenyi_critical_difference(int k, int benchmarks);

}  // namespace mil::orch::stats
