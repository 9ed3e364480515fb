#include "orchestrator/results_store.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/expect_throw.h"
#include "tests/support/temp_dir.h"

namespace mil::orch {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

JobResult make_result(std::uint64_t seed, const std::string& status, double auc = 0.5) {
  JobResult r;
  r.spec.dataset.name = "synth";
  r.spec.dataset.root = "/data/synth";
  r.spec.seed = seed;
  r.job_id = r.spec.id();
  r.config_id = r.spec.config_id();
  r.status = status;
  if (status != "ok") r.error = "loading fold 0: boom";
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
  testing::TempDir dir;
  const std::string root = dir / "store";  // not there yet: the store must create it
  ASSERT_FALSE(fs::exists(root));
  ResultsStore store(root);
  EXPECT_TRUE(fs::is_directory(root + "/results"));
  std::vector<JobResult> written = {make_result(1, "ok", 0.75), make_result(2, "failed"),
                                    make_result(3, "ok")};
  for (const auto& r : written) store.write(r);
  std::sort(written.begin(), written.end(),
            [](const auto& a, const auto& b) { return a.job_id < b.job_id; });

  const std::vector<JobResult> loaded = ResultsStore(root).load_all();
  ASSERT_EQ(loaded.size(), 3u);
  for (std::size_t i = 0; i < loaded.size(); ++i) {
    EXPECT_EQ(json(loaded[i]), json(written[i]));  // every field survives
  }
  EXPECT_EQ(store.completed_ids(),
            (std::set<std::string>{make_result(1, "ok").job_id, make_result(3, "ok").job_id}));
}

TEST(ResultsStore, JournalGetsOneCompactLinePerWrite) {
  testing::TempDir dir;
  ResultsStore store(dir.path().string());
  const JobResult failed = make_result(1, "failed");
  store.write(failed);
  store.write(make_result(1, "ok"));
  const std::vector<std::string> lines = read_lines(dir / "journal.jsonl");
  ASSERT_EQ(lines.size(), 2u);
  const json first = json::parse(lines[0]);
  EXPECT_EQ(first.at("job_id"), failed.job_id);
  EXPECT_EQ(first.at("status"), "failed");
  EXPECT_EQ(first.at("config_id"), failed.config_id);
  EXPECT_EQ(first.at("time").get<std::string>().size(), std::string("2024-01-01T00:00:00Z").size());
  EXPECT_EQ(json::parse(lines[1]).at("status"), "ok");
}

TEST(ResultsStore, RefusesToOverwriteAnOkResult) {
  testing::TempDir dir;
  ResultsStore store(dir.path().string());
  const JobResult ok = make_result(1, "ok", 0.9);
  store.write(ok);
  JobResult again = ok;
  again.metrics = {{"test", {{"auc", 0.1}}}};
  MIL_EXPECT_THROW_WITH(store.write(again), ok.job_id);
  MIL_EXPECT_THROW_WITH(store.write(again), "already has an ok result");
  EXPECT_THROW(store.write(make_result(1, "failed")), std::runtime_error);
  EXPECT_EQ(store.load_all().at(0).metrics["test"]["auc"], 0.9);  // the first result stays
}

TEST(ResultsStore, FailedResultMayBeReplacedByOk) {
  testing::TempDir dir;
  ResultsStore store(dir.path().string());
  store.write(make_result(1, "failed"));
  store.write(make_result(1, "failed"));  // a second failed attempt also replaces
  store.write(make_result(1, "ok"));
  const std::vector<JobResult> loaded = store.load_all();
  ASSERT_EQ(loaded.size(), 1u);
  EXPECT_TRUE(loaded[0].ok());
}

TEST(ResultsStore, QuarantinedResultsAreListedJournaledWithTheirErrorAndReplaceable) {
  testing::TempDir dir;
  ResultsStore store(dir.path().string());
  const JobResult quarantined = make_result(1, "quarantined");
  store.write(quarantined);
  store.write(make_result(2, "ok"));
  EXPECT_EQ(store.quarantined_ids(), std::set<std::string>{quarantined.job_id});
  EXPECT_EQ(store.completed_ids(), std::set<std::string>{make_result(2, "ok").job_id});
  const json line = json::parse(read_lines(dir / "journal.jsonl").at(0));
  EXPECT_EQ(line.at("status"), "quarantined");
  EXPECT_EQ(line.at("detail"), "loading fold 0: boom");
  store.write(make_result(1, "ok"));  // a rerun with --retry-failed may succeed
  EXPECT_TRUE(store.quarantined_ids().empty());
  MIL_EXPECT_THROW_WITH(store.write(make_result(3, "interrupted")), "is not one of ok, failed, quarantined");
}

TEST(ResultsStore, ReplayJournalKeepsEachJobsLastStatusAndCountsRetriesAndSkipsTornLines) {
  testing::TempDir dir;
  ResultsStore store(dir.path().string());
  const JobResult a = make_result(1, "ok"), b = make_result(2, "quarantined");
  store.note(a.job_id, "retry", "attempt 1 of 2 failed: killed (signal 9; out of memory?)");
  store.write(a);
  store.note(b.job_id, "retry", "attempt 1 of 2 failed: loading fold 0: boom");
  store.write(b);
  std::ofstream(dir / "journal.jsonl", std::ios::app) << "{\"job_id\": \"torn";  // a crash mid-append
  store.note(a.job_id, "note", "after the crash");  // must not be glued to the torn line
  std::size_t skipped = 0;
  const auto entries = replay_journal(dir / "journal.jsonl", &skipped);
  EXPECT_EQ(skipped, 1u);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries.at(a.job_id).status, "note");
  EXPECT_EQ(entries.at(a.job_id).detail, "after the crash");
  EXPECT_EQ(entries.at(a.job_id).retries, 1);
  EXPECT_EQ(entries.at(a.job_id).ok_lines, 1);
  EXPECT_EQ(entries.at(a.job_id).lines, 3);
  EXPECT_EQ(entries.at(b.job_id).status, "quarantined");
  EXPECT_EQ(entries.at(b.job_id).detail, "loading fold 0: boom");
  EXPECT_TRUE(replay_journal(dir / "none.jsonl").empty());
}

