#include "worker/job_group_comm.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "comm/mpi_env.h"

namespace mil::worker {

JobGroupComm::JobGroupComm(MPI_Comm comm, const comm::GroupJob& group) {
  int rank = 0;
  MIL_MPI_CHECK(MPI_Comm_rank(comm, &rank));
  if (std::find(group.ranks.begin(), group.ranks.end(), rank) == group.ranks.end()) {
    throw std::runtime_error("rank " + std::to_string(rank) + " was sent group job " +
                             group.spec.id() + " but is not one of its ranks");
  }
  MPI_Group everyone = MPI_GROUP_NULL, members = MPI_GROUP_NULL;
  MIL_MPI_CHECK(MPI_Comm_group(comm, &everyone));
  try {
    MIL_MPI_CHECK(MPI_Group_incl(everyone, static_cast<int>(group.ranks.size()), group.ranks.data(),
                                 &members));
    // MPI-3: collective over `members` only, so the orchestrator and busy workers need not take
    // part.
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
  if (comm_ != MPI_COMM_NULL)
    MPI_Comm_free(&comm_);  // no throw from a destructor; nothing to do on error
}

}  // namespace mil::worker
