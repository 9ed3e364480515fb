#include "mil/core/mhim_jobs.h"

#include <algorithm>

#include "mil/core/model_catalog.h"

namespace mil {

std::optional<JobSpec> mhim_teacher_job(const JobSpec& job) {
  if (job.model.name != "mhim") return std::nullopt;
  const auto it = job.model.options.find("teacher_init");
  if (it == job.model.options.end() || !it->is_string() ||
      it->get<std::string>() != kTeacherFromBaseline) {
    return std::nullopt;
  }
  JobSpec baseline = job;
  baseline.model.name = "mhim_pure";
  baseline.model.options = nlohmann::json::object();
  // One leaderboard method per aggregator, so the baselines of attn, selfattn and dsmil never pool.
  const auto aggregator = job.model.options.find("baseline");
  baseline.model.method =
      "mhim_pure-" + (aggregator != job.model.options.end() ? aggregator->get<std::string>()
                                                            : std::string("attn"));
  const auto& keys = model_info("mhim_pure").option_keys;
  for (const auto& [key, value] : job.model.options.items()) {
    const bool network_key = std::find(keys.begin(), keys.end(), key) != keys.end();
    if (network_key && key.rfind("merge", 0) != 0) baseline.model.options[key] = value;
  }
  return baseline;
}

}  // namespace mil
