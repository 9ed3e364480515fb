#pragma once
// What rank 0 sends a worker with kJob (protocol.h): a one-rank job with its id, or the envelope of
// a job that runs on a group of R > 1 worker ranks (data-parallel). The members' communicator is
// built from the envelope by worker/job_group_comm.h.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mil/core/specs.h"

namespace mil::comm {

/// First tag rank 0 gives a group; below it lie the protocol's MsgTag values, which a group's
/// creation must never match.
constexpr int kFirstGroupTag = 1000;
/// Group tags cycle through this many values, which keeps them under MPI's smallest allowed tag
/// bound (32767); only groups forming at the same time need distinct tags.
constexpr int kGroupTagCount = 30000;

/// The kJob payload for a one-rank job: the spec and its id, so a worker need not hash the spec
/// again (rank 0 computed the id from this very spec; the worker trusts it, as it trusts the spec).
struct JobTicket {
  std::string job_id;
  JobSpec spec;
};

void to_json(nlohmann::json& j, const JobTicket& t);
/// Strict: throws naming the field when a key is unknown or missing, or the id is empty.
void from_json(const nlohmann::json& j, JobTicket& t);

/// The kJob payload for a group job: the spec, the members and the tag of their communicator.
struct GroupJob {
  JobSpec spec;            ///< The job; every member runs it.
  std::vector<int> ranks;  ///< Distinct ranks of the sweep communicator; ranks[i] is group rank i,
                           ///< ranks[0] leads.
  int tag = kFirstGroupTag;  ///< MPI_Comm_create_group tag, distinct among groups forming at once.
};

void to_json(nlohmann::json& j, const GroupJob& g);
/// Strict: throws naming the field when ranks are negative or repeated, fewer than 2, or differ
/// from spec.train.ranks in number.
void from_json(const nlohmann::json& j, GroupJob& g);
/// True when a kJob payload is a GroupJob envelope (it has "group_ranks"), not a JobTicket.
bool is_group_job(const nlohmann::json& payload);

}  // namespace mil::comm
