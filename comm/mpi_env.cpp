#include "comm/mpi_env.h"

#include <cstdlib>

namespace mil::comm {

void mpi_check(int code, const char* expression, const char* file, int line) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) length = 0;
  throw MpiError(std::string(expression) + " failed at " + file + ":" + std::to_string(line) +
                 ": " + std::string(text, static_cast<std::size_t>(length)));
}

MpiEnvironment::MpiEnvironment(int& argc, char**& argv) {
  int initialized = 0;
  MIL_MPI_CHECK(MPI_Initialized(&initialized));
  if (!initialized) {
    // Only the main thread calls MPI; the status server (later) never does.
    int provided = 0;
    MIL_MPI_CHECK(MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided));
    if (provided < MPI_THREAD_FUNNELED) throw MpiError("MPI does not provide MPI_THREAD_FUNNELED");
    finalize_ = true;
  }
  MIL_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &comm_));
  MIL_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  MIL_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  MIL_MPI_CHECK(MPI_Comm_size(comm_, &size_));
  MPI_Comm node = MPI_COMM_NULL;
  MIL_MPI_CHECK(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
  MIL_MPI_CHECK(MPI_Comm_size(node, &local_size_));
  MIL_MPI_CHECK(MPI_Comm_rank(node, &local_rank_));
  // Where world rank 0 (the orchestrator) sits: its local rank on this node, or -1 elsewhere.
  const int mine = rank_ == 0 ? local_rank_ : -1;
  MIL_MPI_CHECK(MPI_Allreduce(&mine, &rank0_local_rank_, 1, MPI_INT, MPI_MAX, node));
  MIL_MPI_CHECK(MPI_Comm_free(&node));
}

MpiEnvironment::~MpiEnvironment() {
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
  if (finalize_) MPI_Finalize();
}

void MpiEnvironment::abort_all(int exit_code) const {
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::abort();
}

}  // namespace mil::comm
