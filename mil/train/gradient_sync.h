#pragma once
// What data-parallel training needs from a communication backend, and nothing more. mil sees only
// this interface (no MPI or NCCL here); worker/ implements it over MPI for CPU tensors and over
// NCCL for CUDA tensors, and picks one at run time.
//
// Contract for every collective: all ranks of the group call it in the same order with tensors of
// the same shapes, dtypes and order. A backend that fails aborts its communicator (so peers fail
// instead of waiting forever) and throws.
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace mil {

class GradientSync {
 public:
  virtual ~GradientSync() = default;

  /// Backend name for logs and results: "local", "mpi", "nccl".
  virtual std::string name() const = 0;
  /// This rank's index in the job's group, in [0, size()).
  virtual int rank() const = 0;
  /// Ranks in the job's group.
  virtual int size() const = 0;

  /// Overwrites every tensor with rank 0's values, in place (initial weights, a teacher).
  void broadcast_parameters(const std::vector<at::Tensor>& tensors);
  /// Replaces the gradient of every parameter by its mean over the ranks, in place. Gradients are
  /// flattened into buckets of at most bucket_bytes() (per dtype and device), one collective per
  /// bucket. A parameter without a gradient on this rank (it saw no bag) counts as zeros and gets
  /// one.
  void allreduce_gradients(const std::vector<at::Tensor>& parameters);
  /// Sums `values` over the ranks in place (loss sums, counts, validation predictions).
  virtual void allreduce_sum(std::vector<double>& values) = 0;
  /// Tears the group down so that peers blocked in a collective fail instead of hanging; for a rank
  /// that cannot continue. Never throws; may not return (MPI_Abort).
  virtual void abort(int code) noexcept = 0;

  /// Upper bound of one bucket (default 25 MiB, as PyTorch's DDP).
  std::size_t bucket_bytes() const { return bucket_bytes_; }
  void set_bucket_bytes(std::size_t bytes) { bucket_bytes_ = bytes == 0 ? 1 : bytes; }
  /// Collectives issued on buffers so far (buckets of gradients and of broadcasts).
  std::size_t buffer_collectives() const { return buffer_collectives_; }

 protected:
  /// Sums a contiguous 1-D buffer over the ranks, in place.
  virtual void allreduce_sum_buffer(at::Tensor& flat) = 0;
  /// Overwrites a contiguous 1-D buffer with rank 0's, in place.
  virtual void broadcast_buffer(at::Tensor& flat) = 0;

 private:
  /// The persistent flat buffer of gradient bucket `index`, holding copies of `bucket`'s tensors.
  /// Reused step after step (as DDP's buckets): MPI moved fresh 4-64 MB allocations at ~0.3 GB/s
  /// here against ~5 GB/s for reused ones (registration and first-touch costs).
  at::Tensor& filled_bucket(std::size_t index, const std::vector<at::Tensor>& bucket);

  std::vector<at::Tensor> bucket_buffers_;
  std::size_t bucket_bytes_ = std::size_t{25} << 20;
  std::size_t buffer_collectives_ = 0;
};

/// Thrown on every rank of a group once the group has agreed (agree_on_failure) that one of its
/// ranks failed. No peer is left waiting in a collective, so nothing needs aborting: each rank just
/// reports the job failed with this text, which is the same on every rank.
class GroupFailure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Collective over the group: each rank says whether it failed (`own_error` non-empty) and, through
/// `stop` when given, whether it wants to stop. Returns "" when no rank failed, else the error of
/// the lowest failed rank as "rank K of the job's R-rank group failed DURING: ERROR" (ERROR cut to
/// its first kSharedErrorChars characters), the same text on every rank; `*stop` becomes true on
/// every rank when it was on any. One sum of R + 1 doubles, and one more of kSharedErrorChars when
/// a rank failed. A rank whose work between two collectives can fail (a forward pass, a file write)
/// catches the failure and brings it here instead of throwing, so its peers learn of it instead of
/// waiting forever.
std::string agree_on_failure(GradientSync& sync, const std::string& own_error,
                             const std::string& during, bool* stop = nullptr);
constexpr std::size_t kSharedErrorChars = 2000;

/// One rank, nothing to exchange: every collective is the identity.
class LocalGradientSync final : public GradientSync {
 public:
  std::string name() const override { return "local"; }
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce_sum(std::vector<double>&) override {}
  void abort(int) noexcept override {}

 protected:
  void allreduce_sum_buffer(at::Tensor&) override {}
  void broadcast_buffer(at::Tensor&) override {}
};

}  // namespace mil
