// The supervision of a job's child process with stand-in children: small shell scripts that take
// the `mhim train` arguments ($3 job, $5 result, $9 heartbeat) and misbehave on purpose. Real `mhim
// train` children are exercised by tests/e2e/supervision_e2e_test.cpp.
#include "worker/supervise/supervised_job.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "tests/support/temp_dir.h"
#include "worker/supervise/child_process.h"
#include "worker/supervise/heartbeat.h"

namespace mil::worker {
namespace {

namespace fs = std::filesystem;

/// An executable script `name` in `dir` with `body` after the shebang.
std::string script(const testing::TempDir& dir, const std::string& name, const std::string& body) {
  const std::string path = dir / name;
  std::ofstream(path) << "#!/bin/sh\n" << body << "\n";
  ::chmod(path.c_str(), 0755);
  return path;
}

SupervisionOptions quick(const std::string& executable) {
  SupervisionOptions o;
  o.executable = executable;
  o.heartbeat_timeout = std::chrono::milliseconds(1500);
  o.report_interval = std::chrono::milliseconds(100);
  return o;
}

JobSpec some_job() {
  JobSpec spec;
  spec.dataset = DatasetSpec{"synth", "bags", "/nowhere", 2, false};
  return spec;
}

bool alive(pid_t pid) { return ::kill(pid, 0) == 0; }

}  // namespace

TEST(ChildProcess, DescribesExitsAndSignalsNamingSigkillAsAPossibleOutOfMemoryKill) {
  EXPECT_EQ(describe_exit(ChildExit{false, 3, 0}), "exited with status 3");
  EXPECT_EQ(describe_exit(ChildExit{true, 0, SIGKILL}), "killed (signal 9; out of memory?)");
  EXPECT_EQ(describe_exit(ChildExit{true, 0, SIGABRT}), "killed (signal 6, Aborted)");
}

TEST(ChildProcess, ReportsExitStatusAndSignalAndTimesOutWhileRunning) {
  testing::TempDir dir;
  ChildProcess exits({"/bin/sh", "-c", "echo hello; exit 4"}, dir / "log");
  const auto e = exits.wait_for(std::chrono::seconds(10));
  ASSERT_TRUE(e.has_value());
  EXPECT_FALSE(e->signaled);
  EXPECT_EQ(e->code, 4);
  std::ifstream log(dir / "log");
  std::string line;
  std::getline(log, line);
  EXPECT_EQ(line, "hello");

  ChildProcess killed({"/bin/sh", "-c", "kill -9 $$"}, dir / "log");
  const auto k = killed.wait_for(std::chrono::seconds(10));
  ASSERT_TRUE(k.has_value());
  EXPECT_TRUE(k->signaled);
  EXPECT_EQ(k->signal, SIGKILL);

  ChildProcess sleeper({"/bin/sleep", "30"}, dir / "log");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(sleeper.wait_for(std::chrono::milliseconds(200)).has_value());
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(190));
}

TEST(SpawnInOwnGroup, ExtraEnvironmentReplacesInheritedValuesAndKeepsTheRest) {
  testing::TempDir dir;
  ::setenv("MHIM_TEST_SPAWN_REPLACED", "inherited", 1);
  ::setenv("MHIM_TEST_SPAWN_KEPT", "kept", 1);
  const std::string out = dir / "env";
  pid_t pid = 0;
  const int error =
      spawn_in_own_group({"/usr/bin/env"},
                         [&](posix_spawn_file_actions_t& actions) {
                           posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(),
                                                            O_WRONLY | O_CREAT | O_TRUNC, 0644);
                         },
                         pid, {"MHIM_TEST_SPAWN_REPLACED=set", "MHIM_TEST_SPAWN_NEW=1"});
  ::unsetenv("MHIM_TEST_SPAWN_REPLACED");
  ::unsetenv("MHIM_TEST_SPAWN_KEPT");
  ASSERT_EQ(error, 0) << std::strerror(error);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  std::multiset<std::string> ours;
  std::ifstream env(out);
  for (std::string line; std::getline(env, line);) {
    if (line.rfind("MHIM_TEST_SPAWN_", 0) == 0) ours.insert(line);
  }
  EXPECT_EQ(ours, (std::multiset<std::string>{"MHIM_TEST_SPAWN_KEPT=kept", "MHIM_TEST_SPAWN_NEW=1",
                                              "MHIM_TEST_SPAWN_REPLACED=set"}));
}

