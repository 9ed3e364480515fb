#include "orchestrator/results/store.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

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
  MIL_EXPECT_THROW_WITH(store.write(make_result(3, "interrupted")),
                        "is not one of ok, failed, quarantined");
}

TEST(ResultsStore, WriteBatchWritesEveryResultAndJournalsRecordsInOrder) {
  testing::TempDir dir;
  ResultsStore store(dir.path().string());
  const JobResult first = make_result(1, "ok", 0.75), second = make_result(2, "failed");
  store.write_batch({StoreRecord::of_note(first.job_id, "retry", "attempt 1 of 2 failed"),
                     StoreRecord::of_result(first), StoreRecord::of_result(second)});
  const std::vector<JobResult> loaded = store.load_all();
  ASSERT_EQ(loaded.size(), 2u);
  for (const JobResult& r : loaded)
    EXPECT_EQ(json(r), json(r.job_id == first.job_id ? first : second));
  const std::vector<std::string> lines = read_lines(dir / "journal.jsonl");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(json::parse(lines[0]).at("status"), "retry");
  EXPECT_EQ(json::parse(lines[0]).at("detail"), "attempt 1 of 2 failed");
  EXPECT_EQ(json::parse(lines[1]).at("job_id"), first.job_id);
  EXPECT_EQ(json::parse(lines[2]).at("detail"), "loading fold 0: boom");
  for (const auto& entry : fs::directory_iterator(dir / "results")) {
    EXPECT_EQ(entry.path().extension(), ".json") << "temp file left behind: " << entry.path();
  }
}

TEST(ResultsStore, WriteBatchWithABadRecordChangesNothing) {
  testing::TempDir dir;
  ResultsStore store(dir.path().string());
  const JobResult ok = make_result(1, "ok");
  store.write(ok);
  // An ok result written again, a status that is not final, and a job twice in one batch: each
  // fails the whole batch before any file is touched.
  MIL_EXPECT_THROW_WITH(
      store.write_batch({StoreRecord::of_result(make_result(2, "ok")), StoreRecord::of_result(ok)}),
      "already has an ok result");
  MIL_EXPECT_THROW_WITH(store.write_batch({StoreRecord::of_result(make_result(2, "ok")),
                                           StoreRecord::of_result(make_result(3, "retry"))}),
                        "is not one of ok, failed, quarantined");
  MIL_EXPECT_THROW_WITH(store.write_batch({StoreRecord::of_result(make_result(2, "failed")),
                                           StoreRecord::of_result(make_result(2, "ok"))}),
                        "two results in one batch");
  EXPECT_EQ(store.load_all().size(), 1u);
  EXPECT_EQ(read_lines(dir / "journal.jsonl").size(), 1u);
}

/// What a crash at `stage` (the `occurrence`-th time it is reached) during a batch of `batch`
/// leaves, run in a child process that _exits there, as a killed rank 0 would stop.
void crash_during_batch(const std::string& root, const std::vector<JobResult>& batch,
                        CommitStage stage, int occurrence) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ResultsStore store(root);
    int seen = 0;
    store.set_crash_hook([&](CommitStage reached) {
      if (reached == stage && ++seen == occurrence) ::_exit(42);
    });
    std::vector<StoreRecord> records;
    for (const auto& r : batch) records.push_back(StoreRecord::of_result(r));
    try {
      store.write_batch(records);
    } catch (...) {
      ::_exit(1);
    }
    ::_exit(0);  // the hook was not reached
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 42) << "the crash point was not reached";
}