TEST(ResultsStore, IgnoresTempFilesAndThrowsNamingCorruptFile) {
  testing::TempDir dir;
  ResultsStore store(dir.path().string());
  store.write(make_result(1, "ok"));
  std::ofstream(dir / "results/.abc.json.tmp.123") << "{half";
  std::ofstream(dir / "results/notes.txt") << "not a result";
  EXPECT_EQ(store.load_all().size(), 1u);

  const std::string corrupt = dir / "results/deadbeef.json";
  std::ofstream(corrupt) << "{\"job_id\": ";
  MIL_EXPECT_THROW_WITH(store.load_all(), corrupt);
}

TEST(ResultsStore, ManifestRoundTripsAndIsEmptyWhenAbsent) {
  testing::TempDir dir;
  ResultsStore store(dir.path().string());
  EXPECT_TRUE(store.load_manifest().empty());
  std::vector<JobSpec> jobs = {make_result(1, "ok").spec, make_result(2, "ok").spec};
  jobs[1].model.options = {{"dropout", 0.25}};
  store.write_manifest(jobs);
  const std::vector<JobSpec> loaded = store.load_manifest();
  ASSERT_EQ(loaded.size(), 2u);
  EXPECT_EQ(loaded[0].id(), jobs[0].id());
  EXPECT_EQ(loaded[1].id(), jobs[1].id());
  EXPECT_EQ(json::parse(std::ifstream(dir / "jobs.json")).at(1).at("id"), jobs[1].id());
  for (const auto& entry : fs::directory_iterator(dir.path())) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp"),
              std::string::npos);  // temp file renamed away
  }
}

}  // namespace
}  // namespace mil::orch
