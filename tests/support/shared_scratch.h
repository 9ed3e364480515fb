#pragma once
// A scratch folder for MPI tests whose ranks share a node: rank 0 creates it (and removes it when
// its SharedScratch goes away) and every rank learns its path through a broadcast.
#include <memory>
#include <string>

#include "comm/mpi_env.h"
#include "tests/support/temp_dir.h"

namespace mil::testing {

/// The folder: owned by rank 0, named to every rank.
struct SharedScratch {
  std::unique_ptr<TempDir> dir;  ///< Rank 0 only.
  std::string path;              ///< Every rank.
};

/// Collective over `comm`: every rank must call it.
inline SharedScratch shared_scratch(MPI_Comm comm) {
  int rank = 0;
  MIL_MPI_CHECK(MPI_Comm_rank(comm, &rank));
  SharedScratch scratch;
  if (rank == 0) {
    scratch.dir = std::make_unique<TempDir>();
    scratch.path = scratch.dir->path().string();
  }
  int length = int(scratch.path.size());
  MIL_MPI_CHECK(MPI_Bcast(&length, 1, MPI_INT, 0, comm));
  scratch.path.resize(length);
  MIL_MPI_CHECK(MPI_Bcast(scratch.path.data(), length, MPI_CHAR, 0, comm));
  return scratch;
}

}  // namespace mil::testing
