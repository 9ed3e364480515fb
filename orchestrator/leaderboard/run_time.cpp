#include "orchestrator/leaderboard/run_time.h"

#include <cstdio>
#include <map>

#include "orchestrator/schedule/cost_calibrator.h"

namespace mil::orch {

std::vector<RunTimeLine> run_time_lines(const std::vector<JobResult>& results) {
  std::map<std::pair<std::string, std::string>, RunTimeLine> lines;
  for (const JobResult& r : results) {
    const double actual = actual_seconds(r);
    if (!r.ok() || !(actual > 0)) continue;
    const std::string method =
        r.spec.model.method.empty() ? r.spec.model.name : r.spec.model.method;
    RunTimeLine& line = lines[{r.spec.dataset.name, method}];
    line.dataset = r.spec.dataset.name;
    line.method = method;
    ++line.jobs;
    line.all_actual_s += actual;
    const double predicted = r.runtime.is_object() ? r.runtime.value("predicted_s", 0.0) : 0.0;
    if (predicted > 0) {
      ++line.predicted_jobs;
      line.predicted_s += predicted;
      line.actual_s += actual;
    }
  }
  std::vector<RunTimeLine> out;
  for (auto& [key, line] : lines) out.push_back(std::move(line));
  return out;
}

std::string run_time_markdown(const std::vector<RunTimeLine>& lines) {
  if (lines.empty()) return "";
  std::string out =
      "\n## Run time: predicted vs actual\n\n"
      "Seconds per job group: what the scheduler predicted for each job when it ran (the cost "
      "model,\n"
      "calibrated by the jobs finished before it) against what the job took. Ratio = actual /\n"
      "predicted over the jobs that have a prediction.\n\n"
      "| Dataset | Method | Jobs | Predicted s | Actual s | Ratio |\n"
      "|---|---|---:|---:|---:|---:|\n";
  RunTimeLine total;
  char row[512];
  for (const RunTimeLine& l : lines) {
    const std::string ratio =
        l.predicted_s > 0 ? std::to_string(l.actual_s / l.predicted_s).substr(0, 4) : "–";
    std::snprintf(row, sizeof row, "| %s | %s | %d | %.0f | %.0f | %s |\n", l.dataset.c_str(),
                  l.method.c_str(), l.jobs, l.predicted_s, l.all_actual_s, ratio.c_str());
    out += row;
    total.jobs += l.jobs;
    total.predicted_s += l.predicted_s;
    total.actual_s += l.actual_s;
    total.all_actual_s += l.all_actual_s;
  }
  const std::string ratio =
      total.predicted_s > 0 ? std::to_string(total.actual_s / total.predicted_s).substr(0, 4) : "–";
  std::snprintf(row, sizeof row, "| **all** | | %d | %.0f | %.0f | %s |\n", total.jobs,
                total.predicted_s, total.all_actual_s, ratio.c_str());
  return out + row;
}

void to_json(nlohmann::json& j, const RunTimeLine& l) {
  j = {{"dataset", l.dataset},
       {"method", l.method},
       {"jobs", l.jobs},
       {"predicted_jobs", l.predicted_jobs},
       {"predicted_s", l.predicted_s},
       {"actual_s", l.actual_s},
       {"all_actual_s", l.all_actual_s}};
}

}  // namespace mil::orch
