#include "orchestrator/schedule/sweep_costs.h"

#include <cstdio>

#include "orchestrator/schedule/priority.h"

namespace mil::orch {

SweepCosts::SweepCosts(const std::vector<ScheduledJob>& jobs, const CostModel& model,
                       const std::vector<JobResult>& finished)
    : jobs_(jobs) {
  predictions_.reserve(jobs_.size());
  for (std::size_t i = 0; i < jobs_.size(); ++i) {
    predictions_.push_back(model.predict(jobs_[i].spec));
    index_.emplace(jobs_[i].id, i);
  }
  // Results of jobs no longer in the sweep teach as much as those still in it.
  for (const JobResult& r : finished) {
    if (!r.ok()) continue;
    const JobPrediction p = model.predict(r.spec);
    if (!p.known) continue;
    calibrator_.observe(
        {cost_key(r.spec.model), r.spec.dataset.name, p.seconds, actual_seconds(r)});
  }
}

std::pair<std::string, std::string> SweepCosts::group(std::size_t index) const {
  return {cost_key(jobs_[index].spec.model), jobs_[index].spec.dataset.name};
}

double SweepCosts::seconds(std::size_t index) const {
  const JobPrediction& p = predictions_[index];
  if (!p.known) return p.seconds;  // the fallback is not a measurement to scale
  const auto [model, dataset] = group(index);
  return calibrator_.calibrated(model, dataset, p.seconds);
}

std::vector<double> SweepCosts::all_seconds() const {
  std::vector<double> out(jobs_.size());
  for (std::size_t i = 0; i < jobs_.size(); ++i) out[i] = seconds(i);
  return out;
}

std::vector<double> SweepCosts::priorities() const {
  return critical_path_priorities(jobs_, all_seconds());
}

std::vector<ScheduledJob> SweepCosts::prioritized(std::vector<ScheduledJob> jobs) const {
  const std::vector<double> p = priorities();
  for (std::size_t i = 0; i < jobs.size() && i < p.size(); ++i) jobs[i].cost = p[i];
  return jobs;
}

double SweepCosts::seconds_of(const std::string& job_id) const {
  const auto it = index_.find(job_id);
  return it == index_.end() ? 0 : seconds(it->second);
}

double SweepCosts::device_bytes_of(const std::string& job_id) const {
  const auto it = index_.find(job_id);
  return it == index_.end() ? 0 : predictions_[it->second].device_bytes;
}

std::vector<double> SweepCosts::priorities_for(const std::vector<ScheduledJob>& jobs) const {
  const std::vector<double> mine = priorities();
  std::vector<double> out(jobs.size(), 0.0);
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const auto it = index_.find(jobs[i].id);
    if (it != index_.end()) out[i] = mine[it->second];
  }
  return out;
}

void SweepCosts::observe(const std::string& job_id, double actual_s) {
  const auto it = index_.find(job_id);
  if (it == index_.end() || !predictions_[it->second].known) return;
  const auto [model, dataset] = group(it->second);
  calibrator_.observe({model, dataset, predictions_[it->second].seconds, actual_s});
  const int n = calibrator_.count(model, dataset);
  if (n > 0 && (n & (n - 1)) == 0) refresh_ = true;
}

bool SweepCosts::refresh_due() {
  const bool due = refresh_;
  refresh_ = false;
  return due;
}

std::vector<PredictedGroup> predicted_groups(const std::vector<ScheduledJob>& jobs,
                                             const SweepCosts& costs) {
  std::vector<PredictedGroup> groups;
  std::map<std::pair<std::string, std::string>, std::size_t> at;
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    const JobSpec& spec = jobs[i].spec;
    const std::string method = spec.model.method.empty() ? spec.model.name : spec.model.method;
    const auto [it, inserted] =
        at.emplace(std::make_pair(spec.dataset.name, method), groups.size());
    if (inserted) {
      PredictedGroup g;
      g.dataset = spec.dataset.name;
      g.method = method;
      g.model = cost_key(spec.model);
      g.factor = costs.calibrator().factor(g.model, g.dataset);
      groups.push_back(g);
    }
    PredictedGroup& g = groups[it->second];
    ++g.jobs;
    g.seconds += costs.seconds(i);
    if (!costs.prediction(i).known) {
      if (g.unknown++ == 0) g.basis = costs.prediction(i).basis;
    }
  }
  return groups;
}

std::string format_hms(double seconds) {
  char text[64];
  if (seconds < 60) {
    std::snprintf(text, sizeof text, "%.1f s", seconds);
    return text;
  }
  const long long total = (long long)(seconds + 0.5);
  const long long days = total / 86400, h = total % 86400 / 3600, m = total % 3600 / 60,
                  s = total % 60;
  if (days > 0) {
    std::snprintf(text, sizeof text, "%lldd %02lld:%02lld:%02lld", days, h, m, s);
  } else {
    std::snprintf(text, sizeof text, "%02lld:%02lld:%02lld", h, m, s);
  }
  return text;
}

std::string format_predicted_groups(const std::vector<PredictedGroup>& groups) {
  std::string out;
  char row[512];
  std::snprintf(row, sizeof row, "  %-20s %-18s %5s %12s %14s %7s  %s\n", "dataset", "method",
                "jobs", "s/job", "total s", "calib.", "note");
  out += row;
  double total = 0;
  int jobs = 0, unknown = 0;
  for (const PredictedGroup& g : groups) {
    std::snprintf(
        row, sizeof row, "  %-20s %-18s %5d %12.1f %14.0f %6.2fx  %s\n", g.dataset.c_str(),
        g.method.c_str(), g.jobs, g.seconds / std::max(1, g.jobs), g.seconds, g.factor,
        g.unknown == 0 ? "" : (std::to_string(g.unknown) + " unknown: " + g.basis).c_str());
    out += row;
    total += g.seconds;
    jobs += g.jobs;
    unknown += g.unknown;
  }
  std::snprintf(row, sizeof row, "  total: %d jobs, %.0f s of job time (%s on one worker)%s\n",
                jobs, total, format_hms(total).c_str(),
                unknown == 0 ? "" : (", " + std::to_string(unknown) + " jobs unknown").c_str());
  out += row;
  return out;
}

}  // namespace mil::orch
