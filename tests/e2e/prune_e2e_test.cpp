// Pruning sweeps end to end through the real binary: `mpiexec -n 3 mhim sweep` killed with SIGKILL
// between a rung's last durable result and the decision on it, then rerun; and array workers on the
// same sweep. Every job must end done (one ok result) or pruned (one "pruned" journal line, no
// result), exactly once, with the pruned set following validation.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "orchestrator/results/store.h"
#include "orchestrator/sweep/sweep.h"
#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"

namespace mil {
namespace {

using testing::run_command;

/// One synthetic dataset and a pruning sweep over it: 4 learning rates x 3 folds = 12 ABMIL jobs.
/// With eta 2 the first rung runs 4 jobs, 2 points go on to fold 1 and 1 to fold 2: 7 run, 5
/// pruned.
struct PruningSweep {
  testing::TempDir dir;
  std::string sweep_path = dir / "sweep.json";

  PruningSweep() {
    const auto synth =
        run_command(std::string(MIL_MHIM_BINARY) + " synth --out " + (dir / "d") +
                    " --bags 40 --dim 8 --min-instances 5 --max-instances 20 --seed 3");
    EXPECT_EQ(synth.exit_code, 0) << synth.output;
    const nlohmann::json sweep = {{"name", "pruning"},
                                  {"datasets", {{{"name", "d"}, {"root", dir / "d"}}}},
                                  {"models", {{{"name", "abmil"}}}},
                                  {"train", {{"epochs", 2}}},
                                  {"split", {{"fold_count", 3}, {"val_ratio", 0.25}}},
                                  {"grid", {{"train.lr", {2e-3, 1e-3, 5e-4, 1e-4}}}},
                                  {"seeds", {7}},
                                  {"prune", {{"method", "halving"}, {"eta", 2}}}};
    std::ofstream(sweep_path) << sweep.dump(2);
  }
  std::string mpi_command(const std::string& results) const {
    ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
    ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
    return std::string(MIL_MPIEXEC) + " -n 3 --oversubscribe --bind-to none " + MIL_MHIM_BINARY +
           " sweep " + sweep_path + " --results " + results + " --threads 1";
  }
  std::string array_command(const std::string& results) const {
    return std::string(MIL_MHIM_BINARY) + " sweep " + sweep_path + " --array --results " + results +
           " --threads 1";
  }
};

/// job id -> the statuses of its journal lines, in order (torn or malformed lines skipped).
std::map<std::string, std::vector<std::string>> journal_statuses(const std::string& results) {
  std::map<std::string, std::vector<std::string>> out;
  std::ifstream in(results + "/journal.jsonl");
  for (std::string line; std::getline(in, line);) {
    const auto entry = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (entry.is_object() && entry.contains("job_id")) {
      out[entry.at("job_id").get<std::string>()].push_back(entry.value("status", ""));
    }
  }
  return out;
}

/// Checks that every job of the sweep is done or pruned exactly once, and returns the pruned ids.
std::set<std::string> expect_each_job_done_or_pruned_once(const PruningSweep& f,
                                                          const std::string& results) {
  const std::vector<JobSpec> jobs = orch::expand(orch::load_sweep(f.sweep_path));
  EXPECT_EQ(jobs.size(), 12u);
  std::map<std::string, const JobResult*> result_of;
  const std::vector<JobResult> all = orch::ResultsStore(results).load_all();
  for (const auto& r : all) result_of[r.job_id] = &r;
  const auto statuses = journal_statuses(results);
  std::set<std::string> pruned;
  for (const JobSpec& job : jobs) {
    const std::string id = job.id();
    const auto lines = statuses.count(id) ? statuses.at(id) : std::vector<std::string>{};
    if (result_of.count(id)) {
      EXPECT_TRUE(result_of.at(id)->ok()) << id << ": " << result_of.at(id)->error;
      EXPECT_EQ(lines, std::vector<std::string>{"ok"}) << id;
    } else {
      EXPECT_EQ(lines, std::vector<std::string>{"pruned"})
          << id << " is neither done nor pruned once";
      pruned.insert(id);
    }
  }
  EXPECT_EQ(all.size(), 7u);
  EXPECT_EQ(pruned.size(), 5u);
  return pruned;
}

/// The jobs halving must prune, worked out from the ok results' validation AUCs alone: after fold 0
/// the 2 best points go on (ties to the earlier point), after fold 1 the better mean of the two.
std::set<std::string> expected_pruned(const PruningSweep& f, const std::string& results) {
  const std::vector<JobSpec> jobs = orch::expand(orch::load_sweep(f.sweep_path));
  std::map<std::string, double> val;
  for (const auto& r : orch::ResultsStore(results).load_all())
    val[r.job_id] = r.metrics.at("val").at("auc");
  const auto job_of = [&](int point, int fold) { return jobs[point * 3 + fold].id(); };
  std::vector<std::tuple<double, int>> rung0;
  for (int p = 0; p < 4; ++p) rung0.emplace_back(-val.at(job_of(p, 0)), p);
  std::sort(rung0.begin(), rung0.end());
  const int a = std::min(std::get<1>(rung0[0]), std::get<1>(rung0[1]));
  const int b = std::max(std::get<1>(rung0[0]), std::get<1>(rung0[1]));
  const double mean_a = (val.at(job_of(a, 0)) + val.at(job_of(a, 1))) / 2;
  const double mean_b = (val.at(job_of(b, 0)) + val.at(job_of(b, 1))) / 2;
  const int loser = mean_a >= mean_b ? b : a;
  std::set<std::string> pruned{job_of(loser, 2)};
  for (int p = 0; p < 4; ++p) {
    if (p == a || p == b) continue;
    pruned.insert(job_of(p, 1));
    pruned.insert(job_of(p, 2));
  }
  return pruned;
}

}  // namespace

TEST(PruningSweepEndToEnd, KilledBetweenARungsLastResultAndTheDecisionTheRerunPrunesEachJobOnce) {
  PruningSweep f;
  const std::string results = f.dir / "results";
  const std::string paused = f.dir / "paused";
  // Rank 0 stops right after the first rung's last result is durable, before it acts on the
  // decision (MHIM_TEST_PAUSE_BEFORE_PRUNING, read by `mhim sweep`); the test then kills mpirun -9.
  const pid_t pid = fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    ::setenv("MHIM_TEST_PAUSE_BEFORE_PRUNING", paused.c_str(), 1);
    const int devnull = ::open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execl("/bin/sh", "sh", "-c", ("exec " + f.mpi_command(results)).c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(240);
  while (!std::filesystem::exists(paused) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const bool reached = std::filesystem::exists(paused);
  kill(-pid, SIGKILL);  // mpirun and everything it started, without warning
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(reached) << "the sweep never reached its first pruning decision";

  // Killed with the first rung complete and nothing decided: 4 results, no "pruned" line.
  EXPECT_EQ(orch::ResultsStore(results).load_all().size(), 4u);
  for (const auto& [id, lines] : journal_statuses(results)) {
    EXPECT_EQ(std::count(lines.begin(), lines.end(), "pruned"), 0) << id;
  }

  const auto rerun = run_command(f.mpi_command(results));
  ASSERT_EQ(rerun.exit_code, 0) << rerun.output;
  const std::set<std::string> pruned = expect_each_job_done_or_pruned_once(f, results);
  EXPECT_EQ(pruned, expected_pruned(f, results));
  const auto again =
      run_command(f.mpi_command(results));  // nothing left: no job runs or is noted twice
  ASSERT_EQ(again.exit_code, 0) << again.output;
  expect_each_job_done_or_pruned_once(f, results);
  std::ifstream board(results + "/leaderboard.md");
  const std::string md((std::istreambuf_iterator<char>(board)), std::istreambuf_iterator<char>());
  EXPECT_NE(md.find("; 5 pruned (never run"), std::string::npos) << md;
}

TEST(PruningSweepEndToEnd, TwoArrayWorkersPruneTheSameJobsOnceAsRankZeroDoes) {
  PruningSweep f;
  const std::string mpi = f.dir / "mpi", array = f.dir / "array";
  const auto first = run_command(f.mpi_command(mpi));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const std::string both =
      "(" + f.array_command(array) + " & " + f.array_command(array) + " & wait)";
  const auto workers = run_command(both);
  EXPECT_NE(workers.output.find("5 pruned in the sweep"), std::string::npos) << workers.output;
  const std::set<std::string> pruned = expect_each_job_done_or_pruned_once(f, array);
  EXPECT_EQ(pruned, expect_each_job_done_or_pruned_once(f, mpi));
  // Jobs are deterministic: the same ones ran, with the same metrics.
  std::map<std::string, nlohmann::json> metrics;
  for (const auto& r : orch::ResultsStore(mpi).load_all()) metrics[r.job_id] = r.metrics;
  for (const auto& r : orch::ResultsStore(array).load_all())
    EXPECT_EQ(r.metrics, metrics.at(r.job_id)) << r.job_id;
}

}  // namespace mil
