#pragma once
// Corrects predicted job seconds with what the finished jobs of the same results folder took. The
// table's numbers come from another machine, another load and an assumed epoch count, so each
// (model, dataset) group learns its own factor actual / predicted:
//
//   r = ln(actual / predicted) per finished job
//   global  g = sum(r) / (n + k)                       (shrunk towards 0: no correction)
//   model   m = (sum of its r + k g) / (n_model + k)   (shrunk towards the global factor)
//   group   c = (sum of its r + k m) / (n_group + k)   (shrunk towards its model's factor)
//   calibrated = predicted x exp(c),  k = kCalibrationPrior
//
// so one odd job moves its group part of the way, a group with no finished job borrows its model's
// factor (or the sweep's), and many jobs dominate the prior. The result does not depend on the
// order of the observations. The calibrator is derived from results on disk
// (observations_from_results), so a resumed sweep starts with everything it learned before.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mil/core/specs.h"

namespace mil::orch {

/// Weight of the parent factor, in jobs, when a group's own jobs are averaged (see the file
/// comment).
constexpr double kCalibrationPrior = 2.0;

/// One finished job, as the calibrator sees it.
struct CostObservation {
  std::string model;       ///< cost_key() of its model, e.g. "mhim:attn".
  std::string dataset;     ///< Dataset name.
  double predicted_s = 0;  ///< What the uncalibrated model predicted.
  double actual_s = 0;     ///< What it took (actual_seconds()).
};

/// Learns actual / predicted per (model, dataset) group; pure and order-independent.
class CostCalibrator {
 public:
  /// Adds a finished job; ignored unless both seconds are > 0 and finite.
  void observe(const CostObservation& observation);
  /// exp(c) for the group (see the file comment); 1 before any observation.
  double factor(const std::string& model, const std::string& dataset) const;
  /// predicted x factor(model, dataset).
  double calibrated(const std::string& model, const std::string& dataset, double predicted_s) const;
  /// Observations of the group so far.
  int count(const std::string& model, const std::string& dataset) const;
  /// Observations in all.
  int count() const { return total_.n; }

 private:
  struct Sum {
    double log_ratio = 0;  ///< Sum of ln(actual / predicted).
    int n = 0;
  };
  double global_log() const;
  double model_log(const std::string& model) const;

  Sum total_;
  std::map<std::string, Sum> by_model_;
  std::map<std::pair<std::string, std::string>, Sum> by_group_;
};

/// Seconds a finished job took as if run in one go: runtime.seconds, or for a job resumed from a
/// checkpoint (metrics.selection.resumed_from_epoch > 0) the sum of its history's epoch seconds
/// (earlier runs' epochs included) plus what the last run spent outside its epochs. 0 when unknown.
double actual_seconds(const JobResult& result);

}  // namespace mil::orch
