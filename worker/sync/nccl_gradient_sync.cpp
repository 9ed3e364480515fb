#include "worker/sync/nccl_gradient_sync.h"

#include <ATen/ATen.h>

namespace mil::worker {
namespace {

NcclDataType nccl_type_of(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return NcclDataType::kFloat32;
    case at::kDouble:
      return NcclDataType::kFloat64;
    case at::kBFloat16:
      return NcclDataType::kBFloat16;
    case at::kHalf:
      return NcclDataType::kFloat16;
    default:
      throw std::invalid_argument(std::string("NcclGradientSync: no NCCL type for ") +
                                  c10::toString(t.scalar_type()) + " tensors");
  }
}

void require_cuda_buffer(const at::Tensor& flat, int device, const char* what) {
  TORCH_CHECK(flat.is_cuda() && flat.is_contiguous() && flat.dim() == 1, "NcclGradientSync ", what,
              " contiguous 1-D CUDA buffers; got ", flat.device(), " ", flat.sizes(),
              " (CPU tensors need the MPI backend)");
  TORCH_CHECK(flat.device().index() == device, "NcclGradientSync: buffer on ", flat.device(),
              " but the communicator is on cuda:", device);
}

}  // namespace

NcclGradientSync::NcclGradientSync(std::unique_ptr<NcclCommunicator> communicator)
    : communicator_(std::move(communicator)) {
  TORCH_CHECK(communicator_ != nullptr, "NcclGradientSync needs a communicator");
}

void NcclGradientSync::allreduce_sum(std::vector<double>& values) {
  communicator_->allreduce_sum_host(values.data(), values.size());
}

void NcclGradientSync::allreduce_sum_buffer(at::Tensor& flat) {
  require_cuda_buffer(flat, communicator_->device(), "reduces");
  communicator_->allreduce_sum(flat.data_ptr(), std::size_t(flat.numel()), nccl_type_of(flat));
}

void NcclGradientSync::broadcast_buffer(at::Tensor& flat) {
  require_cuda_buffer(flat, communicator_->device(), "broadcasts");
  communicator_->broadcast(flat.data_ptr(), std::size_t(flat.numel()), nccl_type_of(flat), 0);
}

void NcclGradientSync::abort(int) noexcept { communicator_->abort(); }

}  // namespace mil::worker
