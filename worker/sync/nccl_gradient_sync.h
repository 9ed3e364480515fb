#pragma once
// GradientSync over NCCL for CUDA tensors. Uses LibTorch only for tensor metadata and data
// pointers, so it builds against a CPU-only LibTorch too (where no tensor can be on CUDA and it is
// never chosen).
#include <memory>

#include "mil/train/gradient_sync.h"
#include "worker/sync/nccl_communicator.h"

namespace mil::worker {

class NcclGradientSync final : public GradientSync {
 public:
  explicit NcclGradientSync(std::unique_ptr<NcclCommunicator> communicator);

  std::string name() const override { return "nccl"; }
  int rank() const override { return communicator_->rank(); }
  int size() const override { return communicator_->size(); }
  void allreduce_sum(std::vector<double>& values) override;
  void abort(int code) noexcept override;

 protected:
  void allreduce_sum_buffer(at::Tensor& flat) override;
  void broadcast_buffer(at::Tensor& flat) override;

 private:
  std::unique_ptr<NcclCommunicator> communicator_;
};

}  // namespace mil::worker
