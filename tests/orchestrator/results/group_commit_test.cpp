#include "orchestrator/results/group_commit.h"

#include <condition_variable>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/expect_throw.h"
#include "tests/support/temp_dir.h"

namespace mil::orch {
namespace {

using nlohmann::json;

JobResult ok_result(std::uint64_t seed) {
  JobResult r;
  r.spec.dataset.name = "synth";
  r.spec.dataset.root = "/data/synth";
  r.spec.seed = seed;
  r.job_id = r.spec.id();
  r.config_id = r.spec.config_id();
  r.status = "ok";
  return r;
}

std::vector<std::string> journal_ids(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> ids;
  for (std::string line; std::getline(in, line);)
    ids.push_back(json::parse(line).at("job_id").get<std::string>());
  return ids;
}

/// A crash hook that holds the committer thread at the first kTempsWritten until release() is
/// called.
class Gate {
 public:
  void hook(CommitStage stage) {
    if (stage == CommitStage::kJournaled) ++batches_;
    if (stage != CommitStage::kTempsWritten || passed_) return;
    std::unique_lock<std::mutex> lock(mutex_);
    entered_ = true;
    changed_.notify_all();
    changed_.wait(lock, [this] { return released_; });
    passed_ = true;
  }
  void wait_entered() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return entered_; });
  }
  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    released_ = true;
    changed_.notify_all();
  }
  int batches() const { return batches_; }  ///< Read after GroupCommitter::wait_all only.

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool entered_ = false, released_ = false, passed_ = false;
  int batches_ = 0;
};

TEST(GroupCommitter, CommitsEveryRecordInSubmissionOrder) {
  testing::TempDir dir;
  ResultsStore store(dir.path().string());
  std::vector<std::string> expected;
  {
    GroupCommitter committer(store);
    for (std::uint64_t seed = 0; seed < 50; ++seed) {
      const JobResult r = ok_result(seed);
      if (seed % 5 == 0) {
        committer.submit(StoreRecord::of_note(r.job_id, "retry", "attempt 1 of 2 failed"));
        expected.push_back(r.job_id);
      }
      committer.submit(StoreRecord::of_result(r));
      expected.push_back(r.job_id);
    }
    EXPECT_EQ(committer.submitted(), 60u);
    EXPECT_EQ(committer.wait_all(), 60u);
    EXPECT_EQ(committer.committed(), 60u);
  }
  EXPECT_EQ(journal_ids(dir / "journal.jsonl"), expected);
  EXPECT_EQ(store.completed_ids().size(), 50u);
}

TEST(GroupCommitter, RecordsQueuedDuringASyncShareTheNextBatchUpToMaxBatch) {
  testing::TempDir dir;
  ResultsStore store(dir.path().string());
  Gate gate;
  store.set_crash_hook([&gate](CommitStage stage) { gate.hook(stage); });
  GroupCommitter committer(store, /*max_batch=*/10);
  committer.submit(StoreRecord::of_result(ok_result(0)));
  gate.wait_entered();  // the first batch (1 record) is being written
  for (std::uint64_t seed = 1; seed <= 99; ++seed)
    committer.submit(StoreRecord::of_result(ok_result(seed)));
  EXPECT_EQ(committer.committed(), 0u);  // held mid-batch: nothing durable, nothing reported
  gate.release();
  EXPECT_EQ(committer.wait_all(), 100u);
  EXPECT_EQ(gate.batches(), 1 + 10);  // 1, then the 99 queued in batches of at most 10
}

TEST(GroupCommitter, CountsABatchCommittedOnlyAfterItsJournalLinesAreSynced) {
  testing::TempDir dir;
  ResultsStore store(dir.path().string());
  std::mutex mutex;
  GroupCommitter* watched = nullptr;
  std::vector<std::pair<std::size_t, std::size_t>>
      seen;  // (journal lines, committed()) at kJournaled
  store.set_crash_hook([&](CommitStage stage) {
    std::lock_guard<std::mutex> lock(mutex);
    if (watched != nullptr && stage == CommitStage::kJournaled) {
      seen.emplace_back(journal_ids(dir / "journal.jsonl").size(), watched->committed());
    }
  });
  GroupCommitter committer(store);
  {
    std::lock_guard<std::mutex> lock(mutex);
    watched = &committer;
  }
  for (std::uint64_t seed = 0; seed < 20; ++seed)
    committer.submit(StoreRecord::of_result(ok_result(seed)));
  EXPECT_EQ(committer.wait_all(), 20u);
  // When a batch's lines are on disk, the count still excludes that batch (it is not durable until
  // write_batch returns), and includes every earlier one.
  ASSERT_FALSE(seen.empty());
  std::size_t previous_lines = 0;
  for (const auto& [lines, committed] : seen) {
    EXPECT_LT(committed, lines);
    EXPECT_EQ(committed, previous_lines);
    previous_lines = lines;
  }
  EXPECT_EQ(previous_lines, 20u);
}

TEST(GroupCommitter, AFailedWriteIsRethrownAndNothingAfterItCommits) {
  testing::TempDir dir;
  ResultsStore store(dir.path().string());
  GroupCommitter committer(store);
  JobResult bad = ok_result(1);
  bad.status = "running";
  committer.submit(StoreRecord::of_result(bad));
  MIL_EXPECT_THROW_WITH(committer.wait_all(), "is not one of ok, failed, quarantined");
  committer.submit(StoreRecord::of_result(ok_result(2)));
  MIL_EXPECT_THROW_WITH(committer.committed(), "is not one of ok, failed, quarantined");
  EXPECT_TRUE(store.completed_ids().empty());
}

TEST(GroupCommitter, RejectsAnEmptyBatchSize) {
  testing::TempDir dir;
  ResultsStore store(dir.path().string());
  MIL_EXPECT_THROW_WITH(GroupCommitter(store, 0), "max_batch must be at least 1");
}

}  // namespace
}  // namespace mil::orch
