#include "mil/eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>
#include <stdexcept>

namespace mil {
namespace {

void require_same_size(std::size_t a, std::size_t b, const char* what) {
  if (a != b) {
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(a) + " values but " +
                                std::to_string(b) + " labels");
  }
}

// torchmetrics' _safe_divide with zero_division = 0: x / 0 is 0.
double safe_divide(double numerator, double denominator) {
  return denominator == 0.0 ? 0.0 : numerator / denominator;
}
}  // namespace

double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels) {
  require_same_size(scores.size(), labels.size(), "roc_auc");
  const std::size_t n = scores.size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
  // Average 1-based ranks over tied groups; U = sum(ranks of positives) - P(P+1)/2.
  double positive_rank_sum = 0.0;
  std::size_t positives = 0;
  for (std::size_t start = 0; start < n;) {
    std::size_t end = start;
    while (end < n && scores[order[end]] == scores[order[start]]) ++end;
    const double average_rank = 0.5 * double(start + 1 + end);
    for (std::size_t k = start; k < end; ++k) {
      if (labels[order[k]] == 1) {
        positive_rank_sum += average_rank;
        ++positives;
      }
    }
    start = end;
  }
  const std::size_t negatives = n - positives;
  if (positives == 0 || negatives == 0) return kNaN;
  const double u = positive_rank_sum - 0.5 * double(positives) * double(positives + 1);
  return u / (double(positives) * double(negatives));
}

double macro_roc_auc(const std::vector<std::vector<double>>& probabilities,
                     const std::vector<int>& labels) {
  require_same_size(probabilities.size(), labels.size(), "macro_roc_auc");
  if (probabilities.empty()) return kNaN;
  const std::size_t class_count = probabilities.front().size();
  double sum = 0.0;
  int used = 0;
  for (std::size_t c = 0; c < class_count; ++c) {
    std::vector<double> scores(probabilities.size());
    std::vector<int> is_class(labels.size());
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (probabilities[i].size() != class_count)
        throw std::invalid_argument("macro_roc_auc: ragged probability rows");
      scores[i] = probabilities[i][c];
      is_class[i] = labels[i] == int(c) ? 1 : 0;
    }
    const double auc = roc_auc(scores, is_class);
    if (!std::isnan(auc)) {
      sum += auc;
      ++used;
    }
  }
  return used == 0 ? kNaN : sum / used;
}

double accuracy(const std::vector<int>& predictions, const std::vector<int>& labels) {
  require_same_size(predictions.size(), labels.size(), "accuracy");
  if (labels.empty()) return kNaN;
  std::size_t correct = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) correct += predictions[i] == labels[i];
  return double(correct) / double(labels.size());
}

double balanced_accuracy(const std::vector<int>& predictions, const std::vector<int>& labels) {
  require_same_size(predictions.size(), labels.size(), "balanced_accuracy");
  if (labels.empty()) return kNaN;
  const std::set<int> classes(labels.begin(), labels.end());
  double recall_sum = 0.0;
  for (int c : classes) {
    std::size_t total = 0, hit = 0;
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (labels[i] != c) continue;
      ++total;
      hit += predictions[i] == c;
    }
    recall_sum += double(hit) / double(total);
  }
  return recall_sum / double(classes.size());
}

std::vector<int> argmax_rows(const std::vector<std::vector<double>>& probabilities) {
  std::vector<int> out;
  out.reserve(probabilities.size());
  for (const auto& row : probabilities) {
    out.push_back(int(std::max_element(row.begin(), row.end()) - row.begin()));
  }
  return out;
}

std::vector<std::vector<int64_t>> confusion_matrix(const std::vector<int>& predictions,
                                                   const std::vector<int>& labels,
                                                   int class_count) {
  require_same_size(predictions.size(), labels.size(), "confusion_matrix");
  if (class_count < 1) throw std::invalid_argument("confusion_matrix: class_count must be >= 1");
  std::vector<std::vector<int64_t>> counts(std::size_t(class_count),
                                           std::vector<int64_t>(std::size_t(class_count), 0));
  for (std::size_t i = 0; i < labels.size(); ++i) {
    const int t = labels[i], p = predictions[i];
    if (t < 0 || t >= class_count || p < 0 || p >= class_count) {
      throw std::invalid_argument("confusion_matrix: item " + std::to_string(i) + " has label " +
                                  std::to_string(t) + " and prediction " + std::to_string(p) +
                                  ", outside [0, " + std::to_string(class_count) + ")");
    }
    ++counts[std::size_t(t)][std::size_t(p)];
  }
  return counts;
}

MacroScores precision_recall_f1_macro(const std::vector<int>& predictions,
                                      const std::vector<int>& labels, int class_count) {
  const auto counts = confusion_matrix(predictions, labels, class_count);
  if (labels.empty()) return {kNaN, kNaN, kNaN};
  // Per class c: tp = counts[c][c], fn = row sum - tp, fp = column sum - tp. torchmetrics weights
  // each class 1, except 0 for tp + fp + fn = 0, and divides the weighted sum by the weight sum.
  double precision_sum = 0.0, recall_sum = 0.0, f1_sum = 0.0;
  int kept = 0;
  for (std::size_t c = 0; c < counts.size(); ++c) {
    int64_t tp = counts[c][c], fn = -tp, fp = -tp;
    for (std::size_t k = 0; k < counts.size(); ++k) {
      fn += counts[c][k];
      fp += counts[k][c];
    }
    if (tp + fp + fn == 0) continue;
    ++kept;
    precision_sum += safe_divide(double(tp), double(tp + fp));
    recall_sum += safe_divide(double(tp), double(tp + fn));
    f1_sum += safe_divide(2.0 * double(tp), double(2 * tp + fp + fn));
  }
  // kept >= 1 here: a non-empty input has at least one class with a target.
  return {precision_sum / kept, recall_sum / kept, f1_sum / kept};
}

