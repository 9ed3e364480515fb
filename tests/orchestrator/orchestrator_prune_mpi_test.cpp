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
#include "tests/support/mpi_gtest.h"
#include "tests/support/temp_dir.h"

namespace mil::orch {
namespace {

MPI_Comm g_comm = MPI_COMM_NULL;  // set in main() from the MpiEnvironment; tests only read it

/// Four grid points x three folds of one (dataset, method), halved with eta 2. Validation AUC of
/// point p on fold f below (test AUC: 1 - validation). Fold 0 keeps points 1 and 3; their means
/// over folds 0-1 are 0.75 and 0.85, so point 3 alone runs fold 2: 7 jobs run, 5 are pruned.
constexpr int kPoints = 4;
constexpr int kFolds = 3;
constexpr double kValidation[kPoints][kFolds] = {
    {0.60, 0.95, 0.95}, {0.90, 0.60, 0.50}, {0.70, 0.95, 0.95}, {0.80, 0.90, 0.50}};

JobSpec job_spec(int point, int fold) {
  JobSpec spec;
  spec.dataset.name = "d";
  spec.dataset.root = "/data/d";
  spec.model.method = "abmil";
  spec.train.lr = 1e-4 * (point + 1);
  spec.split.fold_count = kFolds;
  spec.split.fold_index = fold;
  spec.split.val_ratio = 0.15;
  return spec;
}

std::vector<JobSpec> sweep_jobs() {
  std::vector<JobSpec> jobs;
  for (int p = 0; p < kPoints; ++p) {
    for (int f = 0; f < kFolds; ++f) jobs.push_back(job_spec(p, f));
  }
  return jobs;
}

/// What a job of the sweep reports: ok, validation AUC from kValidation, test AUC its reverse.
JobResult result_of(const JobSpec& spec) {
  const int point = static_cast<int>(std::lround(spec.train.lr * 1e4)) - 1;
  const double val = kValidation[point][spec.split.fold_index];
  JobResult result;
  result.job_id = spec.id();
  result.config_id = spec.config_id();
  result.spec = spec;
  result.status = "ok";
  result.metrics = {{"val", {{"auc", val}}}, {"test", {{"auc", 1.0 - val}}}};
  result.runtime = nlohmann::json::object();
  return result;
}

/// The jobs the sweep must prune (see kValidation).
std::set<std::string> expected_pruned() {
  return {job_spec(0, 1).id(), job_spec(0, 2).id(), job_spec(2, 1).id(), job_spec(2, 2).id(),
          job_spec(1, 2).id()};
}

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
  options.prune.enabled = true;
  options.prune.eta = 2;
  return options;
}

/// A scratch folder made by rank 0 and named to every rank.
struct SharedScratch {
  std::unique_ptr<testing::TempDir> dir;  ///< Rank 0 only.
  std::string path;                       ///< Every rank.
};

SharedScratch shared_scratch() {
  int rank = 0;
  MIL_MPI_CHECK(MPI_Comm_rank(g_comm, &rank));
  SharedScratch scratch;
  if (rank == 0) {
    scratch.dir = std::make_unique<testing::TempDir>();
    scratch.path = scratch.dir->path().string();
  }
  int length = int(scratch.path.size());
  MIL_MPI_CHECK(MPI_Bcast(&length, 1, MPI_INT, 0, g_comm));
  scratch.path.resize(length);
  MIL_MPI_CHECK(MPI_Bcast(scratch.path.data(), length, MPI_CHAR, 0, g_comm));
  return scratch;
}

bool is_rank_zero() {
  int rank = 0;
  MIL_MPI_CHECK(MPI_Comm_rank(g_comm, &rank));
  return rank == comm::kOrchestratorRank;
}

}  // namespace

TEST(OrchestratorPruning, RunsSevenJobsPrunesFiveOnValidationAndCountsThemFinished) {
  const SharedScratch scratch = shared_scratch();
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
  const SharedScratch scratch = shared_scratch();
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
  const SharedScratch scratch = shared_scratch();
  const SweepOutcome outcome = run_sweep(scratch.path + "/results", OrchestratorOptions{});
  if (!is_rank_zero()) return;
  EXPECT_EQ(outcome.ran_ok, std::size_t(kPoints * kFolds));
  EXPECT_EQ(outcome.pruned, 0u);
}

}  // namespace mil::orch

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  mil::comm::MpiEnvironment mpi(argc, argv);
  mil::orch::g_comm = mpi.comm();
  return mil::testing::run_all_tests_on_every_rank(mpi);
}
