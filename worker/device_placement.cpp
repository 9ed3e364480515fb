#include "worker/device_placement.h"

#include <cstdlib>

#include <torch/cuda.h>

#ifdef MIL_HAVE_NCCL
#include "worker/sync/nccl_communicator.h"
#endif

namespace mil::worker {

WorkerDevice place_worker(int local_rank, int rank0_local_rank, int jobs_per_gpu, int device_count,
                          const std::string& host) {
  WorkerDevice placed;
  if (jobs_per_gpu <= 0 || device_count <= 0) return placed;
  std::vector<std::string> visible = device_indices(device_count);
  if (const auto listed = parse_visible_devices(std::getenv("CUDA_VISIBLE_DEVICES"))) {
    // The runtime's count wins when the list names devices that do not exist.
    if (int(listed->size()) >= device_count)
      visible.assign(listed->begin(), listed->begin() + device_count);
  }
  const int index = worker_index_on_node(local_rank, rank0_local_rank >= 0, rank0_local_rank);
  placed.slot = device_slot(index, jobs_per_gpu, visible);
  placed.key = host + ":" + placed.slot.physical;
  placed.memory_bytes = cuda_device_memory(placed.slot.device);
  return placed;
}

int visible_cuda_devices() {
#ifdef MIL_HAVE_NCCL
  return NcclCommunicator::visible_devices();
#else
  return int(torch::cuda::device_count());
#endif
}

double cuda_device_memory(int device) {
#ifdef MIL_HAVE_NCCL
  return NcclCommunicator::device_memory_bytes(device);
#else
  (void)device;
  return 0;
#endif
}

}  // namespace mil::worker
