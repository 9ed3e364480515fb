#include "orchestrator/results/group_commit.h"

#include <stdexcept>
#include <utility>
#include <vector>

namespace mil::orch {
namespace {

std::size_t checked_batch(std::size_t max_batch) {
  if (max_batch == 0) throw std::runtime_error("group commit: max_batch must be at least 1");
  return max_batch;
}

}  // namespace

GroupCommitter::GroupCommitter(ResultsStore& store, std::size_t max_batch)
    : store_(store), max_batch_(checked_batch(max_batch)), thread_([this] { run(); }) {}

GroupCommitter::~GroupCommitter() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void GroupCommitter::submit(StoreRecord record) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    queue_.push_back(std::move(record));
  }
  ++submitted_;
  wake_.notify_one();
}

std::size_t GroupCommitter::committed() {
  std::lock_guard<std::mutex> lock(mutex_);
  if (error_) std::rethrow_exception(error_);
  return committed_;
}

std::size_t GroupCommitter::wait_all() {
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [this] { return error_ || committed_ == submitted_; });
  if (error_) std::rethrow_exception(error_);
  return committed_;
}

void GroupCommitter::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything queued is committed
    std::vector<StoreRecord> batch;
    while (!queue_.empty() && batch.size() < max_batch_) {
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    lock.unlock();
    std::exception_ptr error;
    try {
      store_.write_batch(batch);
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    if (error) {
      error_ = error;
      done_.notify_all();
      return;
    }
    committed_ += batch.size();
    done_.notify_all();
  }
}

}  // namespace mil::orch
