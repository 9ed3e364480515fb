#include "comm/job_messages.h"

#include <algorithm>
#include <stdexcept>

namespace mil::comm {

void to_json(nlohmann::json& j, const JobTicket& t) {
  j = nlohmann::json{{"job_id", t.job_id}, {"spec", t.spec}};
}

void from_json(const nlohmann::json& j, JobTicket& t) {
  require_known_keys(j, {"job_id", "spec"}, "job");
  t.job_id = j.at("job_id").get<std::string>();
  if (t.job_id.empty()) throw std::runtime_error("job: job_id is empty");
  t.spec = j.at("spec").get<JobSpec>();
}

void to_json(nlohmann::json& j, const GroupJob& g) {
  j = nlohmann::json{{"spec", g.spec}, {"group_ranks", g.ranks}, {"group_tag", g.tag}};
}

void from_json(const nlohmann::json& j, GroupJob& g) {
  require_known_keys(j, {"spec", "group_ranks", "group_tag"}, "group job");
  g.spec = j.at("spec").get<JobSpec>();
  g.ranks = j.at("group_ranks").get<std::vector<int>>();
  g.tag = j.at("group_tag").get<int>();
  const std::string what = "group job " + g.spec.id() + ": ";
  if (g.ranks.size() < 2 || static_cast<int>(g.ranks.size()) != g.spec.train.ranks) {
    throw std::runtime_error(what + "group_ranks has " + std::to_string(g.ranks.size()) +
                             " ranks for train.ranks " + std::to_string(g.spec.train.ranks) +
                             " (a group has as many, and at least 2)");
  }
  // Any order: the scheduler's leader (the first held worker) comes first and becomes group rank 0.
  std::vector<int> sorted = g.ranks;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end() || sorted.front() < 0) {
    throw std::runtime_error(what + "group_ranks must be distinct non-negative ranks, got " +
                             j.at("group_ranks").dump());
  }
  if (g.tag < kFirstGroupTag || g.tag >= kFirstGroupTag + kGroupTagCount) {
    throw std::runtime_error(what + "group_tag " + std::to_string(g.tag) + " is outside [" +
                             std::to_string(kFirstGroupTag) + ", " +
                             std::to_string(kFirstGroupTag + kGroupTagCount) + ")");
  }
}

bool is_group_job(const nlohmann::json& payload) {
  return payload.is_object() && payload.contains("group_ranks");
}

}  // namespace mil::comm
