// Runs under mpiexec -n 3 (ctest does this): rank 0 runs the real orchestrator loop, ranks 1-2 the
// real worker loop, in-process. Expectations hold for any world size >= 2.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "comm/mpi_env.h"
#include "comm/mpi_transport.h"
#include "comm/protocol.h"
#include "mil/synthetic/generator.h"
#include "orchestrator/orchestrator_loop.h"
#include "orchestrator/results/store.h"
#include "orchestrator/status/board.h"
#include "tests/support/mpi_gtest.h"
#include "tests/support/shared_scratch.h"
#include "worker/worker_loop.h"

namespace mil::orch {
namespace {
MPI_Comm g_comm = MPI_COMM_NULL;  // set in main() from the MpiEnvironment; tests only read it

std::vector<JobSpec> jobs_for(const std::string& root, int count) {
  std::vector<JobSpec> jobs;
  for (int fold = 0; fold < count; ++fold) {
    JobSpec spec;
    spec.dataset = DatasetSpec{"synth", "bags", root, 2, false};
    spec.split.fold_count = count;
    spec.split.fold_index = fold;
    spec.train.epochs = 1;
    jobs.push_back(spec);
  }
  return jobs;
}

}  // namespace

TEST(OrchestratorLoop, RunsEveryJobOnceAcrossWorkersAndStopsThem) {
  int rank = 0, size = 0;
  MIL_MPI_CHECK(MPI_Comm_rank(g_comm, &rank));
  MIL_MPI_CHECK(MPI_Comm_size(g_comm, &size));
  ASSERT_GE(size, 2) << "run under mpiexec -n 3";
  const testing::SharedScratch shared = testing::shared_scratch(g_comm);
  const std::string& scratch = shared.path;
  if (rank != 0) {
    // Every worker gets a kStop eventually; the number of jobs each ran depends on timing.
    const int ran = worker::run_worker(g_comm, {}, "");
    EXPECT_GE(ran, 0);
    return;
  }
  SyntheticOptions o;
  o.bag_count = 20;
  o.feature_dim = 4;
  o.min_instances = 2;
  o.max_instances = 6;
  write_synthetic_benchmark(scratch + "/data", o);
  const auto jobs = jobs_for(scratch + "/data", 4);
  ResultsStore store(scratch + "/results");
  const SweepOutcome outcome = run_orchestrator(g_comm, jobs, store, {});
  EXPECT_EQ(outcome.jobs, 4u);
  EXPECT_EQ(outcome.ran_ok, 4u);
  EXPECT_EQ(outcome.failed, 0u);
  EXPECT_EQ(outcome.skipped, 0u);
  std::set<std::string> ids;
  for (const auto& r : store.load_all()) {
    EXPECT_TRUE(r.ok()) << r.error;
    EXPECT_GE(r.runtime.at("rank").get<int>(), 1);
    ids.insert(r.job_id);
  }
  std::set<std::string> expected;
  for (const auto& j : jobs) expected.insert(j.id());
  EXPECT_EQ(ids, expected);
}

TEST(OrchestratorLoop, TellsTheStatusBoardAboutJobsResultsAndWorkers) {
  int rank = 0, size = 0;
  MIL_MPI_CHECK(MPI_Comm_rank(g_comm, &rank));
  MIL_MPI_CHECK(MPI_Comm_size(g_comm, &size));
  const testing::SharedScratch shared = testing::shared_scratch(g_comm);
  const std::string& scratch = shared.path;
  if (rank != 0) {
    EXPECT_GE(worker::run_worker(g_comm, {}, ""), 0);
    return;
  }
  SyntheticOptions o;
  o.bag_count = 20;
  o.feature_dim = 4;
  o.min_instances = 2;
  o.max_instances = 6;
  write_synthetic_benchmark(scratch + "/data", o);
  auto jobs = jobs_for(scratch + "/data", 4);
  jobs.push_back(jobs_for(scratch + "/missing", 5).back());  // fails: no data there
  ResultsStore store(scratch + "/results");
  JobResult earlier;  // job 0 was done by an earlier run
  earlier.spec = jobs[0];
  earlier.job_id = jobs[0].id();
  earlier.config_id = jobs[0].config_id();
  earlier.status = "ok";
  store.write(earlier);
  StatusBoard board;
  OrchestratorOptions options;
  options.board = &board;
  options.max_attempts = 1;  // the missing-data job fails once, then for good
  const SweepOutcome outcome = run_orchestrator(g_comm, jobs, store, {}, nullptr, options);
  ASSERT_EQ(outcome.ran_ok, 3u);
  const nlohmann::json status = board.snapshot().json;
  EXPECT_EQ(status.at("counts"), (nlohmann::json{{"total", 5},
                                                 {"pending", 0},
                                                 {"running", 0},
                                                 {"committing", 0},
                                                 {"done", 3},
                                                 {"failed", 1},
                                                 {"pruned", 0},
                                                 {"quarantined", 0},
                                                 {"skipped", 1}}));
  EXPECT_EQ(status.at("failures")[0].at("job_id"), jobs[4].id());
  EXPECT_FALSE(status.at("failures")[0].at("error").get<std::string>().empty());
  ASSERT_EQ(status.at("workers").size(), std::size_t(size - 1));
  std::size_t finished = 0;
  for (const auto& w : status.at("workers")) {
    EXPECT_EQ(w.at("state"), "stopped");
    EXPECT_FALSE(w.at("host").get<std::string>().empty());
    finished += w.at("jobs_finished").get<std::size_t>();
  }
  EXPECT_EQ(finished, 4u);
}

TEST(OrchestratorLoop, SkipsJobsWithResultsAndStillStopsEveryWorker) {
  int rank = 0;
  MIL_MPI_CHECK(MPI_Comm_rank(g_comm, &rank));
  const testing::SharedScratch shared = testing::shared_scratch(g_comm);
  const std::string& scratch = shared.path;
  if (rank != 0) {
    EXPECT_EQ(worker::run_worker(g_comm, {}, ""), 0) << "no job should reach a worker";
    return;
  }
  const auto jobs =
      jobs_for(scratch + "/nowhere", 3);  // data that does not exist: running would fail
  ResultsStore store(scratch + "/results");
  for (const auto& spec : jobs) {
    JobResult done;
    done.spec = spec;
    done.job_id = spec.id();
    done.config_id = spec.config_id();
    done.status = "ok";
    store.write(done);
  }
  const SweepOutcome outcome = run_orchestrator(g_comm, jobs, store, {});
  EXPECT_EQ(outcome.skipped, 3u);
  EXPECT_EQ(outcome.ran_ok + outcome.failed, 0u);
}

/// Runs `count` jobs of `short_length` each on two workers, except fold kLongFold which runs 1.5 s,
/// and checks on rank 0 that every job ran exactly once and the long one's worker did not keep the
/// jobs it had taken ahead waiting behind it. Returns how many jobs were given back (0 on the
/// workers).
constexpr int kLongFold = 8;
std::size_t run_short_jobs_around_a_long_one(int count, std::chrono::microseconds short_length) {
  int rank = 0, size = 0;
  MIL_MPI_CHECK(MPI_Comm_rank(g_comm, &rank));
  MIL_MPI_CHECK(MPI_Comm_size(g_comm, &size));
  EXPECT_GE(size, 3) << "needs two workers: run under mpiexec -n 3";
  const testing::SharedScratch shared = testing::shared_scratch(g_comm);
  const std::string& scratch = shared.path;
  auto jobs = jobs_for(scratch + "/nowhere", count);
  if (rank != 0) {
    const worker::JobBody body = [&](const JobSpec& spec, const std::string&,
                                     const std::function<void()>& still_running) {
      const auto length =
          spec.split.fold_index == kLongFold ? std::chrono::microseconds(1500000) : short_length;
      const auto end = std::chrono::steady_clock::now() + length;
      for (auto now = std::chrono::steady_clock::now(); now < end;
           now = std::chrono::steady_clock::now()) {
        std::this_thread::sleep_for(
            std::min<std::chrono::steady_clock::duration>(end - now, std::chrono::milliseconds(5)));
        still_running();
      }
      std::ofstream(scratch + "/ran-" + spec.id(), std::ios::app) << rank << "\n";
      JobResult r;
      r.config_id = spec.config_id();  // the job id is the worker's to fill in
      r.status = "ok";
      return r;
    };
    worker::run_worker(g_comm, {}, "", nullptr, nullptr, body);
    return 0;
  }
  ResultsStore store(scratch + "/results");
  // The status board shows what runs: while the long job runs (before its worker gives back what it
  // took ahead, at 0.5 s), no job taken ahead shows as running on its rank.
  StatusBoard board;
  OrchestratorOptions options;
  options.board = &board;
  std::atomic<bool> sweeping{true};
  int samples = 0, most_beside_long = 0;
  std::thread watcher([&, long_id = jobs[kLongFold].id()] {
    while (sweeping) {
      const nlohmann::json running = board.snapshot().json.at("running");
      for (const auto& job : running) {
        const double elapsed = job.at("elapsed_s").get<double>();
        if (job.at("job_id") != long_id || elapsed < 0.1 || elapsed > 0.45) continue;
        // Jobs handed out after the long one: on its rank, only those taken ahead (jobs before it
        // may still show as running until their results are durable).
        int beside = 0;
        for (const auto& other : running) {
          beside += other.at("rank") == job.at("rank") && other.at("fold").get<int>() > kLongFold;
        }
        most_beside_long = std::max(most_beside_long, beside);
        ++samples;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  });
  const SweepOutcome outcome = run_orchestrator(g_comm, jobs, store, {}, nullptr, options);
  sweeping = false;
  watcher.join();
  EXPECT_GT(samples, 0);
  EXPECT_EQ(most_beside_long, 0) << "jobs taken ahead showed as running before they started";
  EXPECT_EQ(board.summary().counts.done, jobs.size());
  EXPECT_EQ(outcome.ran_ok, jobs.size());
  EXPECT_EQ(outcome.failed + outcome.retries + outcome.interrupted, 0u);
  // Each job ran exactly once (a given-back job was never started by the worker that gave it back).
  for (const JobSpec& job : jobs) {
    std::ifstream in(scratch + "/ran-" + job.id());
    std::string line;
    int runs = 0;
    while (std::getline(in, line)) ++runs;
    EXPECT_EQ(runs, 1) << "fold " << job.split.fold_index;
  }
  // The job after the long one finished before it: it did not wait behind it.
  std::vector<std::string> finished;
  std::ifstream journal(scratch + "/results/journal.jsonl");
  for (std::string line; std::getline(journal, line);) {
    const auto record = nlohmann::json::parse(line);
    if (record.value("status", "") == "ok")
      finished.push_back(record.at("job_id").get<std::string>());
  }
  EXPECT_EQ(finished.size(), jobs.size());
  const auto place = [&](int fold) {
    return std::find(finished.begin(), finished.end(), jobs[fold].id()) - finished.begin();
  };
  EXPECT_LT(place(kLongFold + 1), place(kLongFold));
  EXPECT_EQ(place(kLongFold), static_cast<std::ptrdiff_t>(jobs.size()) - 1)
      << "every short job ends within 1.5 s";
  // Results carry the id rank 0 sent and the spec it holds (workers send neither).
  for (const JobResult& result : store.load_all()) EXPECT_EQ(result.job_id, result.spec.id());
  return outcome.given_back;
}

TEST(OrchestratorLoop, AJobTakenAheadIsGivenBackWhenTheJobBeforeItRunsLongAndRunsElsewhereOnce) {
  // 20 ms jobs make workers ask one job ahead; the long job's worker must give that one back after
  // 0.5 s instead of making it wait 1.5 s while the other worker is idle.
  const std::size_t given_back =
      run_short_jobs_around_a_long_one(40, std::chrono::milliseconds(20));
  int rank = 0;
  MIL_MPI_CHECK(MPI_Comm_rank(g_comm, &rank));
  if (rank == 0) {
    EXPECT_EQ(given_back, 1u) << "only the job taken ahead of the long one";
  }
}

TEST(OrchestratorLoop, WorkersAskSeveralJobsAheadOfTinyJobsAndGiveThemAllBackBehindALongOne) {
  // 0.2 ms jobs make workers ask up to 10 jobs ahead (2 ms / 0.2 ms, under the cap of 16): the long
  // job's worker holds several and gives every one back, and each runs once, elsewhere. On a loaded
  // machine a 0.2 ms sleep can last milliseconds, and the depth shrinks with it, so the scenario
  // runs up to 3 times until one holds more than one ahead (with the depth capped at 1, none ever
  // does).
  int rank = 0;
  MIL_MPI_CHECK(MPI_Comm_rank(g_comm, &rank));
  std::size_t most_given_back = 0;
  for (int run = 0; run < 3; ++run) {
    const std::size_t given_back =
        run_short_jobs_around_a_long_one(120, std::chrono::microseconds(200));
    if (rank == 0) {
      EXPECT_LE(given_back, 16u) << "never more than 16 ahead";
      most_given_back = std::max(most_given_back, given_back);
    }
    int again = rank == 0 && most_given_back < 2;
    MIL_MPI_CHECK(MPI_Bcast(&again, 1, MPI_INT, 0, g_comm));
    if (!again) break;
  }
  if (rank == 0) {
    EXPECT_GE(most_given_back, 2u) << "a worker of tiny jobs holds more than one ahead";
  }
}

TEST(OrchestratorLoop, RetriesFailedAttemptsQuarantinesRepeatedFailuresAndRecordsEveryHeartbeat) {
  int rank = 0;
  MIL_MPI_CHECK(MPI_Comm_rank(g_comm, &rank));
  const testing::SharedScratch shared = testing::shared_scratch(g_comm);
  const std::string& scratch = shared.path;
  const auto jobs = jobs_for(scratch + "/nowhere", 3);
  if (rank != 0) {
    // Fold 0 is killed on its first attempt only (a marker file remembers it across workers), fold
    // 1 fails the same way every time (paths and numbers differ), fold 2 succeeds. Every attempt
    // beats once, and a malformed beat precedes it.
    const worker::JobBody body = [&](const JobSpec& spec, const std::string&,
                                     const std::function<void()>&) {
      comm::send_message(g_comm, 0, comm::MsgTag::kHeartbeat, "not json");
      comm::send_message(
          g_comm, 0, comm::MsgTag::kHeartbeat,
          nlohmann::json{{"job_id", spec.id()}, {"epoch", 1}, {"epochs", 2}, {"eta_s", 3.5}}
              .dump());
      JobResult r;
      r.spec = spec;
      r.job_id = spec.id();
      r.config_id = spec.config_id();
      r.status = "ok";
      const std::string marker = scratch + "/fold0-attempted";
      if (spec.split.fold_index == 0 && !std::filesystem::exists(marker)) {
        std::ofstream(marker) << "1";
        r.status = "failed";
        r.error = "killed (signal 9; out of memory?)";
      } else if (spec.split.fold_index == 1) {
        r.status = "failed";
        r.error = "loading data: " + scratch + "/rank" + std::to_string(rank) +
                  "/x.pt: truncated at byte " + std::to_string(rank * 7);
      }
      return r;
    };
    worker::run_worker(g_comm, {}, "", nullptr, nullptr, body);
    return;
  }
  ResultsStore store(scratch + "/results");
  OrchestratorOptions options;
  options.max_attempts = 2;
  std::vector<std::pair<int, nlohmann::json>> beats;
  options.on_heartbeat = [&](int from, const nlohmann::json& beat) {
    beats.emplace_back(from, beat);
  };
  const SweepOutcome outcome = run_orchestrator(g_comm, jobs, store, {}, nullptr, options);
  EXPECT_EQ(outcome.ran_ok, 2u);
  EXPECT_EQ(outcome.quarantined, 1u);
  EXPECT_EQ(outcome.failed, 0u);
  EXPECT_EQ(outcome.retries, 2u);  // fold 0 once, fold 1 once
  EXPECT_EQ(outcome.heartbeats, 5u) << "one per attempt; the malformed ones are dropped";
  ASSERT_EQ(beats.size(), 5u);
  for (const auto& [from, beat] : beats) {
    EXPECT_GE(from, 1);
    EXPECT_EQ(beat.at("rank"), from);
    EXPECT_EQ(beat.at("epochs"), 2);
    EXPECT_EQ(beat.at("eta_s"), 3.5);
    EXPECT_TRUE(beat.contains("seen_at"));
  }
  EXPECT_FALSE(outcome.last_heartbeat.empty());
  const auto results = store.load_all();
  ASSERT_EQ(results.size(), 3u);
  for (const auto& r : results) {
    if (r.spec.split.fold_index == 1) {
      EXPECT_EQ(r.status, "quarantined");
      EXPECT_EQ(r.runtime.at("attempt_errors").size(), 2u);
    } else {
      EXPECT_TRUE(r.ok()) << r.error;
    }
    EXPECT_EQ(r.runtime.at("attempt"), r.spec.split.fold_index == 2 ? 1 : 2);
  }
  const auto journal = replay_journal(scratch + "/results/journal.jsonl");
  EXPECT_EQ(journal.at(jobs[0].id()).retries, 1);
  EXPECT_EQ(journal.at(jobs[1].id()).status, "quarantined");
}

}  // namespace mil::orch

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  mil::comm::MpiEnvironment mpi(argc, argv);
  mil::orch::g_comm = mpi.comm();
  at::set_num_threads(1);
  return mil::testing::run_all_tests_on_every_rank(mpi);
}
