#pragma once
// Picks the data-parallel backend of a job at run time: NCCL (CUDA tensors, when built with NCCL
// and a GPU is visible) > MPI (CPU tensors, more than one rank) > local (one rank).
#include <functional>
#include <memory>
#include <string>

#include <c10/core/Device.h>
#include <mpi.h>

#include "mil/train/gradient_sync.h"

namespace mil::worker {

/// True when this build has the NCCL backend (MIL_WITH_NCCL found NCCL and the CUDA runtime).
bool nccl_built();

/// The backend for a job whose ranks form `job_comm` and whose model lives on `device`. The NCCL id
/// is made on the group's rank 0 and broadcast over `job_comm`. `log` gets one line naming the
/// choice and why. Throws when `device` is CUDA with several ranks and no NCCL (MPI reduces CPU
/// tensors only).
std::unique_ptr<GradientSync> make_gradient_sync(
    MPI_Comm job_comm, c10::Device device, const std::function<void(const std::string&)>& log);

}  // namespace mil::worker
