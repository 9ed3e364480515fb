#pragma once
// The GPU a worker rank of a sweep trains on when `mhim sweep --jobs-per-gpu K` packs K worker
// ranks per GPU (mil/core/device_slots.h maps ranks to devices; this file asks the CUDA runtime how
// many devices there are and how much memory each has). Rank 0 learns each worker's device from
// its job requests (protocol.h) and keeps jobs that would not fit in its memory waiting
// (orchestrator/schedule/device_memory.h).
#include <string>

#include "mil/core/device_slots.h"

namespace mil::worker {

/// Where one worker rank runs its jobs.
struct WorkerDevice {
  DeviceSlot slot;  ///< Its device (-1: the CPU).
  std::string key;  ///< "<host>:<physical id>": the device's name across the sweep; "" on CPU.
  double memory_bytes = 0;  ///< The device's memory; 0 = unknown.
};

/// The device of the worker at `local_rank` on a node whose orchestrator (world rank 0) has local
/// rank `rank0_local_rank` (-1: elsewhere), with `jobs_per_gpu` workers per GPU. `device_count`
/// is what the CUDA runtime sees; CUDA_VISIBLE_DEVICES (from the environment) names them.
/// jobs_per_gpu <= 0 or no device: the CPU.
WorkerDevice place_worker(int local_rank, int rank0_local_rank, int jobs_per_gpu, int device_count,
                          const std::string& host);

/// CUDA devices this process sees (0 without a GPU, a driver or NCCL's CUDA runtime in the build).
int visible_cuda_devices();

/// Memory of CUDA device `device` in bytes; 0 when unknown.
double cuda_device_memory(int device);

}  // namespace mil::worker
