// End to end through the real binary: `mhim synth`, then `mpiexec -n 3 mhim sweep` (rank 0
// orchestrates, ranks 1-2 train), then the results directory is checked with the orchestrator's own
// readers.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <future>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

#include "orchestrator/results/store.h"
#include "orchestrator/sweep/sweep.h"
#include "tests/support/run_command.h"
#include "tests/support/temp_dir.h"

namespace mil {
namespace {

using testing::CommandOutput;
using testing::run_command;

std::string mpirun(int ranks, const std::string& args) {
  // CI runs as root on 2 cores: Open MPI needs explicit consent for both.
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT", "1", 0);
  ::setenv("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1", 0);
  return std::string(MIL_MPIEXEC) + " -n " + std::to_string(ranks) +
         " --oversubscribe --bind-to none " + MIL_MHIM_BINARY + " " + args;
}

/// The body of GET `path` from 127.0.0.1:`port` (HTTP/1.0, so the server closes after it); "" on
/// failure.
std::string http_get_body(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = "GET " + path + " HTTP/1.0\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == ssize_t(request.size())) {
      char chunk[4096];
      for (ssize_t n; (n = ::recv(fd, chunk, sizeof chunk, 0)) > 0;)
        response.append(chunk, std::size_t(n));
    }
  }
  ::close(fd);
  const std::size_t body = response.find("\r\n\r\n");
  return response.rfind("HTTP/1.0 200", 0) == 0 && body != std::string::npos
             ? response.substr(body + 4)
             : "";
}

std::size_t line_count(const std::string& path) {
  std::ifstream in(path);
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);) n += !line.empty();
  return n;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/// Two synthetic benchmarks and a sweep over them: 2 datasets x 1 model x 2 lr x 1 seed x 3 folds =
/// 12 jobs.
struct SweepFixture {
  testing::TempDir dir;
  std::string sweep_path = dir / "sweep.json";
  std::string results = dir / "results";

  SweepFixture() {
    for (const char* name : {"a", "b"}) {
      const auto synth =
          run_command(std::string(MIL_MHIM_BINARY) + " synth --out " + (dir / name) +
                      " --bags 24 --dim 8 --min-instances 5 --max-instances 20 --seed " +
                      (name[0] == 'a' ? "1" : "2"));
      EXPECT_EQ(synth.exit_code, 0) << synth.output;
    }
    const nlohmann::json sweep = {
        {"name", "e2e"},
        {"datasets", {{{"name", "a"}, {"root", dir / "a"}}, {{"name", "b"}, {"root", dir / "b"}}}},
        {"models", {{{"name", "abmil"}}}},
        {"train", {{"epochs", 2}}},
        {"split", {{"fold_count", 3}, {"val_ratio", 0.2}}},
        {"grid", {{"train.lr", {1e-3, 5e-4}}}},
        {"seeds", {7}}};
    std::ofstream(sweep_path) << sweep.dump(2);
  }
  std::string sweep_command() const {
    return mpirun(3, "sweep " + sweep_path + " --results " + results + " --threads 1");
  }
};

}  // namespace

TEST(SweepEndToEnd, WritesExactlyOneResultPerJobAndALeaderboard) {
  SweepFixture f;
  const auto sweep = run_command(f.sweep_command());
  ASSERT_EQ(sweep.exit_code, 0) << sweep.output;
  EXPECT_NE(sweep.output.find("leaderboard: " + f.results + "/leaderboard.md"), std::string::npos)
      << sweep.output;

  const auto jobs = orch::expand(orch::load_sweep(f.sweep_path));
  ASSERT_EQ(jobs.size(), 12u);
  std::set<std::string> expected_ids;
  for (const auto& j : jobs) expected_ids.insert(j.id());

  const orch::ResultsStore store(f.results);
  const auto results = store.load_all();
  std::set<std::string> ids;
  std::set<int> ranks;
  for (const auto& r : results) {
    EXPECT_TRUE(r.ok()) << r.job_id << ": " << r.error;
    EXPECT_TRUE(ids.insert(r.job_id).second) << "duplicate result " << r.job_id;
    EXPECT_TRUE(r.metrics.at("test").contains("auc"));
    EXPECT_TRUE(r.inputs.at("features").contains("sha256"));
    ranks.insert(r.runtime.at("rank").get<int>());
  }
  EXPECT_EQ(ids, expected_ids);
  EXPECT_EQ(ranks, (std::set<int>{1, 2})) << "both workers should have trained";
  EXPECT_EQ(line_count(f.results + "/journal.jsonl"), 12u);

  const std::string board = read_text(f.results + "/leaderboard.md");
  EXPECT_NE(board.find("train.lr=0.001"), std::string::npos) << board;
  EXPECT_NE(board.find("train.lr=0.0005"), std::string::npos) << board;
}

