#include "mil/metrics.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <set>
#include <stdexcept>

namespace mil {
namespace {
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void require_same_size(std::size_t a, std::size_t b, const char* what) {
  if (a != b) {
    throw std::invalid_argument(std::string(what) + ": " + std::to_string(a) + " values but " +
                                std::to_string(b) + " labels");
  }
}
}  // namespace

double roc_auc(const std::vector<double>& scores, const std::vector<int>& labels) {
  require_same_size(scores.size(), labels.size(), "roc_auc");
  const std::size_t n = scores.size();
  std::vector<std::size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
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

double macro_roc_auc(const std::vector<std::vector<double>>& probabilities, const std::vector<int>& labels) {
  require_same_size(probabilities.size(), labels.size(), "macro_roc_auc");
  if (probabilities.empty()) return kNaN;
  const std::size_t class_count = probabilities.front().size();
  double sum = 0.0;
  int used = 0;
  for (std::size_t c = 0; c < class_count; ++c) {
    std::vector<double> scores(probabilities.size());
    std::vector<int> is_class(labels.size());
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (probabilities[i].size() != class_count) throw std::invalid_argument("macro_roc_auc: ragged probability rows");
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

std::map<std::string, double> classification_metrics(const std::vector<std::vector<double>>& probabilities,
                                                      const std::vector<int>& labels) {
  const std::vector<int> predictions = argmax_rows(probabilities);
  std::map<std::string, double> out{{"auc", macro_roc_auc(probabilities, labels)},
                                    {"accuracy", accuracy(predictions, labels)},
                                    {"balanced_accuracy", balanced_accuracy(predictions, labels)}};
  for (auto it = out.begin(); it != out.end();) it = std::isnan(it->second) ? out.erase(it) : std::next(it);
  return out;
}

}  // namespace mil
