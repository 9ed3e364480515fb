#pragma once
// Group commit for rank 0: results and journal notes are made durable on a thread of its own, many
// per sync (ResultsStore::write_batch), while the MPI loop keeps handing out jobs. A batch is
// whatever was submitted while the previous one synced (at most max_batch), so an idle sweep
// commits each result at once and a busy one shares each sync among many; no timer adds latency.
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "orchestrator/results/store.h"

namespace mil::orch {

/// Records per write_batch at most: bounds the time one batch holds back the results behind it.
constexpr std::size_t kDefaultMaxCommitBatch = 1024;

/// Commits StoreRecords in submission order. Not copyable; one owner thread calls its methods.
class GroupCommitter {
 public:
  /// Commits into `store`, which must outlive this object and see no other writer meanwhile.
  explicit GroupCommitter(ResultsStore& store, std::size_t max_batch = kDefaultMaxCommitBatch);
  /// Commits what is still queued (unless a commit failed; errors are swallowed here), then stops.
  ~GroupCommitter();
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  /// Queues `record`; it is durable once committed() exceeds the number submitted before it.
  void submit(StoreRecord record);
  /// Records submitted so far.
  std::size_t submitted() const { return submitted_; }
  /// Records made durable so far: always the first committed() submitted. Rethrows the error of a
  /// failed write_batch (nothing is committed after one).
  std::size_t committed();
  /// Waits until every submitted record is durable; returns committed(). Rethrows as committed().
  std::size_t wait_all();

 private:
  void run();

  ResultsStore& store_;
  const std::size_t max_batch_;
  std::size_t submitted_ = 0;  ///< Owner thread only.
  std::mutex mutex_;
  std::condition_variable wake_;   ///< Signals the committer thread: work queued or stopping.
  std::condition_variable done_;   ///< Signals wait_all: a batch finished or failed.
  std::deque<StoreRecord> queue_;  ///< Guarded by mutex_.
  std::size_t committed_ = 0;      ///< Guarded by mutex_.
  std::exception_ptr error_;       ///< Guarded by mutex_; set once, then the thread ends.
  bool stopping_ = false;          ///< Guarded by mutex_.
  std::thread thread_;             ///< Last: starts after every member above exists.
};

}  // namespace mil::orch
