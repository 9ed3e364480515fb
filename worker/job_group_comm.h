#pragma once
// The MPI communicator of one group job (data-parallel over R > 1 worker ranks), built by the
// members from the GroupJob envelope rank 0 sent them (comm/job_messages.h).
#include <mpi.h>

#include "comm/job_messages.h"

namespace mil::worker {

/// The communicator of one group job: MPI_Comm_create_group over the members, which only they call
/// (rank 0 and the other workers go on undisturbed). Freed when destroyed. The creation exchanges
/// messages among the members on the parent communicator with the group's tag, which a receive from
/// MPI_ANY_SOURCE with MPI_ANY_TAG there could take: in a sweep only rank 0 receives that way and
/// it is never a member, and workers receive from rank 0 only (protocol.h).
class JobGroupComm {
 public:
  /// Collective over the ranks of `group` (ranks of `comm`); `comm`'s rank must be one of them.
  /// Throws MpiError naming the call when MPI fails, std::runtime_error when this rank is no
  /// member.
  JobGroupComm(MPI_Comm comm, const comm::GroupJob& group);
  ~JobGroupComm();
  JobGroupComm(const JobGroupComm&) = delete;
  JobGroupComm& operator=(const JobGroupComm&) = delete;

  MPI_Comm comm() const { return comm_; }  ///< The group's communicator; its rank 0 is ranks[0].

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
};

}  // namespace mil::worker
