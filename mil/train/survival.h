#pragma once
// Discrete-time survival as the reference does it (its `--loss nll_surv`, its quartile time bins
// and its C-index): event times cut into 4 bins at the quartiles of the uncensored times, a per-bin
// hazard head trained with the negative log-likelihood, and risk = -sum of the survival curve for
// Harrell's C-index.
#include <vector>

#include <ATen/core/Tensor.h>

namespace mil {

/// Bin edges from the quartiles (numpy/pandas linear interpolation) of the times of cases with an
/// event; the outer edges are then widened to min(all times) - 1e-6 and max(all times) + 1e-6.
/// Returns bin_count + 1 increasing edges. Throws when fewer than two events exist.
std::vector<double> survival_bin_edges(const std::vector<double>& times,
                                       const std::vector<int>& event_observed, int bin_count = 4);

/// Bin of `time` for left-closed intervals [edge_i, edge_{i+1}) (pandas cut, right=False).
int survival_bin(double time, const std::vector<double>& edges);

/// Discrete-time NLL for one bag: logits [1, B] are per-bin hazards h = sigmoid(logits),
/// S = cumprod(1 - h), S~ = [1, S_0 .. S_{B-1}]. With bin y and censorship c (1 = censored):
/// uncensored = -(1 - c) (log S~_y + log h_y), censored = -c log S~_{y+1}, all inside max(., 1e-7);
/// loss = (1 - alpha)(uncensored + censored) + alpha * uncensored.
at::Tensor survival_nll(const at::Tensor& logits, int bin, bool censored, double alpha = 0.0);

/// Risk score of a bag from its hazard logits [1, B]: -sum_k S_k (higher = earlier event).
double survival_risk(const at::Tensor& logits);

}  // namespace mil
