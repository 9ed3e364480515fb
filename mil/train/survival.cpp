#include "mil/train/survival.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace mil {
namespace {
constexpr double kEdgeMargin = 1e-6;  ///< The reference widens the outer edges by this much.
constexpr double kLogFloor = 1e-7;    ///< The reference clamps probabilities before log.

/// numpy.quantile with linear interpolation on sorted values.
double quantile_sorted(const std::vector<double>& sorted, double q) {
  const double position = q * double(sorted.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(position));
  const std::size_t above = std::min(below + 1, sorted.size() - 1);
  return sorted[below] + (position - double(below)) * (sorted[above] - sorted[below]);
}
}  // namespace

std::vector<double> survival_bin_edges(const std::vector<double>& times,
                                       const std::vector<int>& event_observed, int bin_count) {
  if (times.size() != event_observed.size())
    throw std::invalid_argument("survival_bin_edges: sizes differ");
  if (bin_count < 1) throw std::invalid_argument("survival_bin_edges: bin_count must be >= 1");
  std::vector<double> event_times;
  for (std::size_t i = 0; i < times.size(); ++i) {
    if (event_observed[i]) event_times.push_back(times[i]);
  }
  if (event_times.size() < 2) {
    throw std::invalid_argument("survival_bin_edges: need at least 2 cases with an event, got " +
                                std::to_string(event_times.size()));
  }
  std::sort(event_times.begin(), event_times.end());
  std::vector<double> edges(bin_count + 1);
  for (int k = 0; k <= bin_count; ++k)
    edges[k] = quantile_sorted(event_times, double(k) / bin_count);
  edges.front() = *std::min_element(times.begin(), times.end()) - kEdgeMargin;
  edges.back() = *std::max_element(times.begin(), times.end()) + kEdgeMargin;
  for (int k = 0; k < bin_count; ++k) {
    if (!(edges[k] < edges[k + 1])) {
      throw std::invalid_argument(
          "survival_bin_edges: quantile edges are not increasing (too many tied event times)");
    }
  }
  return edges;
}

int survival_bin(double time, const std::vector<double>& edges) {
  if (edges.size() < 2 || time < edges.front() || time >= edges.back()) {
    throw std::invalid_argument("survival_bin: time " + std::to_string(time) +
                                " is outside the bin edges");
  }
  const auto upper = std::upper_bound(edges.begin(), edges.end(), time);
  return int(upper - edges.begin()) - 1;
}

at::Tensor survival_nll(const at::Tensor& logits, int bin, bool censored, double alpha) {
  TORCH_CHECK(logits.dim() == 2 && logits.size(0) == 1, "survival_nll expects logits [1, B], got ",
              logits.sizes());
  TORCH_CHECK(bin >= 0 && bin < logits.size(1), "survival_nll: bin ", bin, " outside [0, ",
              logits.size(1), ")");
  const at::Tensor hazards = at::sigmoid(logits.to(at::kFloat)).squeeze(0);          // [B]
  const at::Tensor survival = at::cumprod(1 - hazards, 0);                           // [B]
  const at::Tensor padded = at::cat({at::ones({1}, survival.options()), survival});  // [B + 1]
  const double c = censored ? 1.0 : 0.0;
  const at::Tensor uncensored = -(1 - c) * (at::log(padded[bin].clamp_min(kLogFloor)) +
                                            at::log(hazards[bin].clamp_min(kLogFloor)));
  const at::Tensor censored_term = -c * at::log(padded[bin + 1].clamp_min(kLogFloor));
  return (1 - alpha) * (uncensored + censored_term) + alpha * uncensored;
}

double survival_risk(const at::Tensor& logits) {
  TORCH_CHECK(logits.dim() == 2 && logits.size(0) == 1, "survival_risk expects logits [1, B], got ",
              logits.sizes());
  const at::Tensor survival = at::cumprod(1 - at::sigmoid(logits.to(at::kDouble)), 1);
  return -survival.sum().item<double>();
}

}  // namespace mil
