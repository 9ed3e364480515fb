#pragma once
// Moves tagged text frames between ranks. Waiting is a probe-and-sleep loop, not a blocking receive,
// because Open MPI's blocking calls spin a core and ranks here share few cores with training.
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

/// Waits for a frame from `source`, sleeping `poll_interval` between probes.
Message wait_message(MPI_Comm comm, int source, std::chrono::milliseconds poll_interval);

}  // namespace mil::worker