TEST(ChildProcess, DestroyingARunningChildKillsItsWholeProcessGroup) {
  testing::TempDir dir;
  const std::string pid_file = dir / "grandchild.pid";
  pid_t grandchild = 0;
  {
    ChildProcess child({"/bin/sh", "-c", "sleep 30 & echo $! > " + pid_file + "; wait"},
                       dir / "log");
    for (int i = 0; i < 500 && grandchild == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      std::ifstream(pid_file) >> grandchild;
    }
    ASSERT_GT(grandchild, 0);
    EXPECT_TRUE(alive(grandchild));
  }
  for (int i = 0; i < 200 && alive(grandchild); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(alive(grandchild)) << "the grandchild (same process group) outlived the child";
}

TEST(SupervisedJob, ReadsBackTheChildsResultAndRecordsTheRank) {
  testing::TempDir dir;
  const JobSpec spec = some_job();
  JobResult written;
  written.job_id = spec.id();
  written.config_id = spec.config_id();
  written.spec = spec;
  written.status = "ok";
  std::ofstream(dir / "ok.json") << nlohmann::json(written).dump();
  const std::string child =
      script(dir, "child.sh", "test \"$1\" = train && cp " + (dir / "ok.json") + " \"$5\"");
  const JobResult r = run_supervised_job(spec, dir / "work", /*rank=*/3, quick(child), nullptr, {});
  EXPECT_EQ(r.status, "ok") << r.error;
  EXPECT_EQ(r.runtime.at("rank"), 3);
  EXPECT_TRUE(fs::exists(dir / "work/job.json"));
  std::ifstream job(dir / "work/job.json");
  EXPECT_EQ(nlohmann::json::parse(job).get<JobSpec>().id(), spec.id());
}

TEST(SupervisedJob, ANonZeroExitWithoutResultFailsWithTheStatusAndTheLastOutput) {
  testing::TempDir dir;
  const std::string child = script(dir, "child.sh", "echo 'something broke' >&2; exit 7");
  const JobResult r = run_supervised_job(some_job(), dir / "work", 1, quick(child), nullptr, {});
  EXPECT_EQ(r.status, "failed");
  EXPECT_EQ(r.error, "`mhim train` exited with status 7 without a result");
  EXPECT_EQ(r.runtime.at("last_output"), "something broke");
  EXPECT_EQ(r.runtime.at("log"), dir / "work/train.log");
}

TEST(SupervisedJob, ASignalKillNamesTheSignal) {
  testing::TempDir dir;
  const JobResult r = run_supervised_job(some_job(), dir / "work", 1,
                                         quick(script(dir, "c.sh", "kill -9 $$")), nullptr, {});
  EXPECT_EQ(r.status, "failed");
  EXPECT_EQ(r.error, "killed (signal 9; out of memory?)");
}

TEST(SupervisedJob, AChildThatStopsBeatingIsKilledAsHungWithItsProcessGroup) {
  testing::TempDir dir;
  // Beats once (as a real child does when it starts), then hangs with a grandchild in its group.
  const std::string child =
      script(dir, "c.sh",
             "echo '{\"job_id\":\"x\",\"stage\":\"loading\",\"epoch\":0,\"epochs\":3,"
             "\"bags_done\":0,\"bags_total\":0,\"eta_s\":-1,\"time\":0,\"beat\":1,"
             "\"pid\":1,\"parent_pid\":1}' > \"$9\"; sleep 60 & echo $! > " +
                 (dir / "grandchild.pid") + "; wait");
  std::vector<Heartbeat> beats;
  const auto start = std::chrono::steady_clock::now();
  const JobResult r = run_supervised_job(some_job(), dir / "work", 1, quick(child), nullptr,
                                         [&](const Heartbeat& h) { beats.push_back(h); });
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(r.status, "failed");
  EXPECT_EQ(r.error, "hung: no heartbeat for 1 s");
  EXPECT_GE(seconds, 1.5);
  EXPECT_LT(seconds, 10.0);
  ASSERT_FALSE(beats.empty());
  EXPECT_EQ(beats.front().epochs, 3);
  pid_t grandchild = 0;
  std::ifstream(dir / "grandchild.pid") >> grandchild;
  ASSERT_GT(grandchild, 0);
  for (int i = 0; i < 200 && alive(grandchild); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(alive(grandchild));
}

TEST(SupervisedJob, AStopRequestIsForwardedAsSigterm) {
  testing::TempDir dir;
  // Exits 75 on SIGTERM, as `mhim train` does after checkpointing.
  const std::string child =
      script(dir, "c.sh", "trap 'exit 75' TERM; while true; do sleep 0.05; done");
  std::atomic<bool> stop{false};
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    stop = true;
  });
  const JobResult r = run_supervised_job(some_job(), dir / "work", 1, quick(child), &stop, {});
  stopper.join();
  EXPECT_EQ(r.status, "interrupted") << "a stopped job is resumable, not failed";
  EXPECT_EQ(r.error,
            "stopped on request before writing a result (exited with status 75); rerun to resume");
}

