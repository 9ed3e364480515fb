#include "mil/eval/instance_metrics.h"

#include <cmath>

#include <nlohmann/json.hpp>

#include "mil/data/instance_labels.h"
#include "mil/eval/metrics.h"

namespace mil {
namespace {

/// 1 for the witnesses of `kind`, 0 for non-witnesses, -1 for instances left out.
int membership(std::uint8_t code, WitnessKind kind) {
  if (!is_witness(code)) return 0;
  switch (kind) {
    case WitnessKind::kAny:
      return 1;
    case WitnessKind::kHard:
      return code == kRoleHardWitness ? 1 : -1;
    case WitnessKind::kEasy:
      return code == kRoleEasyWitness ? 1 : -1;
  }
  return -1;
}

/// Running mean of the finite values added.
struct Mean {
  double sum = 0;
  int count = 0;
  void add(double v) {
    if (std::isfinite(v)) sum += v, ++count;
  }
  double value() const { return count > 0 ? sum / count : TruthMetrics::kNaN; }
};

}  // namespace

double within_slide_instance_auc(const std::vector<double>& scores,
                                 const std::vector<std::uint8_t>& codes, WitnessKind kind) {
  std::vector<double> kept;
  std::vector<int> labels;
  for (std::size_t i = 0; i < scores.size() && i < codes.size(); ++i) {
    const int m = membership(codes[i], kind);
    if (m < 0) continue;
    kept.push_back(scores[i]);
    labels.push_back(m);
  }
  return roc_auc(kept, labels);  // NaN when either group is empty
}

TruthMetrics truth_metrics(const std::vector<TruthSlide>& slides) {
  TruthMetrics m;
  Mean any, hard, easy;
  std::vector<double> probabilities;
  std::vector<int> labels;
  for (const TruthSlide& s : slides) {
    any.add(within_slide_instance_auc(s.scores, s.codes, WitnessKind::kAny));
    hard.add(within_slide_instance_auc(s.scores, s.codes, WitnessKind::kHard));
    easy.add(within_slide_instance_auc(s.scores, s.codes, WitnessKind::kEasy));
    bool has_hard = false, has_easy = false;
    for (std::uint8_t c : s.codes) {
      has_hard |= c == kRoleHardWitness;
      has_easy |= c == kRoleEasyWitness;
    }
    if (s.label == 0) {
      ++m.negatives;
    } else if (s.label == 1 && has_hard && !has_easy) {
      ++m.hard_only_positives;
    } else {
      continue;
    }
    probabilities.push_back(s.positive_probability);
    labels.push_back(s.label);
  }
  m.instance_auc = any.value(), m.instance_slides = any.count;
  m.instance_auc_hard = hard.value(), m.hard_slides = hard.count;
  m.instance_auc_easy = easy.value(), m.easy_slides = easy.count;
  m.auc_hard_only = roc_auc(probabilities, labels);
  return m;
}

nlohmann::json truth_metrics_json(const TruthMetrics& m) {
  nlohmann::json j = nlohmann::json::object();
  const auto put = [&j](const char* key, double value) {
    if (std::isfinite(value)) j[key] = value;
  };
  put("instance_auc", m.instance_auc);
  put("instance_auc_hard", m.instance_auc_hard);
  put("instance_auc_easy", m.instance_auc_easy);
  put("auc_hard_only", m.auc_hard_only);
  j["slides"] = {{"instance", m.instance_slides},
                 {"hard", m.hard_slides},
                 {"easy", m.easy_slides},
                 {"hard_only_positives", m.hard_only_positives},
                 {"negatives", m.negatives}};
  return j;
}

}  // namespace mil