TEST(SweepEndToEnd, ServesLiveStatusAndDrawsTheProgressLineThenRemovesStatusUrl) {
  SweepFixture f;
  const std::string url_file = f.results + "/status.url";
  auto sweep = std::async(std::launch::async,
                          [&f] { return run_command(f.sweep_command() + " --progress bar"); });
  std::string url, live;
  while (live.empty() &&
         sweep.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
    std::ifstream in(url_file);
    if (!std::getline(in, url)) continue;
    const std::size_t colon = url.rfind(':');  // http://127.0.0.1:PORT/
    live = http_get_body(std::stoi(url.substr(colon + 1)), "/status.json");
    // The server is up before rank 0 has read the results folder and listed the jobs (an empty
    // board then); read again until the list is there.
    const nlohmann::json early = nlohmann::json::parse(live, nullptr, /*allow_exceptions=*/false);
    if (early.is_object() && early.contains("counts") && early.at("counts").value("total", 0) == 0)
      live.clear();
  }
  const CommandOutput out = sweep.get();
  ASSERT_EQ(out.exit_code, 0) << out.output;
  ASSERT_FALSE(live.empty()) << "never read /status.json while the sweep ran; output:\n"
                             << out.output;
  const nlohmann::json status = nlohmann::json::parse(live);
  EXPECT_EQ(status.at("sweep").at("name"), "e2e");
  EXPECT_EQ(status.at("counts").at("total"), 12);
  EXPECT_EQ(url.rfind("http://127.0.0.1:", 0), 0u) << url;
  EXPECT_NE(out.output.find("status: " + url), std::string::npos) << out.output;
  EXPECT_NE(out.output.find("[##########] 12/12 done \u00b7 0 running"), std::string::npos)
      << out.output;
  EXPECT_FALSE(std::filesystem::exists(url_file)) << "status.url outlived the server";
}

TEST(SweepEndToEnd, ProgressAutoDrawsTheLineOnlyWhenMpirunsStderrIsATerminal) {
  if (std::system("command -v script > /dev/null 2>&1") != 0)
    GTEST_SKIP() << "no `script` to make a terminal";
  SweepFixture f;
  // Under mpirun a rank's stderr is always a pipe; `script` gives mpirun a pseudo-terminal.
  const auto in_terminal =
      run_command("script -qec '" + f.sweep_command() + " --progress auto' /dev/null");
  ASSERT_EQ(in_terminal.exit_code, 0) << in_terminal.output;
  EXPECT_NE(in_terminal.output.find("[##########] 12/12 done"), std::string::npos)
      << in_terminal.output;
  SweepFixture g;
  const auto piped = run_command(g.sweep_command() + " --progress auto");
  ASSERT_EQ(piped.exit_code, 0) << piped.output;
  EXPECT_EQ(piped.output.find("[##########]"), std::string::npos) << piped.output;
}

