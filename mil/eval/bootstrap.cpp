#include "mil/eval/bootstrap.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/multinomial.h>
#include <ATen/ops/ones.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>

#include "mil/eval/metrics.h"

namespace mil {
namespace {

// Percentile q in [0, 1] of sorted values: position q (m - 1), linear between its two neighbours
// (numpy.percentile "linear", torch.quantile default).
double percentile_sorted(const std::vector<double>& sorted, double q) {
  const double position = q * double(sorted.size() - 1);
  const auto below = std::size_t(std::floor(position));
  const std::size_t above = std::min(below + 1, sorted.size() - 1);
  return sorted[below] + (position - double(below)) * (sorted[above] - sorted[below]);
}
}  // namespace

std::vector<std::vector<int64_t>> bootstrap_indices(int64_t n, int resamples, int fold_index) {
  if (n < 1)
    throw std::invalid_argument("bootstrap_indices: n must be >= 1, got " + std::to_string(n));
  if (resamples < 0) throw std::invalid_argument("bootstrap_indices: resamples must be >= 0");
  if (fold_index < 0) throw std::invalid_argument("bootstrap_indices: fold_index must be >= 0");
  // The reference: generator = torch.Generator(); generator.manual_seed(seed); then for each
  // resample torch.multinomial(torch.ones(size), num_samples=size, replacement=True,
  // generator=generator).
  at::Generator generator =
      at::detail::createCPUGenerator(kBootstrapSeedOffset + uint64_t(fold_index));
  const at::Tensor weights = at::ones({n}, at::kFloat);
  std::vector<std::vector<int64_t>> out;
  out.reserve(std::size_t(resamples));
  for (int r = 0; r < resamples; ++r) {
    const at::Tensor sample =
        at::multinomial(weights, n, /*replacement=*/true, generator).contiguous();
    const int64_t* data = sample.data_ptr<int64_t>();
    out.emplace_back(data, data + n);
  }
  return out;
}

BootstrapSummary summarize_bootstrap(const std::vector<double>& values) {
  std::vector<double> kept;
  kept.reserve(values.size());
  for (double v : values) {
    if (!std::isnan(v)) kept.push_back(v);
  }
  BootstrapSummary s;
  s.resamples_used = int(kept.size());
  s.resamples_skipped = int(values.size() - kept.size());
  if (kept.empty()) {
    s.mean = s.std = s.ci_low = s.ci_high = kNaN;
    return s;
  }
  // Sums of deviations from the first value (the shifted-data form): less cancellation than summing
  // raw values, and a constant metric gets mean = that value and std = 0 exactly.
  const double m = double(kept.size());
  const double shift = kept.front();
  double deviation_sum = 0.0;
  for (double v : kept) deviation_sum += v - shift;
  s.mean = shift + deviation_sum / m;
  double squares = 0.0;
  for (double v : kept) squares += (v - s.mean) * (v - s.mean);
  s.std = kept.size() < 2 ? kNaN : std::sqrt(squares / (m - 1.0));
  std::sort(kept.begin(), kept.end());
  s.ci_low = percentile_sorted(kept, 0.025);
  s.ci_high = percentile_sorted(kept, 0.975);
  return s;
}

BootstrapSummary bootstrap_metric(
    const std::vector<std::vector<int64_t>>& indices,
    const std::function<double(const std::vector<int64_t>& rows)>& metric) {
  std::vector<double> values;
  values.reserve(indices.size());
  for (const auto& rows : indices) values.push_back(metric(rows));
  return summarize_bootstrap(values);
}

std::map<std::string, BootstrapSummary> bootstrap_classification_metrics(
    const std::vector<std::vector<double>>& probabilities, const std::vector<int>& labels,
    const std::vector<std::vector<int64_t>>& indices) {
  // Every key any resample produced; a resample lacking a key contributes NaN (skipped) to it.
  std::map<std::string, std::vector<double>> values;
  for (std::size_t r = 0; r < indices.size(); ++r) {
    const auto metrics =
        classification_metrics(take_rows(probabilities, indices[r]), take_rows(labels, indices[r]));
    for (const auto& [key, value] : metrics) {
      auto& column = values[key];
      column.resize(r, kNaN);
      column.push_back(value);
    }
  }
  std::map<std::string, BootstrapSummary> out;
  for (auto& [key, column] : values) {
    column.resize(indices.size(), kNaN);
    out[key] = summarize_bootstrap(column);
  }
  return out;
}

}  // namespace mil
