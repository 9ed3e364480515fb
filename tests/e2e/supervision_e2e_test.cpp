// Supervised jobs under real failures, through the real binary: `mpiexec -n 3 mhim sweep` with
// every job in a `mhim train --job` child process. Children are found through their heartbeat files
// (pid, parent pid), killed with real signals, and the results directory is checked with the
// orchestrator's readers.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "orchestrator/results/store.h"
#include "orchestrator/sweep/sweep.h"
#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"

namespace mil {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

using testing::CommandOutput;
using testing::run_command;

std::string mpirun(int ranks, const std::string& args, const std::string& env = "") {
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
  return env + std::string(MIL_MPIEXEC) + " -n " + std::to_string(ranks) +
         " --oversubscribe --bind-to none " + (env.empty() ? "" : "-x MHIM_TEST_FAULT ") +
         MIL_MHIM_BINARY + " " + args;
}

/// Starts `command` under /bin/sh in the background, output to `log`; returns its pid.
pid_t start(const std::string& command, const std::string& log) {
  const pid_t pid = fork();
  if (pid == 0) {
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(out, 1);
    dup2(out, 2);
    execl("/bin/sh", "sh", "-c", ("exec " + command).c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

/// Exit status of `pid` once it ends (-1 when killed by a signal).
int wait_exit(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Pids of live processes whose command line mentions `needle` (the test's own folder).
std::vector<pid_t> processes_mentioning(const std::string& needle) {
  std::vector<pid_t> pids;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string cmdline = read_text(entry.path().string() + "/cmdline");
    for (char& c : cmdline) c = c == '\0' ? ' ' : c;
    const std::string stat = read_text(entry.path().string() + "/stat");
    const bool zombie = stat.find(") Z ") != std::string::npos;
    if (!zombie && cmdline.find(needle) != std::string::npos &&
        pid_t(std::stol(name)) != ::getpid()) {
      pids.push_back(pid_t(std::stol(name)));
    }
  }
  return pids;
}

/// True once no process mentions `needle`, waiting up to `limit`.
bool all_gone(const std::string& needle, std::chrono::seconds limit) {
  const auto deadline = Clock::now() + limit;
  while (!processes_mentioning(needle).empty()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return true;
}

/// The first heartbeat under `work` that satisfies `pred`, waiting up to `limit`; null when none.
nlohmann::json wait_for_heartbeat(const std::string& work,
                                  const std::function<bool(const nlohmann::json&)>& pred,
                                  std::chrono::seconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    std::error_code ec;
    for (const auto& job : fs::directory_iterator(work, ec)) {
      const auto beat = nlohmann::json::parse(read_text((job.path() / "heartbeat.json").string()),
                                              nullptr, false);
      if (beat.is_object() && pred(beat)) return beat;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return nullptr;
}

/// Journal lines per (job id, status).
std::map<std::pair<std::string, std::string>, int> journal_counts(const std::string& results) {
  std::map<std::pair<std::string, std::string>, int> counts;
  std::ifstream in(results + "/journal.jsonl");
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object())
      ++counts[{j.at("job_id").get<std::string>(), j.at("status").get<std::string>()}];
  }
  return counts;
}

/// Metrics without the fields that say how a run went rather than what it computed.
nlohmann::json computed(const JobResult& r) {
  nlohmann::json m = r.metrics;
  m["selection"].erase("resumed_from_epoch");
  return m;
}

/// Synthetic datasets named `names` (seeded by position) and a sweep over them: one abmil config
/// per lr, 3 folds, `epochs` epochs. Bigger bags than the sweep e2e tests so that jobs run long
/// enough to be hit.
struct Fixture {
  testing::TempDir dir;
  std::string sweep_path = dir / "sweep.json";

  Fixture(const std::vector<std::string>& names, const std::vector<double>& lrs, int epochs,
          int fold_count = 3) {
    nlohmann::json datasets = nlohmann::json::array();
    int seed = 1;
    for (const auto& name : names) {
      const auto synth =
          run_command(std::string(MIL_MHIM_BINARY) + " synth --out " + (dir / name) +
                      " --bags 40 --dim 256 --min-instances 200 --max-instances 400 --seed " +
                      std::to_string(seed++));
      EXPECT_EQ(synth.exit_code, 0) << synth.output;
      datasets.push_back({{"name", name}, {"root", dir / name}});
    }
    const nlohmann::json sweep = {{"name", "supervision"},
                                  {"datasets", datasets},
                                  {"models", {{{"name", "abmil"}}}},
                                  {"train", {{"epochs", epochs}}},
                                  {"split", {{"fold_count", fold_count}, {"val_ratio", 0.25}}},
                                  {"grid", {{"train.lr", lrs}}},
                                  {"seeds", {7}}};
    std::ofstream(sweep_path) << sweep.dump(2);
  }
  std::string child_start = "fork";  ///< --child-start of every sweep run
  std::string sweep(const std::string& results, const std::string& extra = "",
                    const std::string& env = "") const {
    return mpirun(3,
                  "sweep " + sweep_path + " --results " + results + " --threads 1 --child-start " +
                      child_start + " " + extra,
                  env);
  }
  std::size_t job_count() const { return orch::expand(orch::load_sweep(sweep_path)).size(); }
};

/// The worker rank supervising the job whose heartbeat is `beat`: its parent, or with --child-start
/// fork the parent of its parent, the rank's zygote.
pid_t supervising_rank(const nlohmann::json& beat) {
  const pid_t parent = pid_t(beat.at("parent_pid").get<long>());
  if (read_text("/proc/" + std::to_string(parent) + "/cmdline").find("zygote") == std::string::npos)
    return parent;
  const std::string stat = read_text("/proc/" + std::to_string(parent) + "/stat");
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string state;
  long grandparent = -1;
  fields >> state >> grandparent;
  return pid_t(grandparent);
}

/// Runs each test with children forked by the rank's zygote and exec'd.
class SupervisedSweep : public ::testing::TestWithParam<std::string> {};

INSTANTIATE_TEST_SUITE_P(ChildStart, SupervisedSweep, ::testing::Values("fork", "exec"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                           return info.param;
                         });

}  // namespace

TEST_P(SupervisedSweep, AChildKilledMidRunIsRetriedFromItsCheckpointAndItsResultWrittenOnce) {
  // Long enough (on an idle machine too) that rank 0 hears at least one 2-second beat from a
  // running job.
  constexpr int kEpochs = 40;
  Fixture f({"d"}, {1e-3}, kEpochs, /*fold_count=*/2);
  f.child_start = GetParam();
  const std::string results = f.dir / "results";
  const pid_t sweep = start(f.sweep(results), f.dir / "sweep.log");
  const auto beat = wait_for_heartbeat(
      results + "/work",
      [](const nlohmann::json& b) {
        return b.at("stage") == "training" && b.at("epoch").get<int>() >= 2;
      },
      std::chrono::seconds(90));
  ASSERT_FALSE(beat.is_null()) << read_text(f.dir / "sweep.log");
  const std::string victim = beat.at("job_id");
  ASSERT_EQ(kill(pid_t(beat.at("pid").get<long>()), SIGKILL), 0);
  ASSERT_EQ(wait_exit(sweep), 0) << read_text(f.dir / "sweep.log");
  const std::string log = read_text(f.dir / "sweep.log");
  EXPECT_EQ(log.find(" 0 heartbeats"), std::string::npos)
      << "rank 0 should have heard the running jobs beat";
  EXPECT_NE(log.find(" heartbeats"), std::string::npos) << log;

  const auto all = orch::ResultsStore(results).load_all();
  ASSERT_EQ(all.size(), 2u);
  for (const auto& r : all) EXPECT_TRUE(r.ok()) << r.job_id << ": " << r.error;
  const auto counts = journal_counts(results);
  EXPECT_EQ(counts.at({victim, "retry"}), 1);
  EXPECT_EQ(counts.at({victim, "ok"}), 1);
  const std::string journal = read_text(results + "/journal.jsonl");
  EXPECT_NE(journal.find("killed (signal 9; out of memory?)"), std::string::npos) << journal;
  for (const auto& r : all) {
    if (r.job_id != victim) continue;
    EXPECT_EQ(r.runtime.at("attempt"), 2);
    EXPECT_GE(r.metrics.at("selection").at("resumed_from_epoch").get<int>(), 1)
        << "the retry resumes its checkpoint";
    EXPECT_EQ(r.metrics.at("selection").at("epochs_run"), kEpochs);
  }
}

TEST_P(SupervisedSweep, AJobThatAlwaysCrashesOrHangsIsQuarantinedWhileTheOthersFinish) {
  Fixture f({"a", "crash", "hang"}, {1e-3}, /*epochs=*/3, /*fold_count=*/2);
  f.child_start = GetParam();
  const std::string results = f.dir / "results";
  const auto out = run_command(f.sweep(results, "--max-attempts 2 --heartbeat-timeout 8",
                                       "MHIM_TEST_FAULT=abort:crash,hang:hang "));
  EXPECT_EQ(out.exit_code, 3) << out.output;  // finished, with failures
  EXPECT_NE(out.output.find("2 ok, 0 failed, 4 quarantined, 4 retried attempts"), std::string::npos)
      << out.output;
  const auto all = orch::ResultsStore(results).load_all();
  ASSERT_EQ(all.size(), 6u);
  for (const auto& r : all) {
    if (r.spec.dataset.name == "a") {
      EXPECT_TRUE(r.ok()) << r.error;
      continue;
    }
    EXPECT_EQ(r.status, "quarantined") << r.job_id;
    EXPECT_EQ(r.runtime.at("attempt_errors").size(), 2u);
    if (r.spec.dataset.name == "crash") {
      EXPECT_EQ(r.error, "killed (signal 6, Aborted)");
    } else {
      EXPECT_EQ(r.error.rfind("hung: no heartbeat for ", 0), 0u) << r.error;
    }
  }
  const std::string board = read_text(results + "/leaderboard.md");
  EXPECT_NE(board.find("4 quarantined"), std::string::npos) << board;
  EXPECT_NE(board.find("killed (signal 6, Aborted)"), std::string::npos) << board;

  // A rerun leaves quarantined jobs alone; --retry-failed reruns them (here without the fault: they
  // pass).
  const auto rerun = run_command(f.sweep(results));
  EXPECT_EQ(rerun.exit_code, 3) << rerun.output;
  EXPECT_NE(rerun.output.find("4 quarantined earlier and not rerun"), std::string::npos)
      << rerun.output;
  EXPECT_EQ(orch::ResultsStore(results).quarantined_ids().size(), 4u);
  const auto retried = run_command(f.sweep(results, "--retry-failed"));
  EXPECT_EQ(retried.exit_code, 0) << retried.output;
  for (const auto& r : orch::ResultsStore(results).load_all())
    EXPECT_TRUE(r.ok()) << r.job_id << ": " << r.error;
}

TEST_P(SupervisedSweep,
       KillingTheWholeMpirunThreeTimesThenRerunningGivesEveryJobOnceWithUninterruptedMetrics) {
  Fixture f({"d"}, {1e-3, 5e-4}, /*epochs=*/6);
  f.child_start = GetParam();
  const auto start_time = Clock::now();
  const auto straight = run_command(f.sweep(f.dir / "straight"));
  ASSERT_EQ(straight.exit_code, 0) << straight.output;
  const double straight_s = std::chrono::duration<double>(Clock::now() - start_time).count();

  const std::string results = f.dir / "killed";
  std::mt19937 rng(20261204);
  std::uniform_real_distribution<double> when(0.2, 0.9);
  for (int k = 0; k < 3; ++k) {
    const pid_t sweep = start(f.sweep(results), f.dir / "killed.log");
    std::this_thread::sleep_for(std::chrono::duration<double>(when(rng) * straight_s));
    kill(sweep, SIGKILL);  // mpirun itself, no warning; its ranks and their children must follow
    wait_exit(sweep);
    ASSERT_TRUE(all_gone(results, std::chrono::seconds(20)))
        << "processes of the killed sweep are still running: "
        << processes_mentioning(results).size();
    const std::size_t written =
        fs::exists(results + "/results") ? orch::ResultsStore(results).load_all().size() : 0;
    if (k == 0) {
      EXPECT_LT(written, f.job_count()) << "the first kill came too late to interrupt anything";
    }
  }
  const auto rerun = run_command(f.sweep(results));
  ASSERT_EQ(rerun.exit_code, 0) << rerun.output;

  const auto expected = orch::ResultsStore(f.dir / "straight").load_all();
  const auto resumed = orch::ResultsStore(results).load_all();
  ASSERT_EQ(expected.size(), f.job_count());
  ASSERT_EQ(resumed.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    ASSERT_EQ(resumed[i].job_id, expected[i].job_id);
    EXPECT_TRUE(resumed[i].ok()) << resumed[i].error;
    EXPECT_EQ(computed(resumed[i]), computed(expected[i]))
        << resumed[i].job_id << " differs after kills";
  }
  for (const auto& [key, count] : journal_counts(results)) {
    if (key.second == "ok") {
      EXPECT_EQ(count, 1) << key.first << " finished more than once";
    }
  }
}

TEST_P(SupervisedSweep, KillingOneWorkerRankAbortsTheSweepAndARerunLosesAndDuplicatesNothing) {
  Fixture f({"d"}, {1e-3, 5e-4}, /*epochs=*/8);
  f.child_start = GetParam();
  const std::string results = f.dir / "results";
  const pid_t sweep = start(f.sweep(results), f.dir / "sweep.log");
  const auto beat = wait_for_heartbeat(
      results + "/work",
      [](const nlohmann::json& b) {
        return b.at("stage") == "training" && b.at("epoch").get<int>() >= 1;
      },
      std::chrono::seconds(90));
  ASSERT_FALSE(beat.is_null()) << read_text(f.dir / "sweep.log");
  ASSERT_EQ(kill(supervising_rank(beat), SIGKILL), 0);
  // Open MPI has no fault tolerance here (no ULFM): mpirun sees a rank die and aborts the whole
  // world.
  EXPECT_NE(wait_exit(sweep), 0) << read_text(f.dir / "sweep.log");
  ASSERT_TRUE(all_gone(results, std::chrono::seconds(20)))
      << "a rank or job child outlived the aborted sweep";
  const std::size_t before = orch::ResultsStore(results).load_all().size();
  EXPECT_LT(before, f.job_count());

  const auto rerun = run_command(f.sweep(results));
  ASSERT_EQ(rerun.exit_code, 0) << rerun.output;
  const auto all = orch::ResultsStore(results).load_all();
  ASSERT_EQ(all.size(), f.job_count());
  for (const auto& r : all) EXPECT_TRUE(r.ok()) << r.job_id << ": " << r.error;
  for (const auto& [key, count] : journal_counts(results)) {
    if (key.second == "ok") {
      EXPECT_EQ(count, 1) << key.first << " finished more than once";
    }
  }
}

TEST(SupervisedSweepFork, KillingARanksZygoteFailsOnlyItsRunningAttemptAndLaterJobsStartByExec) {
  Fixture f({"d"}, {1e-3, 5e-4}, /*epochs=*/8);
  const std::string results = f.dir / "results";
  const pid_t sweep = start(f.sweep(results), f.dir / "sweep.log");
  const auto beat = wait_for_heartbeat(
      results + "/work",
      [](const nlohmann::json& b) {
        return b.at("stage") == "training" && b.at("epoch").get<int>() >= 1;
      },
      std::chrono::seconds(90));
  ASSERT_FALSE(beat.is_null()) << read_text(f.dir / "sweep.log");
  const pid_t zygote = pid_t(beat.at("parent_pid").get<long>());
  ASSERT_NE(read_text("/proc/" + std::to_string(zygote) + "/cmdline").find("zygote"),
            std::string::npos)
      << "the job's parent should be its rank's zygote";
  const std::string victim = beat.at("job_id");
  ASSERT_EQ(kill(zygote, SIGKILL), 0);  // its job dies with it (PR_SET_PDEATHSIG)
  ASSERT_EQ(wait_exit(sweep), 0) << read_text(f.dir / "sweep.log");
  const std::string log = read_text(f.dir / "sweep.log");
  EXPECT_NE(log.find("is gone; jobs start by exec from now on"), std::string::npos) << log;

  const auto all = orch::ResultsStore(results).load_all();
  ASSERT_EQ(all.size(), f.job_count());
  for (const auto& r : all) EXPECT_TRUE(r.ok()) << r.job_id << ": " << r.error;
  const auto counts = journal_counts(results);
  EXPECT_EQ(counts.at({victim, "retry"}), 1);
  EXPECT_EQ(counts.at({victim, "ok"}), 1);
  for (const auto& r : all) {
    if (r.job_id == victim) {
      EXPECT_EQ(r.runtime.at("attempt"), 2);
    }
  }
  ASSERT_TRUE(all_gone(results, std::chrono::seconds(20))) << "a process of the sweep outlived it";
}

TEST(SupervisedSweepFork, ForkedAndExecdChildrenComputeIdenticalResults) {
  Fixture f({"d"}, {1e-3, 5e-4}, /*epochs=*/3, /*fold_count=*/2);
  const auto forked = run_command(f.sweep(f.dir / "fork"));
  ASSERT_EQ(forked.exit_code, 0) << forked.output;
  f.child_start = "exec";
  const auto execd = run_command(f.sweep(f.dir / "exec"));
  ASSERT_EQ(execd.exit_code, 0) << execd.output;
  const auto a = orch::ResultsStore(f.dir / "fork").load_all();
  const auto b = orch::ResultsStore(f.dir / "exec").load_all();
  ASSERT_EQ(a.size(), f.job_count());
  ASSERT_EQ(b.size(), a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].job_id, b[i].job_id);
    EXPECT_EQ(a[i].runtime.at("child_start"), "fork");
    EXPECT_EQ(b[i].runtime.at("child_start"), "exec");
    EXPECT_EQ(computed(a[i]), computed(b[i])) << a[i].job_id << " differs between fork and exec";
  }
}

}  // namespace mil
