#include "orchestrator/leaderboard/stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>

namespace mil::orch::stats {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
/// Differences this close to 0 are zero, and absolute differences this close are tied: metrics
/// in [0, 1] that differ by float noise (0.9 - 0.8 vs 0.8 - 0.7) are the same difference.
constexpr double kTieTolerance = 1e-12;
/// Largest n whose Wilcoxon p-value is computed exactly (2^25 subsets fit a double exactly).
constexpr int kExactWilcoxonMax = 25;

/// Nemenyi q_0.05 for k = 2..50: scipy 1.10.1
/// `stats.studentized_range.ppf(0.95, k, np.inf) / np.sqrt(2)`, rounded to 6 decimals; k = 2..10
/// agree with Demšar (2006) Table 5a
/// (1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164).
constexpr double kNemenyiQ05[] = {
    1.959964, 2.343701, 2.569032, 2.727774, 2.849705, 2.948320, 3.030878, 3.101730, 3.163684,
    3.218654, 3.268004, 3.312739, 3.353618, 3.391230, 3.426041, 3.458425, 3.488685, 3.517073,
    3.543799, 3.569040, 3.592946, 3.615646, 3.637252, 3.657861, 3.677556, 3.696413, 3.714498,
    3.731869, 3.748578, 3.764672, 3.780193, 3.795179, 3.809664, 3.823680, 3.837254, 3.850413,
    3.863181, 3.875579, 3.887627, 3.899344, 3.910747, 3.921852, 3.932673, 3.943224, 3.953518,
    3.963566, 3.973379, 3.982969, 3.992343};

/// The continued fraction for I_x(a, b) (Numerical Recipes §6.4, modified Lentz).
double beta_continued_fraction(double a, double b, double x) {
  constexpr int kMaxIterations = 500;
  constexpr double kEpsilon = 1e-15;
  constexpr double kTiny = 1e-300;
  const double qab = a + b, qap = a + 1, qam = a - 1;
  double c = 1, d = 1 - qab * x / qap;
  if (std::fabs(d) < kTiny) d = kTiny;
  d = 1 / d;
  double h = d;
  for (int m = 1; m <= kMaxIterations; ++m) {
    const int m2 = 2 * m;
    double aa = m * (b - m) * x / ((qam + m2) * (a + m2));  // even step
    d = 1 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    h *= d * c;
    aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));  // odd step
    d = 1 + aa * d;
    if (std::fabs(d) < kTiny) d = kTiny;
    c = 1 + aa / c;
    if (std::fabs(c) < kTiny) c = kTiny;
    d = 1 / d;
    const double delta = d * c;
    h *= delta;
    if (std::fabs(delta - 1) < kEpsilon) return h;
  }
  throw std::runtime_error(
      "incomplete beta: the continued fraction did not converge for a=" + std::to_string(a) +
      ", b=" + std::to_string(b) + ", x=" + std::to_string(x));
}

/// Ascending average ranks (1-based) of `values`, ties within kTieTolerance sharing the average;
/// `tie_sizes` gets the size of every group of two or more.
std::vector<double> ascending_ranks(const std::vector<double>& values,
                                    std::vector<int>* tie_sizes) {
  std::vector<std::size_t> order(values.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return values[a] < values[b]; });
  std::vector<double> ranks(values.size());
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i + 1;
    while (j < order.size() && values[order[j]] - values[order[i]] <= kTieTolerance) ++j;
    const double average = (double(i + 1) + double(j)) / 2;  // ranks i+1..j
    for (std::size_t k = i; k < j; ++k) ranks[order[k]] = average;
    if (tie_sizes != nullptr && j - i > 1) tie_sizes->push_back(int(j - i));
    i = j;
  }
  return ranks;
}

/// Linear-interpolation quantile of sorted values (numpy's default "linear" method).
double quantile_sorted(const std::vector<double>& sorted, double q) {
  const double position = q * double(sorted.size() - 1);
  const auto below = std::size_t(std::floor(position));
  const std::size_t above = std::min(below + 1, sorted.size() - 1);
  return sorted[below] + (position - double(below)) * (sorted[above] - sorted[below]);
}

}  // namespace

double mean(const std::vector<double>& values) {
  if (values.empty()) return kNaN;
  return std::accumulate(values.begin(), values.end(), 0.0) / double(values.size());
}

double population_std(const std::vector<double>& values) {
  if (values.empty()) return kNaN;
  const double m = mean(values);
  double squares = 0;
  for (double v : values) squares += (v - m) * (v - m);
  return std::sqrt(squares / double(values.size()));
}

double sample_variance(const std::vector<double>& values) {
  if (values.size() < 2) return kNaN;
  const double m = mean(values);
  double squares = 0;
  for (double v : values) squares += (v - m) * (v - m);
  return squares / double(values.size() - 1);
}

double regularized_incomplete_beta(double a, double b, double x) {
  if (!(a > 0) || !(b > 0) || !(x >= 0 && x <= 1)) {
    throw std::invalid_argument(
        "incomplete beta: needs a, b > 0 and x in [0, 1], got a=" + std::to_string(a) +
        ", b=" + std::to_string(b) + ", x=" + std::to_string(x));
  }
  if (x == 0) return 0;
  if (x == 1) return 1;
  const double front = std::exp(std::lgamma(a + b) - std::lgamma(a) - std::lgamma(b) +
                                a * std::log(x) + b * std::log1p(-x));
  if (x < (a + 1) / (a + b + 2)) return front * beta_continued_fraction(a, b, x) / a;
  return 1 - front * beta_continued_fraction(b, a, 1 - x) / b;
}