TEST(SweepEndToEnd, MhimJobsRunAfterTheirTeacherBaselinesAndLoadThem) {
  testing::TempDir dir;
  const auto synth =
      run_command(std::string(MIL_MHIM_BINARY) + " synth --out " + (dir / "d") +
                  " --bags 24 --dim 8 --min-instances 5 --max-instances 20 --seed 3");
  ASSERT_EQ(synth.exit_code, 0) << synth.output;
  const nlohmann::json sweep = {{"name", "mhim-e2e"},
                                {"datasets", {{{"name", "d"}, {"root", dir / "d"}}}},
                                {"models",
                                 {{{"name", "mhim"},
                                   {"options",
                                    {{"teacher_init", "baseline"},
                                     {"mask_ratio_h", 0.1},
                                     {"merge", true},
                                     {"merge_ratio", 0.8}}}}}},
                                {"train", {{"epochs", 2}}},
                                {"split", {{"fold_count", 2}, {"val_ratio", 0.2}}},
                                {"grid", {{"model.options.merge_k", {1, 2}}}},
                                {"seeds", {7}}};
  std::ofstream(dir / "sweep.json") << sweep.dump(2);
  const std::string results = dir / "results";
  const auto out = run_command(
      mpirun(3, "sweep " + (dir / "sweep.json") + " --results " + results + " --threads 1"));
  ASSERT_EQ(out.exit_code, 0) << out.output;
  // 2 merge_k x 2 folds MHIM jobs share 2 baselines (one per fold): 6 results, each once.
  const auto all = orch::ResultsStore(results).load_all();
  ASSERT_EQ(all.size(), 6u);
  std::map<std::string, std::string> model_of;
  for (const auto& r : all) {
    ASSERT_TRUE(r.ok()) << r.job_id << ": " << r.error;
    model_of[r.job_id] = r.spec.model.name;
  }
  int mhim_jobs = 0;
  for (const auto& r : all) {
    if (r.spec.model.name != "mhim") continue;
    ++mhim_jobs;
    const std::string teacher = r.inputs.at("teacher_checkpoint").at("path").get<std::string>();
    const std::string baseline_id =
        std::filesystem::path(teacher).parent_path().filename().string();
    ASSERT_TRUE(model_of.count(baseline_id)) << teacher;
    EXPECT_EQ(model_of.at(baseline_id), "mhim_pure");
    EXPECT_TRUE(r.history.at(0).at("train_stats").contains("consistency_loss"));
    // As the reference's main.py: the teacher is validated every epoch and tested at its own best
    // epoch, beside the student.
    EXPECT_TRUE(r.history.at(0).at("teacher_val").contains("auc"));
    EXPECT_TRUE(r.metrics.at("teacher_test").contains("auc"));
    EXPECT_EQ(r.metrics.at("teacher_selection").at("metric"), "auc");
    EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(results) / "work" / r.job_id /
                                        "teacher_best.pt"));
  }
  EXPECT_EQ(mhim_jobs, 4);
}

TEST(SweepEndToEnd, RerunSkipsFinishedJobsWithoutDuplicatingResults) {
  SweepFixture f;
  ASSERT_EQ(run_command(f.sweep_command()).exit_code, 0);
  const auto first_files = orch::ResultsStore(f.results).load_all();
  const auto rerun = run_command(f.sweep_command());
  ASSERT_EQ(rerun.exit_code, 0) << rerun.output;
  EXPECT_NE(rerun.output.find("12 already done"), std::string::npos) << rerun.output;
  EXPECT_EQ(line_count(f.results + "/journal.jsonl"), 12u);
  const auto second_files = orch::ResultsStore(f.results).load_all();
  ASSERT_EQ(second_files.size(), first_files.size());
  for (std::size_t i = 0; i < first_files.size(); ++i) {
    EXPECT_EQ(nlohmann::json(second_files[i]), nlohmann::json(first_files[i]));
  }
}

TEST(SweepEndToEnd, ABrokenFeatureFileQuarantinesItsJobsNotTheSweep) {
  SweepFixture f;
  std::filesystem::resize_file(f.dir.path() / "b" / "pt_files" / "slide_0003.pt", 7);
  const auto sweep = run_command(f.sweep_command());
  EXPECT_EQ(sweep.exit_code, 3) << sweep.output;  // finished, with failures
  const auto results = orch::ResultsStore(f.results).load_all();
  ASSERT_EQ(results.size(), 12u);
  int ok = 0, quarantined = 0;
  for (const auto& r : results) {
    if (r.ok()) {
      ++ok;
      EXPECT_EQ(r.spec.dataset.name, "a");
    } else {
      // The same error on both attempts (the default 2): quarantined, not merely failed.
      quarantined += r.status == "quarantined";
      EXPECT_EQ(r.spec.dataset.name, "b");
      EXPECT_NE(r.error.find("slide_0003.pt"), std::string::npos) << r.error;
    }
  }
  EXPECT_EQ(ok, 6);
  EXPECT_EQ(quarantined, 6);
  EXPECT_EQ(line_count(f.results + "/journal.jsonl"), 18u) << "12 results and 6 retry notes";
  const std::string board = read_text(f.results + "/leaderboard.md");
  EXPECT_NE(board.find("slide_0003.pt"), std::string::npos)
      << "failed jobs should be listed with their error";
}