double cohen_kappa(const std::vector<int>& predictions, const std::vector<int>& labels,
                   int class_count) {
  const auto counts = confusion_matrix(predictions, labels, class_count);
  const auto n = int64_t(labels.size());
  // In counts, 1 - p_o = (n - trace) / n and 1 - p_e = (n^2 - sum_c row_c col_c) / n^2, so
  // kappa = 1 - (1 - p_o) / (1 - p_e) = 1 - n (n - trace) / (n^2 - sum_c row_c col_c), exact in
  // integers until the one division (torchmetrics computes the same ratio of observed to expected
  // disagreement).
  int64_t trace = 0, chance = 0;
  for (std::size_t c = 0; c < counts.size(); ++c) {
    int64_t row = 0, col = 0;
    for (std::size_t k = 0; k < counts.size(); ++k) {
      row += counts[c][k];
      col += counts[k][c];
    }
    trace += counts[c][c];
    chance += row * col;
  }
  const int64_t expected_disagreement = n * n - chance;
  if (n == 0 || expected_disagreement == 0) return kNaN;
  return 1.0 - double(n * (n - trace)) / double(expected_disagreement);
}

double youden_threshold(const std::vector<double>& scores, const std::vector<int>& labels) {
  require_same_size(scores.size(), labels.size(), "youden_threshold");
  const std::size_t n = scores.size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return scores[a] > scores[b]; });
  const auto positives = std::size_t(std::count(labels.begin(), labels.end(), 1));
  const std::size_t negatives = n - positives;
  if (positives == 0 || negatives == 0) return kNaN;
  // Walk the thresholds from high to low; at threshold t = a distinct score, every item with score
  // >= t is positive. Start at +infinity (TPR = FPR = 0, J = 0). Only a strictly larger J replaces
  // the best, so ties keep the highest threshold.
  double best_threshold = std::numeric_limits<double>::infinity();
  double best_j = 0.0;
  std::size_t true_positives = 0, false_positives = 0;
  for (std::size_t start = 0; start < n;) {
    std::size_t end = start;
    for (; end < n && scores[order[end]] == scores[order[start]]; ++end) {
      if (labels[order[end]] == 1) {
        ++true_positives;
      } else {
        ++false_positives;
      }
    }
    const double j =
        double(true_positives) / double(positives) - double(false_positives) / double(negatives);
    if (j > best_j) {
      best_j = j;
      best_threshold = scores[order[start]];
    }
    start = end;
  }
  return best_threshold;
}

std::vector<int> predictions_at_threshold(const std::vector<double>& scores, double threshold) {
  std::vector<int> out(scores.size());
  std::transform(scores.begin(), scores.end(), out.begin(),
                 [&](double s) { return s >= threshold ? 1 : 0; });
  return out;
}

double harrell_c_index(const std::vector<double>& risk, const std::vector<double>& event_time,
                       const std::vector<int>& event_observed, double tied_tol) {
  require_same_size(risk.size(), event_time.size(), "harrell_c_index (risk vs event_time)");
  require_same_size(risk.size(), event_observed.size(), "harrell_c_index (risk vs event_observed)");
  // All ordered pairs, O(n^2): test sets are a few hundred cases, and the pair form states the rule
  // directly. scikit-survival sorts by time but counts exactly these pairs.
  double score = 0.0;
  std::size_t comparable = 0;
  for (std::size_t i = 0; i < risk.size(); ++i) {
    if (event_observed[i] == 0) continue;
    for (std::size_t j = 0; j < risk.size(); ++j) {
      const bool later = event_time[j] > event_time[i];
      const bool same_time_censored = event_time[j] == event_time[i] && event_observed[j] == 0;
      if (!later && !same_time_censored) continue;
      ++comparable;
      if (std::abs(risk[i] - risk[j]) <= tied_tol) {
        score += 0.5;
      } else if (risk[i] > risk[j]) {
        score += 1.0;
      }
    }
  }
  return comparable == 0 ? kNaN : score / double(comparable);
}

std::map<std::string, double> classification_metrics(
    const std::vector<std::vector<double>>& probabilities, const std::vector<int>& labels) {
  const std::vector<int> predictions = argmax_rows(probabilities);
  const int class_count = probabilities.empty() ? 1 : int(probabilities.front().size());
  const MacroScores macro = precision_recall_f1_macro(predictions, labels, class_count);
  std::map<std::string, double> out{{"auc", macro_roc_auc(probabilities, labels)},
                                    {"accuracy", accuracy(predictions, labels)},
                                    {"balanced_accuracy", balanced_accuracy(predictions, labels)},
                                    {"precision", macro.precision},
                                    {"recall", macro.recall},
                                    {"f1", macro.f1},
                                    {"kappa", cohen_kappa(predictions, labels, class_count)}};
  for (auto it = out.begin(); it != out.end();)
    it = std::isnan(it->second) ? out.erase(it) : std::next(it);
  return out;
}

}  // namespace mil
