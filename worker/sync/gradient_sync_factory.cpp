#include "worker/sync/gradient_sync_factory.h"

#include "comm/mpi_env.h"
#include "worker/sync/mpi_gradient_sync.h"
#ifdef MIL_HAVE_NCCL
#include "worker/sync/nccl_gradient_sync.h"
#endif

namespace mil::worker {

bool nccl_built() {
#ifdef MIL_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

std::unique_ptr<GradientSync> make_gradient_sync(
    MPI_Comm job_comm, c10::Device device, const std::function<void(const std::string&)>& log) {
  const auto say = [&log](const std::string& line) {
    if (log) log(line);
  };
  int rank = 0, size = 1;
  MIL_MPI_CHECK(MPI_Comm_rank(job_comm, &rank));
  MIL_MPI_CHECK(MPI_Comm_size(job_comm, &size));
  if (device.is_cuda()) {
#ifdef MIL_HAVE_NCCL
    NcclId id{};
    if (rank == 0) id = NcclCommunicator::make_id();
    MIL_MPI_CHECK(MPI_Bcast(id.data(), int(id.size()), MPI_BYTE, 0, job_comm));
    const int index = device.has_index() ? device.index() : 0;
    auto sync = std::make_unique<NcclGradientSync>(
        std::make_unique<NcclCommunicator>(id, rank, size, index));
    say("gradient sync: nccl " + NcclCommunicator::version() + ", " + std::to_string(size) +
        " rank(s), cuda:" + std::to_string(index));
    return sync;
#else
    if (size > 1) {
      throw std::runtime_error(
          "data-parallel training on CUDA needs the NCCL backend, and this build has none "
          "(configure with NCCL and the CUDA toolkit present, -DMIL_WITH_NCCL=ON)");
    }
#endif
  }
  if (size > 1) {
    say("gradient sync: mpi, " + std::to_string(size) + " ranks (CPU tensors)");
    return std::make_unique<MpiGradientSync>(job_comm);
  }
  say("gradient sync: local (one rank)");
  return std::make_unique<LocalGradientSync>();
}

}  // namespace mil::worker