TEST(SweepEndToEnd, StopsOnSigusr1AndTheRerunFinishesEveryJobOnceWithUninterruptedMetrics) {
  testing::TempDir dir;
  ASSERT_EQ(run_command(std::string(MIL_MHIM_BINARY) + " synth --out " + (dir / "d") +
                        " --bags 40 --dim 32 --min-instances 100 --max-instances 200 --seed 5")
                .exit_code,
            0);
  const nlohmann::json sweep = {{"name", "stoppable"},
                                {"datasets", {{{"name", "d"}, {"root", dir / "d"}}}},
                                {"models", {{{"name", "abmil"}}}},
                                {"train", {{"epochs", 8}}},
                                {"split", {{"fold_count", 3}, {"val_ratio", 0.25}}},
                                {"grid", {{"train.lr", {1e-3, 5e-4}}}},
                                {"seeds", {7}}};
  std::ofstream(dir / "sweep.json") << sweep.dump(2);
  const auto sweep_into = [&](const std::string& results) {
    return mpirun(3, "sweep " + (dir / "sweep.json") + " --results " + results + " --threads 1");
  };
  ASSERT_EQ(run_command(sweep_into(dir / "straight")).exit_code, 0);

  // Stop the same sweep with SIGUSR1 (which mpirun forwards to every rank) once a job has finished.
  const pid_t pid = fork();
  if (pid == 0) {
    const int devnull = ::open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    dup2(devnull, 2);
    execl("/bin/sh", "sh", "-c", ("exec " + sweep_into(dir / "stopped")).c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  const auto result_files = [&] {
    std::size_t n = 0;
    std::error_code ec;
    for (const auto& e :
         std::filesystem::directory_iterator(dir.path() / "stopped" / "results", ec)) {
      n += e.path().extension() == ".json";
    }
    return n;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (result_files() < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GE(result_files(), 1u);
  kill(pid, SIGUSR1);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status)) << "mpirun should exit, not be killed";
  EXPECT_EQ(WEXITSTATUS(status), 75) << "stopped on request: resumable";
  ASSERT_LT(result_files(), 6u) << "the stop came after the sweep had finished";

  const auto rerun = run_command(sweep_into(dir / "stopped"));
  ASSERT_EQ(rerun.exit_code, 0) << rerun.output;
  const auto straight = orch::ResultsStore(dir / "straight").load_all();
  const auto resumed = orch::ResultsStore(dir / "stopped").load_all();
  ASSERT_EQ(resumed.size(), 6u);
  ASSERT_EQ(straight.size(), 6u);
  for (std::size_t i = 0; i < 6; ++i) {
    ASSERT_EQ(resumed[i].job_id, straight[i].job_id);
    nlohmann::json a = resumed[i].metrics, b = straight[i].metrics;
    a["selection"].erase("resumed_from_epoch");
    b["selection"].erase("resumed_from_epoch");
    EXPECT_EQ(a, b) << "job " << resumed[i].job_id << " differs after stop and resume";
  }
  std::ifstream journal(dir / "stopped/journal.jsonl");
  std::map<std::string, int> ok_lines;
  for (std::string line; std::getline(journal, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j.at("status") == "ok") ++ok_lines[j.at("job_id").get<std::string>()];
  }
  EXPECT_EQ(ok_lines.size(), 6u);
  for (const auto& [id, count] : ok_lines) EXPECT_EQ(count, 1) << id << " finished more than once";
}

}  // namespace mil

namespace mil {
namespace {

TEST(SweepEndToEnd, TwoRankJobsRunOnWorkerGroupsOnceAndMatchAByHandDataParallelRun) {
  // 1 orchestrator + 4 workers; 3 one-rank jobs (child processes) and 3 two-rank jobs (rank
  // groups).
  testing::TempDir dir;
  const auto synth =
      run_command(std::string(MIL_MHIM_BINARY) + " synth --out " + (dir / "d") +
                  " --bags 30 --dim 8 --min-instances 5 --max-instances 20 --seed 3");
  ASSERT_EQ(synth.exit_code, 0) << synth.output;
  const nlohmann::json sweep = {
      {"name", "groups"},
      {"datasets", {{{"name", "d"}, {"root", dir / "d"}}}},
      {"models",
       {{{"name", "abmil"}}, {{"name", "abmil"}, {"method", "abmil-2ranks"}, {"ranks", 2}}}},
      {"train", {{"epochs", 3}}},
      {"split", {{"fold_count", 3}, {"val_ratio", 0.2}}},
      {"seeds", {5}}};
  std::ofstream(dir / "sweep.json") << sweep.dump(2);
  const std::string results = dir / "results";
  const std::string command =
      mpirun(5, "sweep " + (dir / "sweep.json") + " --results " + results + " --threads 1");
  const auto run = run_command(command);
  ASSERT_EQ(run.exit_code, 0) << run.output;

  const auto jobs = orch::expand(orch::load_sweep(dir / "sweep.json"));
  ASSERT_EQ(jobs.size(), 6u);
  std::map<std::string, JobSpec> expected;
  for (const auto& j : jobs) expected.emplace(j.id(), j);
  const auto written = orch::ResultsStore(results).load_all();
  ASSERT_EQ(written.size(), 6u);
  std::set<std::string> ids;
  const JobResult* group_result = nullptr;
  for (const auto& r : written) {
    ASSERT_TRUE(r.ok()) << r.job_id << ": " << r.error;
    EXPECT_TRUE(ids.insert(r.job_id).second) << "duplicate result " << r.job_id;
    ASSERT_EQ(expected.count(r.job_id), 1u) << r.job_id;
    const int ranks = expected.at(r.job_id).train.ranks;
    if (ranks == 2) {
      EXPECT_EQ(r.runtime.at("ranks"), 2) << r.runtime.dump();
      EXPECT_EQ(r.runtime.at("gradient_sync"), "mpi") << r.runtime.dump();
      if (r.spec.split.fold_index == 0) group_result = &r;
    } else {
      EXPECT_FALSE(r.runtime.contains("ranks")) << r.runtime.dump();
    }
  }
  EXPECT_EQ(line_count(results + "/journal.jsonl"), 6u) << "one result line per job, no retries";
  EXPECT_NE(run.output.find("(a 2-rank group)"), std::string::npos) << run.output;
  ASSERT_NE(group_result, nullptr);

  // The same job by hand on two ranks gives bit-identical metrics (deterministic mode, one thread
  // each).
  std::ofstream(dir / "job.json") << nlohmann::json(group_result->spec).dump(2);
  const auto by_hand =
      run_command(mpirun(2, "train --job " + (dir / "job.json") +
                                " --data-parallel --threads 1 --out " + (dir / "by_hand.json")));
  ASSERT_EQ(by_hand.exit_code, 0) << by_hand.output;
  const JobResult reference =
      nlohmann::json::parse(read_text(dir / "by_hand.json")).get<JobResult>();
  EXPECT_EQ(reference.job_id, group_result->job_id);
  EXPECT_EQ(reference.metrics.dump(), group_result->metrics.dump());
  ASSERT_EQ(reference.history.size(), group_result->history.size());
  for (std::size_t e = 0; e < reference.history.size(); ++e) {
    EXPECT_EQ(reference.history[e].at("loss"), group_result->history[e].at("loss"))
        << "epoch " << e;
  }

  // A rerun finds every job done, the multi-rank ones included, and runs nothing.
  const auto rerun = run_command(command);
  ASSERT_EQ(rerun.exit_code, 0) << rerun.output;
  EXPECT_NE(rerun.output.find("6 already done"), std::string::npos) << rerun.output;
  EXPECT_EQ(line_count(results + "/journal.jsonl"), 6u);
  EXPECT_EQ(orch::ResultsStore(results).load_all().size(), 6u);
}

/// Four 2-rank ABMIL jobs (2 folds of datasets "a" and `faulty`) for 3 ranks, so every job runs on
/// worker ranks 1 and 2: the tests of faults inside jobs that run in worker ranks.
struct GroupFaultSweep {
  testing::TempDir dir;
  std::string faulty;
  std::string results = dir / "results";
  std::string sweep_args =
      "sweep " + (dir / "sweep.json") + " --results " + results + " --threads 1";
  std::map<std::string, std::string> dataset_of;  // job id -> dataset name

  explicit GroupFaultSweep(std::string faulty_dataset) : faulty(std::move(faulty_dataset)) {
    for (const std::string& name : {std::string("a"), faulty}) {
      const auto synth =
          run_command(std::string(MIL_MHIM_BINARY) + " synth --out " + (dir / name) +
                      " --bags 24 --dim 8 --min-instances 5 --max-instances 20 --seed 3");
      if (synth.exit_code != 0) throw std::runtime_error("synth failed: " + synth.output);
    }
    const nlohmann::json sweep = {
        {"name", "group-faults"},
        {"datasets",
         {{{"name", "a"}, {"root", dir / "a"}}, {{"name", faulty}, {"root", dir / faulty}}}},
        {"models", {{{"name", "abmil"}, {"ranks", 2}}}},
        {"train", {{"epochs", 2}}},
        {"split", {{"fold_count", 2}, {"val_ratio", 0.25}}},
        {"seeds", {5}}};
    std::ofstream(dir / "sweep.json") << sweep.dump(2);
    for (const auto& job : orch::expand(orch::load_sweep(dir / "sweep.json")))
      dataset_of[job.id()] = job.dataset.name;
    (void)mpirun(3, "");  // consents to running as root, as every mpirun here does
  }
  /// The sweep on 3 ranks with MHIM_TEST_FAULT=`fault` (worker/supervise/test_fault.h) and `extra`
  /// arguments.
  std::string with_fault(const std::string& fault, const std::string& extra) const {
    return "MHIM_TEST_FAULT=" + fault + " " + std::string(MIL_MPIEXEC) +
           " -x MHIM_TEST_FAULT -n 3 --oversubscribe --bind-to none " + MIL_MHIM_BINARY + " " +
           sweep_args + " " + extra;
  }
  /// Journal lines with `status`, whatever came after them; each must name a job on the faulty
  /// dataset.
  std::size_t journaled(const std::string& status) const {
    std::size_t lines = 0;
    std::ifstream journal(results + "/journal.jsonl");
    for (std::string line; std::getline(journal, line);) {
      const auto entry = nlohmann::json::parse(line);
      if (entry.at("status") != status) continue;
      EXPECT_EQ(dataset_of.at(entry.at("job_id").get<std::string>()), faulty) << line;
      ++lines;
    }
    return lines;
  }
  /// Checks that the jobs on "a" finished and those on the faulty dataset are quarantined, each
  /// passing `check`; returns how many were quarantined.
  std::size_t expect_faulty_quarantined(const std::function<void(const JobResult&)>& check) const {
    std::size_t quarantined = 0;
    for (const auto& r : orch::ResultsStore(results).load_all()) {
      if (dataset_of.at(r.job_id) == "a") {
        EXPECT_TRUE(r.ok()) << r.job_id << ": " << r.error;
        continue;
      }
      ++quarantined;
      EXPECT_EQ(r.status, "quarantined") << r.job_id << ": " << r.error;
      check(r);
    }
    return quarantined;
  }
  /// Without the fault, --retry-failed runs the quarantined jobs; every job ends with exactly one
  /// ok line.
  void expect_retry_finishes_every_job_once() const {
    const auto retried = run_command(mpirun(3, sweep_args + " --retry-failed"));
    ASSERT_EQ(retried.exit_code, 0) << retried.output;
    const auto all = orch::ResultsStore(results).load_all();
    ASSERT_EQ(all.size(), 4u);
    for (const auto& r : all) EXPECT_TRUE(r.ok()) << r.job_id << ": " << r.error;
    for (const auto& [id, entry] : orch::replay_journal(results + "/journal.jsonl")) {
      EXPECT_EQ(entry.ok_lines, 1) << id << " finished " << entry.ok_lines << " times";
    }
  }
};

// A group job runs inside its worker ranks, so when it stops beating only ending the MPI world
// frees them: the run ends resumable with the hang journaled, and hangs count across runs towards
// quarantine.
TEST(SweepEndToEnd, AHungGroupJobEndsTheRunResumablyAndIsQuarantinedOnceItHungEveryAttempt) {
  const GroupFaultSweep f("hang");
  ASSERT_EQ(f.dataset_of.size(), 4u);
  // Each run: one 'hang' job hangs and ends it (75, resumable) after the heartbeat timeout (8 s
  // leaves a healthy job on 'a' room between beats on a loaded machine: 4 s failed once under ctest
  // -j2).
  const std::string command = f.with_fault("hang:hang", "--max-attempts 1 --heartbeat-timeout 8");
  for (std::size_t run = 1; run <= 2; ++run) {
    const auto out = run_command(command);
    ASSERT_EQ(out.exit_code, 75) << "run " << run << ":\n" << out.output;
    EXPECT_NE(out.output.find("hung: no heartbeat for "), std::string::npos) << out.output;
    EXPECT_NE(out.output.find("rerun the same command to resume"), std::string::npos) << out.output;
    EXPECT_EQ(f.journaled("hung"), run);
  }
  // Both 'hang' jobs have now hung on their one attempt: quarantined at start, without running.
  const auto third = run_command(command);
  ASSERT_EQ(third.exit_code, 3) << third.output;
  EXPECT_EQ(f.journaled("hung"), 2u) << "nothing hung again";
  EXPECT_EQ(f.expect_faulty_quarantined([](const JobResult& r) {
    EXPECT_EQ(r.error.rfind("hung: no heartbeat for ", 0), 0u) << r.error;
    EXPECT_TRUE(r.error.find("(in worker ranks 1,2)") != std::string::npos ||
                r.error.find("(in worker ranks 2,1)") != std::string::npos)
        << r.error;
    EXPECT_EQ(r.runtime.at("attempt_errors").size(), 1u) << r.runtime.dump();
  }),
            2u);
  f.expect_retry_finishes_every_job_once();
}

// A group job runs inside its worker ranks. When one member fails mid-training the group agrees on
// it, so the job fails on every member, is retried, and is quarantined once it failed the same way
// on every attempt, while the MPI world and the other jobs go on (before, the group aborted the
// world).
TEST(SweepEndToEnd,
     AGroupJobWhoseMemberFailsMidTrainingIsRetriedAndQuarantinedWhileTheSweepGoesOn) {
  const GroupFaultSweep f("bad");
  // Only rank 2 fails, and it is a member of every group (ranks 1 and 2), as leader or not.
  const auto run = run_command(f.with_fault("throw@2:bad", "--max-attempts 2"));
  ASSERT_EQ(run.exit_code, 3) << "some jobs failed, the sweep ended normally:\n" << run.output;
  EXPECT_EQ(orch::ResultsStore(f.results).load_all().size(), 4u);
  EXPECT_EQ(f.expect_faulty_quarantined([](const JobResult& r) {
    EXPECT_NE(r.error.find("-rank group failed in epoch 1 at bag "), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("injected test fault (throw@2) in epoch 1"), std::string::npos)
        << r.error;
    EXPECT_EQ(r.runtime.at("attempt_errors").size(), 2u) << r.runtime.dump();
  }),
            2u);
  for (const auto& [id, entry] : orch::replay_journal(f.results + "/journal.jsonl")) {
    EXPECT_EQ(entry.ok_lines, f.dataset_of.at(id) == "a" ? 1 : 0) << id;
  }
}

// A crash inside a group job takes its worker ranks, and with them the MPI world (no fault-tolerant
// MPI). mpirun then sends SIGTERM to the other ranks a second before SIGKILL; rank 0 sees the
// rank's process gone and journals the attempt "crashed", so crashes count across runs like hangs
// and a job that crashes on every attempt is quarantined instead of ending every rerun.
TEST(SweepEndToEnd, AGroupJobThatCrashesItsRanksIsJournaledAndQuarantinedAfterMaxAttemptsRuns) {
  const GroupFaultSweep f("bad");
  const std::string command = f.with_fault("abort:bad", "--max-attempts 2");
  // Each of the two 'bad' jobs crashes on 2 runs, then is quarantined: 4 crashing runs, then
  // exit 3.
  for (std::size_t run = 1; run <= 4; ++run) {
    const auto out = run_command(command);
    ASSERT_NE(out.exit_code, 0) << "run " << run << ":\n" << out.output;
    ASSERT_NE(out.exit_code, 3) << "run " << run << " ended normally:\n" << out.output;
    EXPECT_EQ(f.journaled("crashed"), run) << "run " << run << ":\n" << out.output;
  }
  const auto fifth = run_command(command);
  EXPECT_EQ(fifth.exit_code, 3) << fifth.output;
  EXPECT_EQ(f.journaled("crashed"), 4u) << "nothing crashed again:\n" << fifth.output;
  EXPECT_EQ(f.expect_faulty_quarantined([](const JobResult& r) {
    EXPECT_EQ(r.error.rfind("crashed: worker rank ", 0), 0u) << r.error;
    EXPECT_EQ(r.runtime.at("attempt_errors").size(), 2u) << r.runtime.dump();
  }),
            2u);
  f.expect_retry_finishes_every_job_once();
}

TEST(SweepEndToEnd, AJobNeedingMoreRanksThanWorkersIsRejectedNamingTheFieldAndTheJob) {
  testing::TempDir dir;
  const nlohmann::json sweep = {{"name", "too-wide"},
                                {"datasets", {{{"name", "d"}, {"root", dir / "d"}}}},
                                {"models", {{{"name", "abmil"}, {"ranks", 3}}}},
                                {"split", {{"fold_count", 2}}}};
  std::ofstream(dir / "sweep.json") << sweep.dump(2);
  const auto run = run_command(
      mpirun(3, "sweep " + (dir / "sweep.json") + " --results " + (dir / "r") + " --threads 1"));
  EXPECT_NE(run.exit_code, 0) << run.output;
  EXPECT_NE(run.output.find("has train.ranks = 3 but the sweep has only 2 worker rank(s)"),
            std::string::npos)
      << run.output;
  EXPECT_NE(run.output.find("dataset 'd', model 'abmil'"), std::string::npos) << run.output;
}

}  // namespace
}  // namespace mil

namespace mil {
namespace {

TEST(SweepEndToEnd, ATwoRankJobWithABrokenFeatureFileIsRetriedAndQuarantinedNotTheSweepAborted) {
  testing::TempDir dir;
  const auto synth =
      run_command(std::string(MIL_MHIM_BINARY) + " synth --out " + (dir / "d") +
                  " --bags 24 --dim 8 --min-instances 5 --max-instances 20 --seed 4");
  ASSERT_EQ(synth.exit_code, 0) << synth.output;
  std::filesystem::resize_file(dir.path() / "d" / "pt_files" / "slide_0003.pt", 7);
  const nlohmann::json sweep = {{"name", "broken-groups"},
                                {"datasets", {{{"name", "d"}, {"root", dir / "d"}}}},
                                {"models", {{{"name", "abmil"}, {"ranks", 2}}}},
                                {"train", {{"epochs", 2}}},
                                {"split", {{"fold_count", 2}}}};
  std::ofstream(dir / "sweep.json") << sweep.dump(2);
  const std::string results = dir / "results";
  const auto run = run_command(
      mpirun(3, "sweep " + (dir / "sweep.json") + " --results " + results + " --threads 1"));
  // Both ranks of each group fail while loading and tell each other so: failed attempts, not an
  // abort.
  EXPECT_EQ(run.exit_code, 3) << run.output;
  const auto written = orch::ResultsStore(results).load_all();
  ASSERT_EQ(written.size(), 2u) << run.output;
  for (const auto& r : written) {
    EXPECT_EQ(r.status, "quarantined") << r.error;
    EXPECT_NE(r.error.find("of the job's 2-rank group failed while preparing"), std::string::npos)
        << r.error;
    EXPECT_NE(r.error.find("slide_0003.pt"), std::string::npos) << r.error;
    EXPECT_EQ(r.runtime.at("attempt_errors").size(), 2u) << r.runtime.dump();
  }
  EXPECT_EQ(line_count(results + "/journal.jsonl"), 4u) << "2 results and 2 retry notes";
}

}  // namespace
}  // namespace mil
