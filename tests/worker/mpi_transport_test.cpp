// Runs under mpiexec -n 2 (ctest does this). Expectations hold for any world size >= 2.
#include "worker/mpi_transport.h"

#include <gtest/gtest.h>

#include "tests/support/mpi_gtest.h"
#include "worker/mpi_env.h"

namespace mil::worker {
namespace {
MPI_Comm g_comm = MPI_COMM_NULL;  // set in main() from the MpiEnvironment; tests only read it
}

TEST(MpiTransport, DeliversTagAndPayloadIntactIncludingLargeFrames) {
  int rank = 0, size = 0;
  MIL_MPI_CHECK(MPI_Comm_rank(g_comm, &rank));
  MIL_MPI_CHECK(MPI_Comm_size(g_comm, &size));
  ASSERT_GE(size, 2) << "run under mpiexec -n 2";
  std::string big(8 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = char(i * 131 % 251);
  if (rank == 1) {
    send_message(g_comm, 0, MsgTag::kResult, "{\"job_id\":\"abc\"}");
    send_message(g_comm, 0, MsgTag::kJob, big);
    const Message stop = wait_message(g_comm, 0, std::chrono::milliseconds(1));
    EXPECT_EQ(stop.tag, MsgTag::kStop);
  } else if (rank == 0) {
    const Message first = wait_message(g_comm, 1, std::chrono::milliseconds(1));
    EXPECT_EQ(first.source, 1);
    EXPECT_EQ(first.tag, MsgTag::kResult);
    EXPECT_EQ(first.payload, "{\"job_id\":\"abc\"}");
    const Message second = wait_message(g_comm, 1, std::chrono::milliseconds(1));
    EXPECT_EQ(second.tag, MsgTag::kJob);
    EXPECT_EQ(second.payload, big);
    send_message(g_comm, 1, MsgTag::kStop, "{}");
  }
  EXPECT_FALSE(poll_message(g_comm).has_value());
}

TEST(MpiCheck, ThrowsNamingTheCallAndMpiErrorString) {
  // Sending to a rank that does not exist fails with MPI_ERR_RANK on an MPI_ERRORS_RETURN communicator.
  int size = 0;
  MIL_MPI_CHECK(MPI_Comm_size(g_comm, &size));
  try {
    send_message(g_comm, size + 5, MsgTag::kJob, "x");
    FAIL() << "no exception";
  } catch (const MpiError& e) {
    EXPECT_NE(std::string(e.what()).find("MPI_Send"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("rank"), std::string::npos) << e.what();
  }
}

}  // namespace mil::worker

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  mil::worker::MpiEnvironment mpi(argc, argv);
  mil::worker::g_comm = mpi.comm();
  return mil::testing::run_all_tests_on_every_rank(mpi);
}