TEST(ResultsStore, CrashAtAnyCommitStageLosesAtMostTheBatchAndTheRerunWritesEachResultOnce) {
  struct Point {
    CommitStage stage;
    int occurrence;
    std::size_t results_kept;  ///< Results of the batch a reader sees after the crash.
    bool journaled;            ///< Whether their journal lines are there.
  };
  const std::vector<Point> points = {
      {CommitStage::kTempsWritten, 1, 0, false}, {CommitStage::kTempsSynced, 1, 0, false},
      {CommitStage::kRenamed, 1, 1, false},      {CommitStage::kRenamed, 3, 3, false},
      {CommitStage::kFolderSynced, 1, 4, false}, {CommitStage::kJournaled, 1, 4, true}};
  for (const Point& point : points) {
    SCOPED_TRACE("crash at stage " + std::to_string(static_cast<int>(point.stage)) + " #" +
                 std::to_string(point.occurrence));
    testing::TempDir dir;
    const std::string root = dir / "store";
    const JobResult earlier = make_result(100, "ok", 0.25);
    ResultsStore(root).write(earlier);  // a batch committed before: must survive untouched
    std::vector<JobResult> batch;
    for (std::uint64_t seed = 1; seed <= 4; ++seed)
      batch.push_back(make_result(seed, "ok", 0.5 + 0.1 * double(seed)));
    crash_during_batch(root, batch, point.stage, point.occurrence);

    // Restart: the reader sees whole results only (temp files skipped), in rename order.
    ResultsStore store(root);
    const std::set<std::string> done = store.completed_ids();
    EXPECT_EQ(done.size(), 1 + point.results_kept);
    EXPECT_EQ(done.count(earlier.job_id), 1u);
    for (std::size_t i = 0; i < batch.size(); ++i)
      EXPECT_EQ(done.count(batch[i].job_id), i < point.results_kept ? 1u : 0u);
    for (const JobResult& r : store.load_all()) {
      EXPECT_EQ(json(r), json(r.job_id == earlier.job_id ? earlier
                                                         : batch.at(std::size_t(r.spec.seed - 1))));
    }
    const auto journal = replay_journal(root + "/journal.jsonl");
    for (const JobResult& r : batch) EXPECT_EQ(journal.count(r.job_id), point.journaled ? 1u : 0u);

    // The rerun (as run_orchestrator: skip what is done) writes the rest once; nothing is
    // duplicated.
    std::vector<StoreRecord> rerun;
    for (const JobResult& r : batch) {
      if (done.count(r.job_id) == 0) rerun.push_back(StoreRecord::of_result(r));
    }
    store.write_batch(rerun);
    EXPECT_EQ(store.completed_ids().size(), 1 + batch.size());
    for (const auto& [id, entry] : replay_journal(root + "/journal.jsonl"))
      EXPECT_LE(entry.ok_lines, 1) << id;
  }
}

TEST(ResultsStore, ReplayJournalKeepsEachJobsLastStatusAndCountsRetriesAndSkipsTornLines) {
  testing::TempDir dir;
  ResultsStore store(dir.path().string());
  const JobResult a = make_result(1, "ok"), b = make_result(2, "quarantined");
  store.note(a.job_id, "retry", "attempt 1 of 2 failed: killed (signal 9; out of memory?)");
  store.write(a);
  store.note(b.job_id, "retry", "attempt 1 of 2 failed: loading fold 0: boom");
  store.write(b);
  std::ofstream(dir / "journal.jsonl", std::ios::app)
      << "{\"job_id\": \"torn";                     // a crash mid-append
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

TEST(ResultsStore, ReplayJournalCountsHangsSinceTheJobsLastFinalFailure) {
  testing::TempDir dir;
  ResultsStore store(dir.path().string());
  const JobResult a = make_result(1, "quarantined"), b = make_result(2, "ok");
  store.note(a.job_id, "hung", "hung: no heartbeat for 601 s (in worker ranks 1,2)");
  store.note(a.job_id, "retry", "attempt 1 of 2 failed: boom");
  store.note(a.job_id, "hung", "hung: no heartbeat for 605 s (in worker ranks 3,4)");
  store.write(a);  // quarantined: a --retry-failed run starts its count again
  store.note(a.job_id, "hung", "hung: no heartbeat for 700 s (in worker ranks 1,2)");
  store.note(b.job_id, "hung", "hung: no heartbeat for 9 s (in worker rank 2)");
  store.note(b.job_id, "hung", "hung: no heartbeat for 8 s (in worker rank 1)");
  const auto entries = replay_journal(dir / "journal.jsonl");
  EXPECT_EQ(entries.at(a.job_id).lost_attempts,
            std::vector<std::string>{"hung: no heartbeat for 700 s (in worker ranks 1,2)"});
  EXPECT_EQ(entries.at(b.job_id).lost_attempts,
            (std::vector<std::string>{"hung: no heartbeat for 9 s (in worker rank 2)",
                                      "hung: no heartbeat for 8 s (in worker rank 1)"}));
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
