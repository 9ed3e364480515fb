#include "orchestrator/schedule/job_graph.h"

#include <set>

#include "mil/core/mhim_jobs.h"

namespace mil::orch {

std::vector<JobSpec> with_teacher_baselines(const std::vector<JobSpec>& jobs) {
  std::set<std::string> present;
  for (const auto& job : jobs) present.insert(job.id());
  std::vector<JobSpec> out;
  for (const auto& job : jobs) {
    if (auto baseline = mhim_teacher_job(job); baseline && present.insert(baseline->id()).second) {
      out.push_back(*baseline);
    }
  }
  out.insert(out.end(), jobs.begin(), jobs.end());
  return out;
}

std::vector<ScheduledJob> schedule_with_dependencies(const std::vector<JobSpec>& jobs) {
  std::vector<ScheduledJob> scheduled;
  scheduled.reserve(jobs.size());
  for (const auto& spec : jobs) {
    ScheduledJob job{spec, spec.id(), /*cost=*/1.0, {}, spec.train.ranks};
    if (auto baseline = mhim_teacher_job(spec)) job.depends_on.push_back(baseline->id());
    scheduled.push_back(std::move(job));
  }
  return scheduled;
}

}  // namespace mil::orch
