#pragma once
// A job that runs on a group of R > 1 worker ranks of a sweep (data-parallel; issue #8): what rank 0
// sends each member (the kJob envelope of protocol.h) and the communicator the members build from it.
#include <string>
#include <vector>

#include <mpi.h>
#include <nlohmann/json.hpp>

#include "mil/core/specs.h"

namespace mil::worker {

/// First tag rank 0 gives a group; below it lie the protocol's MsgTag values, which a group's
/// creation must never match.
constexpr int kFirstGroupTag = 1000;
/// Group tags cycle through this many values, which keeps them under MPI's smallest allowed tag bound
/// (32767); only groups forming at the same time need distinct tags.
constexpr int kGroupTagCount = 30000;

/// The kJob payload for a one-rank job: the spec and its id, so a worker need not hash the spec again
/// (rank 0 computed the id from this very spec; the worker trusts it, as it trusts the spec).
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
  std::vector<int> ranks;  ///< Distinct ranks of the sweep communicator; ranks[i] is group rank i, ranks[0] leads.
  int tag = kFirstGroupTag;  ///< MPI_Comm_create_group tag, distinct among groups forming at once.
};

void to_json(nlohmann::json& j, const GroupJob& g);
/// Strict: throws naming the field when ranks are negative or repeated, fewer than 2, or differ
/// from spec.train.ranks in number.
void from_json(const nlohmann::json& j, GroupJob& g);
/// True when a kJob payload is a GroupJob envelope (it has "group_ranks"), not a JobTicket.
bool is_group_job(const nlohmann::json& payload);

/// The communicator of one group job: MPI_Comm_create_group over the members, which only they call
/// (rank 0 and the other workers go on undisturbed). Freed when destroyed. The creation exchanges
/// messages among the members on the parent communicator with the group's tag, which a receive from
/// MPI_ANY_SOURCE with MPI_ANY_TAG there could take: in a sweep only rank 0 receives that way and it is
/// never a member, and workers receive from rank 0 only (protocol.h).
class JobGroupComm {
 public:
  /// Collective over the ranks of `group` (ranks of `comm`); `comm`'s rank must be one of them.
  /// Throws MpiError naming the call when MPI fails, std::runtime_error when this rank is no member.
  JobGroupComm(MPI_Comm comm, const GroupJob& group);
  ~JobGroupComm();
  JobGroupComm(const JobGroupComm&) = delete;
  JobGroupComm& operator=(const JobGroupComm&) = delete;

  MPI_Comm comm() const { return comm_; }  ///< The group's communicator; its rank 0 is ranks[0].

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
};

}  // namespace mil::worker
