#pragma once
// MPI lifecycle and error checking. Nothing outside main() touches MPI_COMM_WORLD: components get
// communicators from MpiEnvironment.
#include <stdexcept>
#include <string>

#include <mpi.h>

namespace mil::comm {

/// An MPI call failed; the message names the call, the source line and MPI's error string.
class MpiError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Throws MpiError unless `code` is MPI_SUCCESS. Use through MIL_MPI_CHECK.
void mpi_check(int code, const char* expression, const char* file, int line);

/// RAII owner of MPI_Init/MPI_Finalize. Finalizes only if it initialized. Its communicator is a
/// duplicate of MPI_COMM_WORLD with MPI_ERRORS_RETURN, so failures become exceptions.
class MpiEnvironment {
 public:
  MpiEnvironment(int& argc, char**& argv);
  ~MpiEnvironment();
  MpiEnvironment(const MpiEnvironment&) = delete;
  MpiEnvironment& operator=(const MpiEnvironment&) = delete;

  MPI_Comm comm() const { return comm_; }  ///< Private duplicate of the world communicator.
  int rank() const { return rank_; }
  int size() const { return size_; }
  /// Number of ranks of this job on this node (for the default thread count).
  int local_size() const { return local_size_; }
  /// This rank's index among the job's ranks on this node (picks its GPU).
  int local_rank() const { return local_rank_; }
  /// The local rank of world rank 0 when it runs on this node, else -1 (a sweep's orchestrator
  /// takes no GPU slot: mil/core/device_slots.h).
  int rank0_local_rank() const { return rank0_local_rank_; }
  /// Kills every rank of the job; for errors after which peers would otherwise wait forever.
  [[noreturn]] void abort_all(int exit_code) const;

 private:
  bool finalize_ = false;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
  int local_size_ = 1;
  int local_rank_ = 0;
  int rank0_local_rank_ = -1;
};

}  // namespace mil::comm

/// Checks an MPI call's return code; throws mil::comm::MpiError naming the call on failure.
#define MIL_MPI_CHECK(expr) ::mil::comm::mpi_check((expr), #expr, __FILE__, __LINE__)
