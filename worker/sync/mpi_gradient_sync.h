#pragma once
// GradientSync over MPI for CPU tensors, on a communicator of one job's ranks.
#include <mpi.h>

#include "mil/train/gradient_sync.h"

namespace mil::worker {

class MpiGradientSync final : public GradientSync {
 public:
  /// Duplicates `comm` (so the job's collectives never match another component's messages), with
  /// errors returned rather than fatal: a failed call aborts the group and throws MpiError.
  explicit MpiGradientSync(MPI_Comm comm);
  ~MpiGradientSync() override;
  MpiGradientSync(const MpiGradientSync&) = delete;
  MpiGradientSync& operator=(const MpiGradientSync&) = delete;

  std::string name() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allreduce_sum(std::vector<double>& values) override;
  void abort(int code) noexcept override;

 protected:
  void allreduce_sum_buffer(at::Tensor& flat) override;
  void broadcast_buffer(at::Tensor& flat) override;

 private:
  /// MIL_MPI_CHECK that first aborts the group, so peers blocked in the same collective do not
  /// hang.
  void check(int code, const char* what);

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int size_ = 1;
};

}  // namespace mil::worker