double student_t_cdf(double t, double df) {
  if (!(df > 0))
    throw std::invalid_argument("student t: degrees of freedom must be > 0, got " +
                                std::to_string(df));
  if (std::isnan(t)) return kNaN;
  if (std::isinf(t)) return t > 0 ? 1.0 : 0.0;
  // P(T > |t|) = I_x(df/2, 1/2) / 2 with x = df / (df + t^2). Near t = 0, x is close to 1 and
  // 1 - x would lose digits, so use 1 - I_{1-x}(1/2, df/2) with 1 - x = t^2 / (df + t^2) directly.
  const double x = df / (df + t * t);
  const double tail =
      0.5 * (x < 0.5 ? regularized_incomplete_beta(df / 2, 0.5, x)
                     : 1 - regularized_incomplete_beta(0.5, df / 2, t * t / (df + t * t)));
  return t >= 0 ? 1 - tail : tail;
}

double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

Interval bootstrap_mean_interval(const std::vector<double>& values, std::uint64_t seed,
                                 int resamples, double level) {
  if (values.empty() || resamples < 1) return {kNaN, kNaN};
  std::mt19937_64 engine(seed);
  const std::size_t n = values.size();
  std::vector<double> means(std::size_t(resamples), 0.0);
  for (double& m : means) {
    double sum = 0;
    for (std::size_t i = 0; i < n; ++i) sum += values[engine() % n];
    m = sum / double(n);
  }
  std::sort(means.begin(), means.end());
  return {quantile_sorted(means, (1 - level) / 2), quantile_sorted(means, (1 + level) / 2)};
}

TTest corrected_resampled_t_test(const std::vector<double>& differences, double test_train_ratio) {
  TTest out;
  out.n = int(differences.size());
  out.test_train_ratio = test_train_ratio;
  out.mean_difference = mean(differences);
  out.df = out.n - 1;
  if (out.n < 2) {
    out.t = out.p_value = kNaN;
    return out;
  }
  const double variance = sample_variance(differences);
  if (std::sqrt(variance) <=
      kTieTolerance) {  // every difference equal (up to float noise): no spread
    const bool zero = std::fabs(out.mean_difference) <= kTieTolerance;
    out.t = zero ? 0 : std::copysign(INFINITY, out.mean_difference);
    out.p_value = zero ? 1 : 0;
    return out;
  }
  const double scale = std::sqrt((1.0 / out.n + test_train_ratio) * variance);
  out.t = out.mean_difference / scale;
  out.p_value = std::min(1.0, 2 * (1 - student_t_cdf(std::fabs(out.t), out.df)));
  return out;
}

Wilcoxon wilcoxon_signed_rank(const std::vector<double>& differences) {
  Wilcoxon out;
  std::vector<double> nonzero;
  for (double d : differences) {
    if (std::fabs(d) <= kTieTolerance) {
      ++out.zeros;
    } else {
      nonzero.push_back(d);
    }
  }
  out.n = int(nonzero.size());
  if (out.n == 0) {
    out.method = "none";
    out.p_value = kNaN;
    return out;
  }
  std::vector<double> magnitudes;
  for (double d : nonzero) magnitudes.push_back(std::fabs(d));
  std::vector<int> tie_sizes;
  const std::vector<double> ranks = ascending_ranks(magnitudes, &tie_sizes);
  for (int i = 0; i < out.n; ++i) (nonzero[i] > 0 ? out.w_plus : out.w_minus) += ranks[i];
  out.ties = !tie_sizes.empty();
  out.statistic = std::min(out.w_plus, out.w_minus);
  const double n = out.n;
  if (out.n <= kExactWilcoxonMax && !out.ties) {
    // counts[s] = number of subsets of {1..n} whose sum is s: the null distribution of W+.
    const int max_sum = out.n * (out.n + 1) / 2;
    std::vector<double> counts(std::size_t(max_sum) + 1, 0.0);
    counts[0] = 1;
    for (int rank = 1; rank <= out.n; ++rank) {
      for (int s = max_sum; s >= rank; --s) counts[s] += counts[s - rank];
    }
    const int w = int(std::lround(out.w_plus));
    double at_most = 0, at_least = 0;
    for (int s = 0; s <= max_sum; ++s) (s <= w ? at_most : at_least) += counts[s];
    at_least += counts[w];  // P(W+ >= w) includes w itself
    const double total = std::ldexp(1.0, out.n);
    out.method = "exact";
    out.p_value = std::min(1.0, 2 * std::min(at_most, at_least) / total);
    return out;
  }
  double variance = n * (n + 1) * (2 * n + 1) / 24;
  for (int t : tie_sizes) variance -= (double(t) * t * t - t) / 48;
  const double z = (out.w_plus - n * (n + 1) / 4) / std::sqrt(variance);
  out.method = "normal";
  out.p_value = std::min(1.0, 2 * normal_cdf(-std::fabs(z)));
  return out;
}

std::vector<double> average_ranks_descending(const std::vector<double>& scores) {
  std::vector<double> negated;
  for (double s : scores) negated.push_back(-s);
  return ascending_ranks(negated, nullptr);
}

double nemenyi_q05(int k) {
  constexpr int kMax = 1 + int(sizeof(kNemenyiQ05) / sizeof(kNemenyiQ05[0]));
  if (k < 2 || k > kMax) {
    throw std::out_of_range("Nemenyi q_0.05 is tabulated for 2 to " + std::to_string(kMax) +
                            " methods, not " + std::to_string(k));
  }
  return kNemenyiQ05[k - 2];
}

double nemenyi_critical_difference(int k, int benchmarks) {
  if (benchmarks < 1)
    throw std::invalid_argument("critical difference: needs at least one benchmark");
  return nemenyi_q05(k) * std::sqrt(double(k) * (k + 1) / (6.0 * benchmarks));
}

}  // namespace mil::orch::stats
