#pragma once
// The reference's test-split bootstrap (engines/metrics.py DeterministicBootStrapper):
// every metric is recomputed on resamples of the test items and the fold reports the mean over
// resamples.
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace mil {

/// Added to the fold index to seed the resampling generator (the reference's `fold_curr +
/// 7784414403328510413`).
constexpr uint64_t kBootstrapSeedOffset = 7784414403328510413ULL;

/// The reference's resample count (`--num_bootstrap`).
constexpr int kBootstrapResamples = 1000;

/// Row indices of `resamples` bootstrap resamples of n items, bit-identical to the reference: one
/// CPU generator seeded with fold_index + kBootstrapSeedOffset, then per resample
/// multinomial(ones(n) [float32], n, replacement=true) from that same generator. The reference
/// re-seeds for every metric and every evaluation, so all metrics of a fold see these same
/// resamples. fold_index is 0-based (the reference's fold_curr).
std::vector<std::vector<int64_t>> bootstrap_indices(int64_t n, int resamples, int fold_index);

/// Summary of one metric over bootstrap resamples.
struct BootstrapSummary {
  double mean = 0.0;  ///< mean over used resamples (what the reference reports for the fold)
  double std =
      0.0;  ///< unbiased (n - 1) standard deviation over used resamples; NaN with fewer than 2
  double ci_low =
      0.0;  ///< 2.5th percentile, linear interpolation between order statistics (numpy default)
  double ci_high = 0.0;       ///< 97.5th percentile, same rule
  int resamples_used = 0;     ///< resamples whose metric was finite
  int resamples_skipped = 0;  ///< resamples whose metric was NaN (e.g. AUC of a one-class resample)
};

/// Summarises metric values, leaving out NaN ones (counted in resamples_skipped); all statistics
/// are NaN when no value is left. The reference would instead let one NaN turn its mean into NaN.
BootstrapSummary summarize_bootstrap(const std::vector<double>& values);

/// Applies `metric` to the rows of each resample and summarises the values (summarize_bootstrap).
BootstrapSummary bootstrap_metric(
    const std::vector<std::vector<int64_t>>& indices,
    const std::function<double(const std::vector<int64_t>& rows)>& metric);

/// values[rows[k]] for each k: the resampled copy of one per-item vector.
template <class T>
std::vector<T> take_rows(const std::vector<T>& values, const std::vector<int64_t>& rows) {
  std::vector<T> out;
  out.reserve(rows.size());
  for (int64_t r : rows) out.push_back(values.at(std::size_t(r)));
  return out;
}

/// classification_metrics on every resample, summarised per key; a key missing from a resample (its
/// metric was NaN there) counts as skipped for that key.
std::map<std::string, BootstrapSummary> bootstrap_classification_metrics(
    const std::vector<std::vector<double>>& probabilities, const std::vector<int>& labels,
    const std::vector<std::vector<int64_t>>& indices);

}  // namespace mil
