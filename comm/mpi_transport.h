#pragma once
// Moves tagged text frames between ranks. Waiting is a probe-and-sleep loop with a backoff, not a
// blocking receive, because Open MPI's blocking calls spin a core and ranks here share few cores
// with training; the backoff keeps the reply latency of a busy loop in microseconds.
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <mpi.h>

#include "comm/protocol.h"

namespace mil::comm {

/// One received frame.
struct Message {
  int source = -1;
  MsgTag tag = MsgTag::kStop;
  std::string payload;
};

/// Sends `payload` to `destination` with `tag` (blocking until the buffer may be reused).
void send_message(MPI_Comm comm, int destination, MsgTag tag, const std::string& payload);

/// Sends frames without waiting for them to leave: each payload is kept until MPI has taken it.
/// Rank 0 sends through one so that a worker busy outside MPI (its shared-memory queue full) never
/// stalls the answers to every other worker; MPI keeps the order of frames to one destination, as
/// with send_message. Every frame has left once drain() returns (the destructor drains too).
class QueuedSender {
 public:
  explicit QueuedSender(MPI_Comm comm) : comm_(comm) {}
  QueuedSender(const QueuedSender&) = delete;
  QueuedSender& operator=(const QueuedSender&) = delete;
  ~QueuedSender();

  void send(int destination, MsgTag tag, std::string payload);
  /// Forgets the frames that have left; cheap, call it in the polling loop.
  void progress();
  /// Waits until every frame has left.
  void drain();
  /// Stops tracking the frames still queued, without waiting, for a caller about to end the MPI
  /// world (MPI_Abort) while a receiver is stuck: their buffers are leaked, so MPI may still read
  /// them.
  void abandon() noexcept;
  std::size_t in_flight() const { return requests_.size(); }

 private:
  MPI_Comm comm_;
  std::vector<MPI_Request> requests_;  ///< parallel to payloads_
  /// Boxed: a short string keeps its characters inside the object, which must not move while MPI
  /// reads it.
  std::vector<std::unique_ptr<const std::string>> payloads_;
  std::vector<int>
      completed_indices_;  ///< MPI_Testsome's output, kept to avoid an allocation per call
};

/// Receives one waiting frame from `source` (MPI_ANY_SOURCE allowed), or nothing if none is
/// waiting.
std::optional<Message> poll_message(MPI_Comm comm, int source = MPI_ANY_SOURCE);

/// Waits for a frame from `source`, probing with a Backoff whose longest sleep is `poll_interval`.
Message wait_message(MPI_Comm comm, int source, std::chrono::milliseconds poll_interval);

/// Pauses between probes of a polling loop: yields for 2 ms, then sleeps doubling from 20 us to
/// `longest`. A frame arriving soon after the last one is seen in microseconds; an idle loop sleeps
/// `longest`.
class Backoff {
 public:
  explicit Backoff(std::chrono::milliseconds longest);
  /// Waits a little longer than last time (up to `longest`).
  void pause();
  /// Back to the shortest pause (after a frame arrived).
  void reset();

 private:
  std::chrono::microseconds longest_;
  std::chrono::microseconds nap_{20};
  std::chrono::steady_clock::time_point spinning_since_{};  ///< First pause since the last reset.
};

}  // namespace mil::comm
