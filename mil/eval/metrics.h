#pragma once
// Classification and survival metrics on plain vectors (no tensors), so they are cheap to test and
// reuse. Semantics follow the reference's evaluation (torchmetrics for classification,
// scikit-survival for the C-index; engines/metrics.py); where they differ from the textbook
// definition the function's comment says so.
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace mil {

/// What a metric is when it is undefined for its input (one class only, no comparable pairs).
inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Binary ROC-AUC = P(score of a random positive > score of a random negative), ties counting 1/2
/// (Mann-Whitney U with average ranks). labels are 0/1. Returns NaN when either class is absent.
double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels);

/// Macro one-vs-rest ROC-AUC over classes present in `labels` (for two classes it equals roc_auc of
/// the class-1 probability). probabilities[i][c] is P(class c | bag i). Equals torchmetrics' macro
/// AUROC when every class occurs; torchmetrics instead scores a class with no positives or no
/// negatives as 0 and averages it in (a one-class set gets 0 there, NaN here).
double macro_roc_auc(const std::vector<std::vector<double>>& probabilities,
                     const std::vector<int>& labels);

/// Fraction of predictions equal to their label (the reference's "Acc_micro"). Returns NaN for
/// empty input.
double accuracy(const std::vector<int>& predictions, const std::vector<int>& labels);

/// Mean over classes present in `labels` of per-class recall (sklearn's balanced accuracy). Differs
/// from torchmetrics' macro accuracy, and so from macro recall below, only when a class is
/// predicted but absent from `labels`: torchmetrics then averages in a recall of 0 for it, this
/// function leaves it out.
double balanced_accuracy(const std::vector<int>& predictions, const std::vector<int>& labels);

/// Index of the largest probability in each row (first one on ties).
std::vector<int> argmax_rows(const std::vector<std::vector<double>>& probabilities);

/// Counts[t][p] = number of items with true class t predicted as p; throws when a value is outside
/// [0, class_count).
std::vector<std::vector<int64_t>> confusion_matrix(const std::vector<int>& predictions,
                                                   const std::vector<int>& labels, int class_count);

/// Macro averages of per-class precision, recall and F1.
struct MacroScores {
  double precision;  ///< mean over kept classes of tp / (tp + fp)
  double recall;     ///< mean over kept classes of tp / (tp + fn)
  double f1;  ///< mean over kept classes of 2 tp / (2 tp + fp + fn) (not F1 of the two means)
};

/// torchmetrics "macro" precision/recall/F1 (multiclass, top_k 1, zero_division 0): a 0/0 per-class
/// score is 0, and a class with no targets and no predictions (tp + fp + fn = 0) is left out of the
/// mean. All NaN for empty input.
MacroScores precision_recall_f1_macro(const std::vector<int>& predictions,
                                      const std::vector<int>& labels, int class_count);

/// Unweighted Cohen's kappa = (p_o - p_e) / (1 - p_e), p_o = observed agreement, p_e = sum_c row_c
/// col_c / n^2. NaN when p_e = 1 (one class in both labels and predictions: 0/0, as torchmetrics
/// and sklearn) or input is empty.
double cohen_kappa(const std::vector<int>& predictions, const std::vector<int>& labels,
                   int class_count);

/// Youden's J threshold for binary labels (0/1): the score threshold t maximising TPR(t) - FPR(t),
/// where an item is positive when score >= t, over the ROC thresholds (every distinct score, plus
/// +infinity = "nothing positive"); ties go to the highest threshold (the first minimum of FPR -
/// TPR, as the reference's v1 optimal_thresh over sklearn's decreasing thresholds). Choose it on
/// validation scores only and apply it to test with predictions_at_threshold: tuning on the
/// evaluated set (v1's default) inflates the metrics. Returns NaN when either class is absent.
double youden_threshold(const std::vector<double>& scores, const std::vector<int>& labels);

/// 1 where score >= threshold, else 0 (a NaN threshold gives all 0).
std::vector<int> predictions_at_threshold(const std::vector<double>& scores, double threshold);

/// Harrell's C-index exactly as scikit-survival's concordance_index_censored: a pair (i, j) is
/// comparable when i had an event and T_j > T_i, or T_j == T_i and j is censored; it is concordant
/// when risk_i > risk_j, and |risk_i - risk_j| <= tied_tol counts 1/2. C = (concordant + ties / 2)
/// / comparable. event_observed[i] is 1 for an event (the reference's 1 - censorship). NaN with no
/// comparable pair.
double harrell_c_index(const std::vector<double>& risk, const std::vector<double>& event_time,
                       const std::vector<int>& event_observed, double tied_tol = 1e-8);

/// The reference's classification metric set on argmax predictions, class count = row width:
/// {"auc", "accuracy" (plain), "balanced_accuracy", "precision", "recall", "f1" (torchmetrics
/// macro), "kappa"}; NaN entries are left out (e.g. AUC when a split holds one class only).
std::map<std::string, double> classification_metrics(
    const std::vector<std::vector<double>>& probabilities, const std::vector<int>& labels);

}  // namespace mil
