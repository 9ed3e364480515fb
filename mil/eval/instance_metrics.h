#pragma once
// Where a model looks, checked against instance-level truth (mil/data/instance_labels.h): does it
// score the witnesses of a positive slide above the rest of that slide, and does it still find
// slides whose only evidence is hard witnesses? Plain vectors in, numbers out.
//
// Instance AUCs are computed within each slide and then averaged over slides: attention is
// normalised per bag (a slide of 10,000 patches spreads the same mass as one of 100), so scores
// of different slides are not on one scale, while within a slide their order is what a heatmap
// shows.
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace mil {

/// Which witnesses count as positive instances.
enum class WitnessKind {
  kAny,   ///< Hard and easy witnesses.
  kHard,  ///< Hard witnesses only; the slide's easy witnesses are left out of the comparison.
  kEasy,  ///< Easy witnesses only; the slide's hard witnesses are left out.
};

/// Within one slide: ROC-AUC of `scores` for the `kind` witnesses against the instances that are
/// not witnesses (P(a witness scores above a non-witness), ties 1/2). NaN when the slide has no
/// such witness or no non-witness.
double within_slide_instance_auc(const std::vector<double>& scores,
                                 const std::vector<std::uint8_t>& codes, WitnessKind kind);

/// One evaluated slide that has truth.
struct TruthSlide {
  int label = 0;                    ///< Slide label (1 = positive).
  double positive_probability = 0;  ///< The model's P(label 1) for the slide.
  std::vector<double> scores;       ///< Per-instance scores (higher = more attended).
  std::vector<std::uint8_t> codes;  ///< Per-instance truth codes, same length.
};

/// The instance-truth metrics of a set of slides; counts say how many slides each mean is over.
struct TruthMetrics {
  static constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  double instance_auc = kNaN;       ///< Mean within-slide AUC, any witness vs non-witnesses.
  int instance_slides = 0;          ///< Slides in that mean.
  double instance_auc_hard = kNaN;  ///< Mean within-slide AUC of the hard witnesses.
  int hard_slides = 0;
  double instance_auc_easy = kNaN;  ///< Mean within-slide AUC of the easy witnesses.
  int easy_slides = 0;
  /// Slide-level ROC-AUC of P(label 1) on the negative slides and the positive slides whose
  /// witnesses are all hard (none easy): can the model find tumour with nothing obvious in it?
  double auc_hard_only = kNaN;
  int hard_only_positives = 0;  ///< Positive slides with hard witnesses and no easy ones.
  int negatives = 0;            ///< Slides with label 0.
};

/// Computes TruthMetrics over `slides` (NaN means where no slide qualifies).
TruthMetrics truth_metrics(const std::vector<TruthSlide>& slides);

/// {"instance_auc", "instance_auc_hard", "instance_auc_easy", "auc_hard_only" (each left out when
/// NaN), "slides": {"instance", "hard", "easy", "hard_only_positives", "negatives"}}.
nlohmann::json truth_metrics_json(const TruthMetrics& m);

}  // namespace mil