TEST(SupervisedJob, AChildKilledByTheForwardedStopBeforeItCouldCheckpointIsInterruptedNotFailed) {
  testing::TempDir dir;
  // No SIGTERM handler yet (as a child still loading LibTorch): the forwarded stop kills it.
  const std::string child = script(dir, "c.sh", "exec sleep 30");
  std::atomic<bool> stop{true};
  const JobResult r = run_supervised_job(some_job(), dir / "work", 1, quick(child), &stop, {});
  EXPECT_EQ(r.status, "interrupted");
  EXPECT_EQ(r.error,
            "stopped on request before writing a result (killed (signal 15, Terminated)); rerun to "
            "resume");
}

TEST(SupervisedJob, ASigtermFromOutsideIsAStopNotAFailureButSigkillIsAFailure) {
  // Slurm's requeue or preemption signals every process of the step, the child too, before the rank
  // has seen its own stop request; the OOM killer sends SIGKILL.
  testing::TempDir dir;
  std::atomic<bool> stop{false};
  const JobResult term = run_supervised_job(
      some_job(), dir / "a", 1, quick(script(dir, "t.sh", "kill -TERM $$; sleep 5")), &stop, {});
  EXPECT_EQ(term.status, "interrupted");
  EXPECT_EQ(term.error,
            "stopped on request before writing a result (killed (signal 15, Terminated)); rerun to "
            "resume");
  const JobResult kill = run_supervised_job(
      some_job(), dir / "b", 1, quick(script(dir, "k.sh", "kill -KILL $$; sleep 5")), &stop, {});
  EXPECT_EQ(kill.status, "failed");
  EXPECT_EQ(kill.error, "killed (signal 9; out of memory?)");
}

TEST(Heartbeat, WriterRateLimitsButWritesEveryStageChangeAndEstimatesTimeLeft) {
  testing::TempDir dir;
  const std::string path = dir / "hb.json";
  HeartbeatWriter writer(path, "job", std::chrono::milliseconds(60000));
  writer.update(JobProgress{"loading", 0, 4, 0, 0});
  ASSERT_TRUE(read_heartbeat(path).has_value());
  EXPECT_EQ(read_heartbeat(path)->stage, "loading");
  writer.update(JobProgress{"training", 0, 4, 0, 10});  // stage change: written
  EXPECT_EQ(read_heartbeat(path)->beat, 2u);
  writer.update(JobProgress{"training", 0, 4, 5, 10});  // within the interval: not written
  EXPECT_EQ(read_heartbeat(path)->beat, 2u);
  EXPECT_EQ(read_heartbeat(path)->parent_pid, long(::getppid()));
  EXPECT_FALSE(read_heartbeat(dir / "none.json").has_value());
  // 10 of 40 bag-steps done in 5 s from the start: 30 left take 15 s.
  EXPECT_DOUBLE_EQ(eta_seconds(JobProgress{"training", 1, 4, 0, 10}, 0.0, 5.0), 15.0);
  EXPECT_DOUBLE_EQ(eta_seconds(JobProgress{"training", 0, 4, 0, 10}, 0.0, 5.0), -1.0);
}

// Found by the heartbeat fuzzer: a pid of 29223372036854775808 parses as a double, and casting it to
// long was undefined behaviour. Numbers out of their field's range are "not a heartbeat" now.
TEST(Heartbeat, NumbersOutsideTheirFieldsRangeAreNotAHeartbeat) {
  testing::TempDir dir;
  const std::string path = dir / "hb.json";
  const auto with = [&](const std::string& field, const std::string& value) {
    nlohmann::json j = Heartbeat{"job", "training", 1, 4, 2, 10, 3.5, 1.7e9, 7, 100, 99};
    std::string text = j.dump();
    const std::string from = "\"" + field + "\":" + j.at(field).dump();
    text.replace(text.find(from), from.size(), "\"" + field + "\":" + value);
    std::ofstream(path) << text;
    return read_heartbeat(path);
  };
  ASSERT_TRUE(with("pid", "100").has_value());
  EXPECT_EQ(with("pid", "-5")->pid, -5);
  EXPECT_EQ(with("beat", "18446744073709551615")->beat, UINT64_MAX);
  EXPECT_FALSE(with("pid", "29223372036854775808").has_value());  // the fuzzer's input
  EXPECT_FALSE(with("pid", "1.5").has_value());
  EXPECT_FALSE(with("epoch", "2147483648").has_value());  // past int
  EXPECT_FALSE(with("beat", "-1").has_value());
  EXPECT_FALSE(with("eta_s", "\"soon\"").has_value());
}

}  // namespace mil::worker
