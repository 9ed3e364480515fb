// Runs under mpiexec -n 2 (ctest does this). Expectations hold for any world size >= 2.
#include "comm/mpi_transport.h"

#include <gtest/gtest.h>

#include "comm/mpi_env.h"
#include "tests/support/mpi_gtest.h"
#include "worker/job_group_comm.h"

namespace mil::comm {
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

// Rank 0 queues short frames (their characters live inside the string object) and frames far over
// the eager limit, which cannot leave before rank 1 receives them, and only then meets rank 1 at a
// barrier. A blocking send would never reach the barrier (the test would hang until ctest's
// timeout).
TEST(QueuedSender, QueuesFramesTheReceiverHasNotAskedForAndDeliversThemIntactInOrder) {
  int rank = 0;
  MIL_MPI_CHECK(MPI_Comm_rank(g_comm, &rank));
  // The test before ends with every rank probing for stray frames: none of these may reach that
  // probe.
  MIL_MPI_CHECK(MPI_Barrier(g_comm));
  constexpr int kFrames = 300;
  const auto frame = [](int i) {
    if (i % 100 != 50) return "s" + std::to_string(i);
    std::string big(4 << 20, '\0');
    for (std::size_t k = 0; k < big.size(); ++k) big[k] = char((k + i) * 131 % 251);
    return big;
  };
  if (rank == 0) {
    QueuedSender outbox(g_comm);
    for (int i = 0; i < kFrames; ++i)
      outbox.send(1, i % 2 ? MsgTag::kJob : MsgTag::kWait, frame(i));
    outbox.progress();
    EXPECT_GE(outbox.in_flight(), 1u) << "a 4 MB frame left before its receiver asked for it";
    MIL_MPI_CHECK(MPI_Barrier(g_comm));
    outbox.drain();
    EXPECT_EQ(outbox.in_flight(), 0u);
  } else {
    MIL_MPI_CHECK(MPI_Barrier(g_comm));
    if (rank == 1) {
      for (int i = 0; i < kFrames; ++i) {
        const Message m = wait_message(g_comm, 0, std::chrono::milliseconds(1));
        ASSERT_EQ(m.tag, i % 2 ? MsgTag::kJob : MsgTag::kWait) << "frame " << i;
        ASSERT_EQ(m.payload, frame(i)) << "frame " << i;
      }
    }
  }
  MIL_MPI_CHECK(MPI_Barrier(g_comm));
  EXPECT_FALSE(poll_message(g_comm).has_value());
}

TEST(MpiCheck, ThrowsNamingTheCallAndMpiErrorString) {
  // Sending to a rank that does not exist fails with MPI_ERR_RANK on an MPI_ERRORS_RETURN
  // communicator.
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

TEST(GroupJob, RoundTripsThroughTheKJobEnvelopeAndRejectsMalformedGroupsNamingTheField) {
  GroupJob group;
  group.spec.train.ranks = 2;
  group.ranks = {1, 3};
  group.tag = kFirstGroupTag + 7;
  const nlohmann::json j = group;
  EXPECT_TRUE(is_group_job(j));
  EXPECT_FALSE(
      is_group_job(nlohmann::json(group.spec)));  // a one-rank job's payload is the bare spec
  const GroupJob back = j.get<GroupJob>();
  EXPECT_EQ(back.ranks, group.ranks);
  EXPECT_EQ(back.tag, group.tag);
  EXPECT_EQ(back.spec.id(), group.spec.id());
  const auto rejects = [&](const char* key, const nlohmann::json& value,
                           const std::string& fragment) {
    nlohmann::json bad = j;
    bad[key] = value;
    try {
      bad.get<GroupJob>();
      ADD_FAILURE() << key << " = " << value.dump() << " was accepted";
    } catch (const std::exception& e) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
    }
  };
  rejects("group_ranks", {3, -1}, "non-negative");
  rejects("group_ranks", {1, 1}, "distinct");
  rejects("group_ranks", {1, 2, 3}, "train.ranks 2");
  rejects("group_tag", 5, "group_tag 5 is outside");
  rejects("extra", 1, "extra");
}

TEST(JobGroupComm, OnlyTheMembersBuildIt) {
  int rank = 0, size = 0;
  MIL_MPI_CHECK(MPI_Comm_rank(g_comm, &rank));
  MIL_MPI_CHECK(MPI_Comm_size(g_comm, &size));
  ASSERT_GE(size, 2) << "run under mpiexec -n 2";
  // MPI_Comm_create_group's own messages travel on g_comm with the group's tag, so a receive from
  // any source and with any tag (the previous test's last poll) could take them: start only when
  // every rank is past it. In a sweep only rank 0 receives from any source, and it is never a
  // member.
  MIL_MPI_CHECK(MPI_Barrier(g_comm));
  // Every rank but 0, as a sweep's workers, listed from the highest (the leader need not be the
  // lowest rank): rank 0 never calls anything and is not waited for.
  GroupJob group;
  for (int r = size - 1; r >= 1; --r) group.ranks.push_back(r);
  group.spec.train.ranks = size - 1;
  group.tag = kFirstGroupTag;
  if (rank == 0) {
    EXPECT_THROW(worker::JobGroupComm(g_comm, group),
                 std::runtime_error);  // not a member: refused before any MPI call
  } else {
    const worker::JobGroupComm job_comm(g_comm, group);
    int job_rank = -1, job_size = 0;
    MIL_MPI_CHECK(MPI_Comm_rank(job_comm.comm(), &job_rank));
    MIL_MPI_CHECK(MPI_Comm_size(job_comm.comm(), &job_size));
    EXPECT_EQ(job_size, size - 1);
    EXPECT_EQ(job_rank,
              size - 1 - rank);  // the group's order is the list's: ranks[0] is its rank 0
    int sum = 0;
    const int one = 1;
    MIL_MPI_CHECK(MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, job_comm.comm()));
    EXPECT_EQ(sum, size - 1);
  }
}

}  // namespace mil::comm

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  mil::comm::MpiEnvironment mpi(argc, argv);
  mil::comm::g_comm = mpi.comm();
  return mil::testing::run_all_tests_on_every_rank(mpi);
}
