#include "comm/mpi_transport.h"

#include <algorithm>
#include <thread>

#include "comm/mpi_env.h"

namespace mil::comm {

void send_message(MPI_Comm comm, int destination, MsgTag tag, const std::string& payload) {
  MIL_MPI_CHECK(MPI_Send(payload.data(), static_cast<int>(payload.size()), MPI_CHAR, destination,
                         static_cast<int>(tag), comm));
}

QueuedSender::~QueuedSender() {
  // Frames still queued at an exception are completed or the world is aborted by MPI itself; never
  // throw from here.
  if (!requests_.empty())
    MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE);
}

void QueuedSender::send(int destination, MsgTag tag, std::string payload) {
  progress();
  auto kept = std::make_unique<const std::string>(std::move(payload));
  MPI_Request request = MPI_REQUEST_NULL;
  MIL_MPI_CHECK(MPI_Isend(kept->data(), static_cast<int>(kept->size()), MPI_CHAR, destination,
                          static_cast<int>(tag), comm_, &request));
  requests_.push_back(request);
  payloads_.push_back(std::move(kept));
}

void QueuedSender::progress() {
  if (requests_.empty()) return;
  int completed = 0;
  std::vector<int>& indices = completed_indices_;
  indices.resize(requests_.size());
  MIL_MPI_CHECK(MPI_Testsome(static_cast<int>(requests_.size()), requests_.data(), &completed,
                             indices.data(), MPI_STATUSES_IGNORE));
  if (completed <= 0) return;  // none, or MPI_UNDEFINED (no active request)
  // Completed requests are MPI_REQUEST_NULL now: keep the others, in order.
  std::size_t kept = 0;
  for (std::size_t i = 0; i < requests_.size(); ++i) {
    if (requests_[i] == MPI_REQUEST_NULL) continue;
    requests_[kept] = requests_[i];
    payloads_[kept] = std::move(payloads_[i]);
    ++kept;
  }
  requests_.resize(kept);
  payloads_.resize(kept);
}

void QueuedSender::abandon() noexcept {
  for (MPI_Request& request : requests_) {
    if (request != MPI_REQUEST_NULL) MPI_Request_free(&request);
  }
  for (auto& payload : payloads_) (void)payload.release();
  requests_.clear();
  payloads_.clear();
}

void QueuedSender::drain() {
  if (requests_.empty()) return;
  MIL_MPI_CHECK(
      MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(), MPI_STATUSES_IGNORE));
  requests_.clear();
  payloads_.clear();
}

std::optional<Message> poll_message(MPI_Comm comm, int source) {
  int waiting = 0;
  MPI_Status status;
  MIL_MPI_CHECK(MPI_Iprobe(source, MPI_ANY_TAG, comm, &waiting, &status));
  if (!waiting) return std::nullopt;
  int count = 0;
  MIL_MPI_CHECK(MPI_Get_count(&status, MPI_CHAR, &count));
  Message message;
  message.source = status.MPI_SOURCE;
  message.tag = static_cast<MsgTag>(status.MPI_TAG);
  message.payload.resize(static_cast<std::size_t>(count));
  MIL_MPI_CHECK(MPI_Recv(message.payload.data(), count, MPI_CHAR, status.MPI_SOURCE, status.MPI_TAG,
                         comm, MPI_STATUS_IGNORE));
  return message;
}

Message wait_message(MPI_Comm comm, int source, std::chrono::milliseconds poll_interval) {
  Backoff backoff(poll_interval);
  for (;;) {
    if (auto message = poll_message(comm, source)) return std::move(*message);
    backoff.pause();
  }
}

Backoff::Backoff(std::chrono::milliseconds longest) : longest_(longest) {}

void Backoff::pause() {
  // A reply usually comes within microseconds: yield for the first kSpin after a frame, then sleep,
  // doubling from 20 us up to `longest_`, so an idle rank costs almost no CPU and a busy one little
  // latency (measured: sleeping at once cut no-op jobs/s 4x on a loaded 2-core machine).
  constexpr auto kSpin = std::chrono::milliseconds(2);
  const auto now = std::chrono::steady_clock::now();
  if (spinning_since_ == std::chrono::steady_clock::time_point{}) spinning_since_ = now;
  if (now - spinning_since_ < kSpin) {
    std::this_thread::yield();
    return;
  }
  std::this_thread::sleep_for(nap_);
  nap_ = std::min<std::chrono::microseconds>(nap_ * 2, longest_);
}

void Backoff::reset() {
  spinning_since_ = {};
  nap_ = std::chrono::microseconds(20);
}

}  // namespace mil::comm
