#pragma once
// Runs the gtest suite on every rank of an MPI test binary: only rank 0 prints the report, and the
// process exit code is the worst result of any rank, so a failure on a worker rank fails the test.
#include <gtest/gtest.h>

#include "comm/mpi_env.h"

namespace mil::testing {

inline int run_all_tests_on_every_rank(const mil::comm::MpiEnvironment& mpi) {
  if (mpi.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int local = RUN_ALL_TESTS();
  int worst = 0;
  MIL_MPI_CHECK(MPI_Allreduce(&local, &worst, 1, MPI_INT, MPI_MAX, mpi.comm()));
  return worst;
}

}  // namespace mil::testing
