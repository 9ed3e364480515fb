// Runs under mpiexec -n 3 (ctest does this): rank 0 runs the real orchestrator loop with halving
// on, the other ranks are fake workers that speak protocol.h and train nothing: each job reports
// the validation AUC of a table and the reverse test AUC, so the pruned set is known in advance and
// a decision that read the test metric would prune the other points. No LibTorch: it starts at
// once.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "comm/job_messages.h"
#include "comm/mpi_env.h"
#include "comm/mpi_transport.h"
#include "comm/protocol.h"
#include "orchestrator/orchestrator_loop.h"
#include "orchestrator/results/store.h"
#include "tests/support/halving_sweep.h"
#include "tests/support/mpi_gtest.h"
#include "tests/support/shared_scratch.h"

namespace mil::orch {
namespace {

MPI_Comm g_comm = MPI_COMM_NULL;  // set in main() from the MpiEnvironment; tests only read it

using testing::halving::expected_pruned;
using testing::halving::job_spec;
using testing::halving::kPoints;
using testing::halving::result_of;
using testing::halving::sweep_jobs;

/// A worker rank that asks for jobs (protocol.h step 1) and reports each at once (step 4) until it
/// is told to stop; returns how many it ran.
int fake_worker(int rank) {
  const std::string request = nlohmann::json{{"rank", rank}, {"host", "fake"}}.dump();
  for (int ran = 0;;) {
    comm::send_message(g_comm, comm::kOrchestratorRank, comm::MsgTag::kRequestJob, request);
    const comm::Message answer =
        comm::wait_message(g_comm, comm::kOrchestratorRank, std::chrono::milliseconds(1));
    if (answer.tag == comm::MsgTag::kStop) return ran;
    if (answer.tag == comm::MsgTag::kWait) {
      const int retry_ms = nlohmann::json::parse(answer.payload).at("retry_ms").get<int>();
      std::this_thread::sleep_for(std::chrono::milliseconds(retry_ms));
      continue;
    }
    EXPECT_EQ(answer.tag, comm::MsgTag::kJob);
    const auto ticket = nlohmann::json::parse(answer.payload).get<comm::JobTicket>();
    comm::send_message(g_comm, comm::kOrchestratorRank, comm::MsgTag::kResult,
                       result_json_without_spec(result_of(ticket.spec)).dump());
    ++ran;
  }
}

/// job id -> the statuses of its journal lines, in order.
std::map<std::string, std::vector<std::string>> journal_statuses(const std::string& results) {
  std::map<std::string, std::vector<std::string>> out;
  std::ifstream in(results + "/journal.jsonl");
  for (std::string line; std::getline(in, line);) {
    const auto entry = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (entry.is_object() && entry.contains("job_id"))
      out[entry.at("job_id").get<std::string>()].push_back(entry.value("status", ""));
  }
  return out;
}

/// Checks that each job has one ok result and one "ok" line, or no result and one "pruned" line;
/// returns the pruned ones.
std::set<std::string> expect_each_job_done_or_pruned_once(const std::string& results) {
  std::set<std::string> with_result, pruned;
  for (const JobResult& r : ResultsStore(results).load_all()) with_result.insert(r.job_id);
  const auto statuses = journal_statuses(results);
  for (const JobSpec& job : sweep_jobs()) {
    const std::string id = job.id();
    const auto lines = statuses.count(id) ? statuses.at(id) : std::vector<std::string>{};
    if (with_result.count(id)) {
      EXPECT_EQ(lines, std::vector<std::string>{"ok"}) << id;
    } else {
      EXPECT_EQ(lines, std::vector<std::string>{"pruned"}) << id << " is neither done nor pruned";
      pruned.insert(id);
    }
  }
  return pruned;
}

/// Runs the sweep once: rank 0 orchestrates into `results` (its path broadcast from rank 0), the
/// others are fake workers. Returns rank 0's outcome (empty on the workers).
SweepOutcome run_sweep(const std::string& results, const OrchestratorOptions& options) {
  int rank = 0;
  MIL_MPI_CHECK(MPI_Comm_rank(g_comm, &rank));
  if (rank != comm::kOrchestratorRank) {
    fake_worker(rank);
    return {};
  }
  ResultsStore store(results);
  return run_orchestrator(g_comm, sweep_jobs(), store, {}, nullptr, options);
}

OrchestratorOptions halving_options() {
  OrchestratorOptions options;
  options.prune = testing::halving::prune_spec();
  return options;
}

bool is_rank_zero() {
  int rank = 0;
  MIL_MPI_CHECK(MPI_Comm_rank(g_comm, &rank));
  return rank == comm::kOrchestratorRank;
}

}  // namespace

TEST(OrchestratorPruning, RunsSevenJobsPrunesFiveOnValidationAndCountsThemFinished) {
  const testing::SharedScratch scratch = testing::shared_scratch(g_comm);
  const std::string results = scratch.path + "/results";
  const SweepOutcome outcome = run_sweep(results, halving_options());
  if (!is_rank_zero()) return;
  EXPECT_EQ(outcome.ran_ok, 7u);
  EXPECT_EQ(outcome.pruned, 5u);
  EXPECT_EQ(outcome.failed, 0u);
  // Validation keeps points 1 and 3; the test AUC (1 - validation) would have kept 0 and 2.
  EXPECT_EQ(expect_each_job_done_or_pruned_once(results), expected_pruned());
}

TEST(OrchestratorPruning, ARestartAfterARungsLastResultDecidesFromTheResultsAndJournalsOnce) {
  const testing::SharedScratch scratch = testing::shared_scratch(g_comm);
  const std::string results = scratch.path + "/results";
  if (is_rank_zero()) {
    // What a kill -9 between the first rung's last durable result and its decision leaves: the
    // four fold-0 results, and no "pruned" line.
    ResultsStore store(results);
    for (int p = 0; p < kPoints; ++p) store.write(result_of(job_spec(p, 0)));
  }
  const SweepOutcome rerun = run_sweep(results, halving_options());
  if (is_rank_zero()) {
    EXPECT_EQ(rerun.skipped, 4u);
    EXPECT_EQ(rerun.ran_ok, 3u);
    EXPECT_EQ(rerun.pruned, 5u);
    EXPECT_EQ(expect_each_job_done_or_pruned_once(results), expected_pruned());
  }
  // Once more: nothing runs, nothing is journaled again, and the pruned jobs still count.
  const SweepOutcome again = run_sweep(results, halving_options());
  if (!is_rank_zero()) return;
  EXPECT_EQ(again.ran_ok, 0u);
  EXPECT_EQ(again.pruned, 5u);
  EXPECT_EQ(expect_each_job_done_or_pruned_once(results), expected_pruned());
}

TEST(OrchestratorPruning, ASweepWithoutPruneRunsEveryJob) {
  const testing::SharedScratch scratch = testing::shared_scratch(g_comm);
  const SweepOutcome outcome = run_sweep(scratch.path + "/results", OrchestratorOptions{});
  if (!is_rank_zero()) return;
  EXPECT_EQ(outcome.ran_ok, sweep_jobs().size());
  EXPECT_EQ(outcome.pruned, 0u);
}

}  // namespace mil::orch

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  mil::comm::MpiEnvironment mpi(argc, argv);
  mil::orch::g_comm = mpi.comm();
  return mil::testing::run_all_tests_on_every_rank(mpi);
}
