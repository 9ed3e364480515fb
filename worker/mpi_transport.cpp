#include "worker/mpi_transport.h"

#include <thread>

#include "worker/mpi_env.h"

namespace mil::worker {

void send_message(MPI_Comm comm, int destination, MsgTag tag, const std::string& payload) {
  MIL_MPI_CHECK(MPI_Send(payload.data(), static_cast<int>(payload.size()), MPI_CHAR, destination,
                         static_cast<int>(tag), comm));
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
  MIL_MPI_CHECK(MPI_Recv(message.payload.data(), count, MPI_CHAR, status.MPI_SOURCE, status.MPI_TAG, comm,
                         MPI_STATUS_IGNORE));
  return message;
}

Message wait_message(MPI_Comm comm, int source, std::chrono::milliseconds poll_interval) {
  for (;;) {
    if (auto message = poll_message(comm, source)) return std::move(*message);
    std::this_thread::sleep_for(poll_interval);
  }
}

}  // namespace mil::worker
