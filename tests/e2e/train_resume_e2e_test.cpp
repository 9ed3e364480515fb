// A real kill: `mhim train --work-dir` is killed with SIGKILL (or stopped with SIGTERM) mid-run,
// rerun with the same command, and must end with exactly the metrics of an uninterrupted run.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "tests/support/temp_dir.h"

namespace mil {
namespace {

std::vector<std::string> train_args(const testing::TempDir& dir, const std::string& name) {
  return {
      MIL_MHIM_BINARY, "train", "--dataset",  dir / "data", "--epochs",  "10",
      "--val-ratio",   "0.25",  "--lr",       "5e-4",       "--threads", "1",
      "--seed",        "3",     "--work-dir", dir / name,   "--out",     dir / (name + ".json")};
}

pid_t spawn(const std::vector<std::string>& args) {
  const pid_t pid = fork();
  if (pid == 0) {
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const int devnull = ::open("/dev/null", O_WRONLY);
    dup2(devnull, 2);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

int wait_exit_code(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int run_to_end(const std::vector<std::string>& args) { return wait_exit_code(spawn(args)); }

std::size_t lines_in(const std::string& path) {
  std::ifstream in(path);
  std::size_t n = 0;
  for (std::string line; std::getline(in, line);) ++n;
  return n;
}

/// Waits until the run has logged `epochs` epochs (its checkpoint is written right after each).
bool wait_for_epochs(const std::string& work_dir, std::size_t epochs) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (std::chrono::steady_clock::now() < deadline) {
    if (lines_in(work_dir + "/epochs.jsonl") >= epochs) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

nlohmann::json result_of(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

/// What must not depend on interruptions: all metrics, and per epoch the loss, lr and validation
/// metrics.
nlohmann::json outcome(const nlohmann::json& result) {
  nlohmann::json out = {{"metrics", result.at("metrics")}, {"history", nlohmann::json::array()}};
  out["metrics"]["selection"].erase("resumed_from_epoch");
  for (const auto& e : result.at("history"))
    out["history"].push_back({e.at("loss"), e.at("lr"), e.at("val")});
  return out;
}

struct ResumeFixture {
  testing::TempDir dir;
  nlohmann::json reference;
  ResumeFixture() {
    EXPECT_EQ(run_to_end({MIL_MHIM_BINARY, "synth", "--out", dir / "data", "--bags", "60", "--dim",
                          "64", "--min-instances", "150", "--max-instances", "300"}),
              0);
    EXPECT_EQ(run_to_end(train_args(dir, "straight")), 0);
    reference = outcome(result_of(dir / "straight.json"));
  }
};

}  // namespace

TEST(TrainResume, SigkillThenRerunEndsWithTheUninterruptedMetrics) {
  ResumeFixture f;
  const auto args = train_args(f.dir, "killed");
  const pid_t pid = spawn(args);
  ASSERT_TRUE(wait_for_epochs(f.dir / "killed", 3));
  std::this_thread::sleep_for(std::chrono::milliseconds(150));  // land inside a later epoch
  kill(pid, SIGKILL);
  EXPECT_EQ(wait_exit_code(pid), 128 + SIGKILL);
  ASSERT_FALSE(std::filesystem::exists(f.dir / "killed.json"))
      << "the run finished before the kill";
  ASSERT_TRUE(std::filesystem::exists(f.dir / "killed/checkpoint.pt"));

  ASSERT_EQ(run_to_end(args), 0);
  const nlohmann::json resumed = result_of(f.dir / "killed.json");
  EXPECT_GE(resumed.at("metrics").at("selection").at("resumed_from_epoch").get<int>(), 3);
  EXPECT_EQ(outcome(resumed), f.reference);
  EXPECT_FALSE(std::filesystem::exists(f.dir / "killed/checkpoint.pt"))
      << "a finished job drops its resume state";
  EXPECT_TRUE(std::filesystem::exists(f.dir / "killed/model_best.pt"));
}

TEST(TrainResume, SigtermCheckpointsExitsWithStatus75AndResumes) {
  ResumeFixture f;
  const auto args = train_args(f.dir, "termed");
  const pid_t pid = spawn(args);
  ASSERT_TRUE(wait_for_epochs(f.dir / "termed", 2));
  kill(pid, SIGTERM);
  ASSERT_EQ(wait_exit_code(pid), 75);
  ASSERT_TRUE(std::filesystem::exists(f.dir / "termed/checkpoint.pt"));
  ASSERT_EQ(run_to_end(args), 0);
  EXPECT_EQ(outcome(result_of(f.dir / "termed.json")), f.reference);
}

}  // namespace mil

namespace mil {

TEST(Predict, RunsTheSavedBestModelOnEveryBagAndReproducesItsTestPredictions) {
  ResumeFixture f;
  const std::string out = f.dir / "pred.csv";
  ASSERT_EQ(run_to_end({MIL_MHIM_BINARY, "predict", "--model", "abmil", "--weights",
                        f.dir / "straight/model_best.pt", "--input", f.dir / "data", "--out", out}),
            0);
  std::ifstream bags(out);
  std::string line;
  std::getline(bags, line);
  // `mhim synth` records which instances are witnesses, so predict adds the label, the witness
  // counts and the per-slide instance AUCs after the seven prediction columns.
  EXPECT_EQ(line,
            "slide_id,instances,predicted,logit_0,logit_1,prob_0,prob_1,label,hard_witnesses,"
            "easy_witnesses,instance_auc,instance_auc_hard,instance_auc_easy");
  int rows = 0;
  std::map<std::string, int> witnesses_in_bags;
  while (std::getline(bags, line)) {
    ++rows;
    std::vector<std::string> cells;
    std::size_t start = 0;
    for (std::size_t comma; (comma = line.find(',', start)) != std::string::npos;
         start = comma + 1) {
      cells.push_back(line.substr(start, comma - start));
    }
    cells.push_back(line.substr(start));
    ASSERT_EQ(cells.size(), 13u) << line;
    const auto number = [&](int i) { return std::atof(cells[i].c_str()); };
    EXPECT_NEAR(number(5) + number(6), 1.0, 1e-6) << line;
    EXPECT_EQ(int(number(2)), number(6) > number(5) ? 1 : 0) << line;
    // A negative bag holds no witness; a positive one holds at least one.
    const int witnesses = int(number(8)) + int(number(9));
    witnesses_in_bags[cells[0]] = witnesses;
    if (cells[7] == "0") EXPECT_EQ(witnesses, 0) << line;
    if (cells[7] == "1") EXPECT_GT(witnesses, 0) << line;
  }
  EXPECT_EQ(rows, 60);
  // One score per instance, summing to 1 per bag for ABMIL's softmax attention, then the instance's
  // truth code; the codes 1 and 2 (hard and easy witnesses) add up to the bag file's counts.
  std::ifstream instances(f.dir / "pred.instances.csv");
  std::getline(instances, line);
  EXPECT_EQ(line, "slide_id,index,x,y,score,truth");
  std::map<std::string, double> sums;
  std::map<std::string, int> witnesses;
  while (std::getline(instances, line)) {
    const auto first = line.find(','), last = line.rfind(',');
    const std::string slide = line.substr(0, first);
    const auto score_at = line.rfind(',', last - 1) + 1;
    sums[slide] += std::atof(line.substr(score_at, last - score_at).c_str());
    const int code = std::atoi(line.substr(last + 1).c_str());
    witnesses[slide] += code == 1 || code == 2;
  }
  for (const auto& [slide, count] : witnesses_in_bags) EXPECT_EQ(witnesses[slide], count) << slide;
  EXPECT_EQ(sums.size(), 60u);
  for (const auto& [slide, sum] : sums) EXPECT_NEAR(sum, 1.0, 1e-5) << slide;
}

}  // namespace mil
