#pragma once
// Moves tagged text frames between ranks. Waiting is a probe-and-sleep loop with a backoff, not a
// blocking receive, because Open MPI's blocking calls spin a core and ranks here share few cores with
// training; the backoff keeps the reply latency of a busy loop in microseconds.
#include <chrono>
#include <optional>
#include <string>

#include <mpi.h>

#include "worker/protocol.h"

namespace mil::worker {

/// One received frame.
struct Message {
  int source = -1;
  MsgTag tag = MsgTag::kStop;
  std::string payload;
};

/// Sends `payload` to `destination` with `tag` (blocking until the buffer may be reused).
void send_message(MPI_Comm comm, int destination, MsgTag tag, const std::string& payload);

/// Receives one waiting frame from `source` (MPI_ANY_SOURCE allowed), or nothing if none is waiting.
std::optional<Message> poll_message(MPI_Comm comm, int source = MPI_ANY_SOURCE);

/// Waits for a frame from `source`, probing with a Backoff whose longest sleep is `poll_interval`.
Message wait_message(MPI_Comm comm, int source, std::chrono::milliseconds poll_interval);

/// Pauses between probes of a polling loop: yields for 2 ms, then sleeps doubling from 20 us to `longest`.
/// A frame arriving soon after the last one is seen in microseconds; an idle loop sleeps `longest`.
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

}  // namespace mil::worker
