#include "orchestrator/results_store.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace mil::orch {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

template <typename F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "<no exception>";
}

::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << part << "' not found in: " << text;
}

/// A fresh folder name under the system temp dir (not created), removed at scope exit.
class TempDir {
 public:
  TempDir()
      : path_(fs::temp_directory_path() / ("mhim_store_test_" + std::to_string(::getpid()) + "_" +
                                           std::to_string(next_id_++))) {}
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string str() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  static inline int next_id_ = 0;
  fs::path path_;
};

JobResult make_result(std::uint64_t seed, const std::string& status, double auc = 0.5) {
  JobResult r;
  r.spec.dataset.name = "synth";
  r.spec.dataset.root = "/data/synth";
  r.spec.seed = seed;
  r.job_id = r.spec.id();
  r.config_id = r.spec.config_id();
  r.status = status;
  if (status == "failed") r.error = "loading fold 0: boom";
  r.metrics = {{"test", {{"auc", auc}}}};
  return r;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(ResultsStore, CreatesDirectoriesAndRoundTripsResultsSortedById) {
  TempDir dir;
  ResultsStore store(dir.str());
  EXPECT_TRUE(fs::is_directory(dir.file("results")));
  std::vector<JobResult> written = {make_result(1, "ok", 0.75), make_result(2, "failed"),
                                    make_result(3, "ok")};
  for (const auto& r : written) store.write(r);
  std::sort(written.begin(), written.end(),
            [](const auto& a, const auto& b) { return a.job_id < b.job_id; });

  const std::vector<JobResult> loaded = ResultsStore(dir.str()).load_all();
  ASSERT_EQ(loaded.size(), 3u);
  for (std::size_t i = 0; i < loaded.size(); ++i) {
    EXPECT_EQ(json(loaded[i]), json(written[i]));  // every field survives
  }
  EXPECT_EQ(store.completed_ids(),
            (std::set<std::string>{make_result(1, "ok").job_id, make_result(3, "ok").job_id}));
}

TEST(ResultsStore, JournalGetsOneCompactLinePerWrite) {
  TempDir dir;
  ResultsStore store(dir.str());
  const JobResult failed = make_result(1, "failed");
  store.write(failed);
  store.write(make_result(1, "ok"));
  const std::vector<std::string> lines = read_lines(dir.file("journal.jsonl"));
  ASSERT_EQ(lines.size(), 2u);
  const json first = json::parse(lines[0]);
  EXPECT_EQ(first.at("job_id"), failed.job_id);
  EXPECT_EQ(first.at("status"), "failed");
  EXPECT_EQ(first.at("config_id"), failed.config_id);
  EXPECT_EQ(first.at("time").get<std::string>().size(), std::string("2024-01-01T00:00:00Z").size());
  EXPECT_EQ(json::parse(lines[1]).at("status"), "ok");
}

TEST(ResultsStore, RefusesToOverwriteAnOkResult) {
  TempDir dir;
  ResultsStore store(dir.str());
  const JobResult ok = make_result(1, "ok", 0.9);
  store.write(ok);
  JobResult again = ok;
  again.metrics = {{"test", {{"auc", 0.1}}}};
  const std::string message = error_message([&] { store.write(again); });
  EXPECT_TRUE(contains(message, ok.job_id));
  EXPECT_TRUE(contains(message, "already has an ok result"));
  EXPECT_THROW(store.write(make_result(1, "failed")), std::runtime_error);
  EXPECT_EQ(store.load_all().at(0).metrics["test"]["auc"], 0.9);  // the first result stays
}

TEST(ResultsStore, FailedResultMayBeReplacedByOk) {
  TempDir dir;
  ResultsStore store(dir.str());
  store.write(make_result(1, "failed"));
  store.write(make_result(1, "failed"));  // a second failed attempt also replaces
  store.write(make_result(1, "ok"));
  const std::vector<JobResult> loaded = store.load_all();
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_TRUE(loaded[0].ok());
}

TEST(ResultsStore, IgnoresTempFilesAndThrowsNamingCorruptFile) {
  TempDir dir;
  ResultsStore store(dir.str());
  store.write(make_result(1, "ok"));
  std::ofstream(dir.file("results/.abc.json.tmp.123")) << "{half";
  std::ofstream(dir.file("results/notes.txt")) << "not a result";
  EXPECT_EQ(store.load_all().size(), 1u);

  const std::string corrupt = dir.file("results/deadbeef.json");
  std::ofstream(corrupt) << "{\"job_id\": ";
  EXPECT_TRUE(contains(error_message([&] { store.load_all(); }), corrupt));
}

TEST(ResultsStore, ManifestRoundTripsAndIsEmptyWhenAbsent) {
  TempDir dir;
  ResultsStore store(dir.str());
  EXPECT_TRUE(store.load_manifest().empty());
  std::vector<JobSpec> jobs = {make_result(1, "ok").spec, make_result(2, "ok").spec};
  jobs[1].model.options = {{"dropout", 0.25}};
  store.write_manifest(jobs);
  const std::vector<JobSpec> loaded = store.load_manifest();
  ASSERT_EQ(loaded.size(), 2u);
  EXPECT_EQ(loaded[0].id(), jobs[0].id());
  EXPECT_EQ(loaded[1].id(), jobs[1].id());
  EXPECT_EQ(json::parse(std::ifstream(dir.file("jobs.json"))).at(1).at("id"), jobs[1].id());
  for (const auto& entry : fs::directory_iterator(dir.str())) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"),
              std::string::npos);  // temp file renamed away
  }
}

}  // namespace
}  // namespace mil::orch
