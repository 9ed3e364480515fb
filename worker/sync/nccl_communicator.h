#pragma once
// One NCCL communicator over raw device pointers. Needs only NCCL and the CUDA runtime (no
// LibTorch, no MPI), so it is compiled whenever they are found, also next to a CPU-only LibTorch;
// the id exchange between ranks is the caller's (gradient_sync_factory.h does it over MPI).
#include <array>
#include <cstddef>
#include <string>

namespace mil::worker {

/// ncclUniqueId's bytes, created on one rank and sent to the others.
using NcclId = std::array<char, 128>;

enum class NcclDataType { kFloat32, kFloat64, kBFloat16, kFloat16 };

class NcclCommunicator {
 public:
  /// A fresh id (ncclGetUniqueId); call on one rank only.
  static NcclId make_id();
  /// CUDA devices this process can use; 0 when there is no GPU or no driver (never throws).
  static int visible_devices() noexcept;
  /// Total memory of CUDA device `device` in bytes (cudaGetDeviceProperties); 0 when unknown.
  static double device_memory_bytes(int device) noexcept;
  /// "2.28.9": the NCCL library loaded at run time.
  static std::string version();

  /// Joins the communicator `id` as `rank` of `size` on CUDA device `device`. Blocks until every
  /// rank has joined. Throws naming NCCL's error.
  NcclCommunicator(const NcclId& id, int rank, int size, int device);
  ~NcclCommunicator();
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  /// Sums `count` elements at `device_buffer` over the ranks, in place, and returns when done.
  /// Waits for all work already queued on the device first, so buffers written by any stream are
  /// complete.
  void allreduce_sum(void* device_buffer, std::size_t count, NcclDataType type);
  /// Overwrites `count` elements at `device_buffer` with `root`'s, in place, and returns when done.
  void broadcast(void* device_buffer, std::size_t count, NcclDataType type, int root);
  /// Sums host doubles over the ranks (through a device scratch buffer).
  void allreduce_sum_host(double* values, std::size_t count);
  /// ncclCommAbort: peers blocked in a collective with this rank return an error instead of
  /// hanging.
  void abort() noexcept;

  int rank() const { return rank_; }
  int size() const { return size_; }
  int device() const { return device_; }

 private:
  /// Throws naming `what` and NCCL's error unless `result` is ncclSuccess; aborts the communicator
  /// first.
  void check_nccl(int result, const char* what);
  void check_cuda(int result, const char* what);

  void* comm_ = nullptr;    ///< ncclComm_t
  void* stream_ = nullptr;  ///< cudaStream_t of our collectives
  double* scratch_ = nullptr;
  std::size_t scratch_count_ = 0;
  int rank_ = 0;
  int size_ = 1;
  int device_ = 0;
};

}  // namespace mil::worker
