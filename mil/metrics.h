#pragma once
// Classification metrics on plain vectors (no tensors), so they are cheap to test and reuse.
#include <map>
#include <string>
#include <vector>

namespace mil {

/// Binary ROC-AUC = P(score of a random positive > score of a random negative), ties counting 1/2
/// (Mann-Whitney U with average ranks). labels are 0/1. Returns NaN when either class is absent.
double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels);

/// Macro one-vs-rest ROC-AUC over classes present in `labels` (as torchmetrics; for two classes it equals
/// roc_auc of the class-1 probability). probabilities[i][c] is P(class c | bag i).
double macro_roc_auc(const std::vector<std::vector<double>>& probabilities, const std::vector<int>& labels);

/// Fraction of predictions equal to their label. Returns NaN for empty input.
double accuracy(const std::vector<int>& predictions, const std::vector<int>& labels);

/// Mean over classes present in `labels` of per-class recall (the reference's "macro accuracy").
double balanced_accuracy(const std::vector<int>& predictions, const std::vector<int>& labels);

/// Index of the largest probability in each row (first one on ties).
std::vector<int> argmax_rows(const std::vector<std::vector<double>>& probabilities);

/// The skeleton's metric set: {"auc", "accuracy", "balanced_accuracy"}; NaN entries are left out
/// (e.g. AUC when a split holds one class only).
std::map<std::string, double> classification_metrics(const std::vector<std::vector<double>>& probabilities,
                                                      const std::vector<int>& labels);

}  // namespace mil
