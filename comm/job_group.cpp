#include "comm/job_group.h"

#include <algorithm>
#include <stdexcept>

#include "comm/mpi_env.h"

namespace mil::worker {

void to_json(nlohmann::json& j, const JobTicket& t) { j = nlohmann::json{{"job_id", t.job_id}, {"spec", t.spec}}; }

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
    throw std::runtime_error(what + "group_ranks has " + std::to_string(g.ranks.size()) + " ranks for train.ranks " +
                             std::to_string(g.spec.train.ranks) + " (a group has as many, and at least 2)");
  }
  // Any order: the scheduler's leader (the first held worker) comes first and becomes group rank 0.
  std::vector<int> sorted = g.ranks;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end() || sorted.front() < 0) {
    throw std::runtime_error(what + "group_ranks must be distinct non-negative ranks, got " + j.at("group_ranks").dump());
  }
  if (g.tag < kFirstGroupTag || g.tag >= kFirstGroupTag + kGroupTagCount) {
    throw std::runtime_error(what + "group_tag " + std::to_string(g.tag) + " is outside [" +
                             std::to_string(kFirstGroupTag) + ", " + std::to_string(kFirstGroupTag + kGroupTagCount) + ")");
  }
}

bool is_group_job(const nlohmann::json& payload) { return payload.is_object() && payload.contains("group_ranks"); }

JobGroupComm::JobGroupComm(MPI_Comm comm, const GroupJob& group) {
  int rank = 0;
  MIL_MPI_CHECK(MPI_Comm_rank(comm, &rank));
  if (std::find(group.ranks.begin(), group.ranks.end(), rank) == group.ranks.end()) {
    throw std::runtime_error("rank " + std::to_string(rank) + " was sent group job " + group.spec.id() +
                             " but is not one of its ranks");
  }
  MPI_Group everyone = MPI_GROUP_NULL, members = MPI_GROUP_NULL;
  MIL_MPI_CHECK(MPI_Comm_group(comm, &everyone));
  try {
    MIL_MPI_CHECK(MPI_Group_incl(everyone, static_cast<int>(group.ranks.size()), group.ranks.data(), &members));
    // MPI-3: collective over `members` only, so the orchestrator and busy workers need not take part.
    MIL_MPI_CHECK(MPI_Comm_create_group(comm, members, group.tag, &comm_));
    MIL_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  } catch (...) {
    if (members != MPI_GROUP_NULL) MPI_Group_free(&members);
    MPI_Group_free(&everyone);
    if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
    throw;
  }
  MIL_MPI_CHECK(MPI_Group_free(&members));
  MIL_MPI_CHECK(MPI_Group_free(&everyone));
}

JobGroupComm::~JobGroupComm() {
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);  // no throw from a destructor; nothing to do on error
}

}  // namespace mil::worker
