#include "orchestrator/schedule/cost_calibrator.h"

#include <cmath>

namespace mil::orch {

void CostCalibrator::observe(const CostObservation& o) {
  if (!(o.predicted_s > 0) || !(o.actual_s > 0) || !std::isfinite(o.predicted_s) ||
      !std::isfinite(o.actual_s)) {
    return;
  }
  const double r = std::log(o.actual_s / o.predicted_s);
  for (Sum* sum : {&total_, &by_model_[o.model], &by_group_[{o.model, o.dataset}]}) {
    sum->log_ratio += r;
    ++sum->n;
  }
}

double CostCalibrator::global_log() const {
  return total_.log_ratio / (total_.n + kCalibrationPrior);
}

double CostCalibrator::model_log(const std::string& model) const {
  const auto it = by_model_.find(model);
  const Sum sum = it == by_model_.end() ? Sum{} : it->second;
  return (sum.log_ratio + kCalibrationPrior * global_log()) / (sum.n + kCalibrationPrior);
}

double CostCalibrator::factor(const std::string& model, const std::string& dataset) const {
  const auto it = by_group_.find({model, dataset});
  const Sum sum = it == by_group_.end() ? Sum{} : it->second;
  return std::exp((sum.log_ratio + kCalibrationPrior * model_log(model)) /
                  (sum.n + kCalibrationPrior));
}

double CostCalibrator::calibrated(const std::string& model, const std::string& dataset,
                                  double predicted_s) const {
  return predicted_s * factor(model, dataset);
}

int CostCalibrator::count(const std::string& model, const std::string& dataset) const {
  const auto it = by_group_.find({model, dataset});
  return it == by_group_.end() ? 0 : it->second.n;
}

double actual_seconds(const JobResult& result) {
  const double seconds = result.runtime.value("seconds", 0.0);
  const nlohmann::json* selection = nullptr;
  if (result.metrics.contains("selection")) selection = &result.metrics.at("selection");
  const int resumed = selection != nullptr ? selection->value("resumed_from_epoch", 0) : 0;
  if (resumed <= 0 || !result.history.is_array()) return seconds;
  // Epochs before the resume ran in earlier attempts; the last attempt's own time covers the rest.
  double all_epochs = 0, this_run = 0;
  for (const auto& epoch : result.history) {
    const double s = epoch.value("seconds", 0.0);
    all_epochs += s;
    if (epoch.value("epoch", 0) >= resumed) this_run += s;
  }
  return all_epochs + std::max(0.0, seconds - this_run);
}

}  // namespace mil::orch
