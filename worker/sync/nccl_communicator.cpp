#include "worker/sync/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace mil::worker {
namespace {

ncclDataType_t nccl_type(NcclDataType type) {
  switch (type) {
    case NcclDataType::kFloat32:
      return ncclFloat32;
    case NcclDataType::kFloat64:
      return ncclFloat64;
    case NcclDataType::kBFloat16:
      return ncclBfloat16;
    case NcclDataType::kFloat16:
      return ncclFloat16;
  }
  throw std::invalid_argument("unknown NcclDataType");
}

ncclComm_t as_comm(void* p) { return static_cast<ncclComm_t>(p); }
cudaStream_t as_stream(void* p) { return static_cast<cudaStream_t>(p); }

/// Throws for a failure outside any communicator (id creation, device selection).
void require_cuda(cudaError_t result, const char* what) {
  if (result != cudaSuccess)
    throw std::runtime_error(std::string(what) + " failed: " + cudaGetErrorString(result));
}

}  // namespace

NcclId NcclCommunicator::make_id() {
  ncclUniqueId id;
  const ncclResult_t result = ncclGetUniqueId(&id);
  if (result != ncclSuccess)
    throw std::runtime_error(std::string("ncclGetUniqueId failed: ") + ncclGetErrorString(result));
  NcclId out;
  static_assert(sizeof(id) == sizeof(out), "ncclUniqueId is 128 bytes");
  std::memcpy(out.data(), &id, sizeof id);
  return out;
}

int NcclCommunicator::visible_devices() noexcept {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" error
    return 0;
  }
  return count;
}

double NcclCommunicator::device_memory_bytes(int device) noexcept {
  cudaDeviceProp properties{};
  if (cudaGetDeviceProperties(&properties, device) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return double(properties.totalGlobalMem);
}

std::string NcclCommunicator::version() {
  int code = 0;
  if (ncclGetVersion(&code) != ncclSuccess) return "unknown";
  // Since 2.9 the code is major*10000 + minor*100 + patch.
  return std::to_string(code / 10000) + "." + std::to_string(code / 100 % 100) + "." +
         std::to_string(code % 100);
}

NcclCommunicator::NcclCommunicator(const NcclId& id, int rank, int size, int device)
    : rank_(rank), size_(size), device_(device) {
  if (size < 1 || rank < 0 || rank >= size) {
    throw std::invalid_argument("NcclCommunicator: rank " + std::to_string(rank) +
                                " is not in [0, " + std::to_string(size) + ")");
  }
  require_cuda(cudaSetDevice(device), ("cudaSetDevice(" + std::to_string(device) + ")").c_str());
  cudaStream_t stream = nullptr;
  require_cuda(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking),
               "cudaStreamCreateWithFlags");
  stream_ = stream;
  ncclUniqueId unique;
  std::memcpy(&unique, id.data(), sizeof unique);
  ncclComm_t comm = nullptr;
  const ncclResult_t result = ncclCommInitRank(&comm, size, unique, rank);
  if (result != ncclSuccess) {
    cudaStreamDestroy(stream);
    throw std::runtime_error("ncclCommInitRank(rank " + std::to_string(rank) + " of " +
                             std::to_string(size) + ", device " + std::to_string(device) +
                             ") failed: " + ncclGetErrorString(result));
  }
  comm_ = comm;
}

NcclCommunicator::~NcclCommunicator() {
  if (scratch_ != nullptr) cudaFree(scratch_);
  if (comm_ != nullptr) ncclCommDestroy(as_comm(comm_));
  if (stream_ != nullptr) cudaStreamDestroy(as_stream(stream_));
}

void NcclCommunicator::abort() noexcept {
  if (comm_ != nullptr) {
    ncclCommAbort(as_comm(comm_));
    comm_ = nullptr;
  }
}

void NcclCommunicator::check_nccl(int result, const char* what) {
  if (result == ncclSuccess) return;
  std::string message = std::string(what) + " failed on rank " + std::to_string(rank_) + " of " +
                        std::to_string(size_) + ": " +
                        ncclGetErrorString(static_cast<ncclResult_t>(result));
  if (comm_ != nullptr) {
    if (const char* last = ncclGetLastError(as_comm(comm_)); last != nullptr && *last != '\0')
      message += " (" + std::string(last) + ")";
  }
  std::fprintf(stderr, "gradient sync (nccl): %s; aborting the communicator\n", message.c_str());
  abort();
  throw std::runtime_error(message);
}

void NcclCommunicator::check_cuda(int result, const char* what) {
  if (result == cudaSuccess) return;
  const std::string message = std::string(what) + " failed on rank " + std::to_string(rank_) +
                              ": " + cudaGetErrorString(static_cast<cudaError_t>(result));
  abort();
  throw std::runtime_error(message);
}

void NcclCommunicator::allreduce_sum(void* device_buffer, std::size_t count, NcclDataType type) {
  if (comm_ == nullptr) throw std::runtime_error("NcclCommunicator: used after abort()");
  check_cuda(cudaSetDevice(device_), "cudaSetDevice");
  // The buffer may have been written on any stream (LibTorch's current one among them).
  check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize before ncclAllReduce");
  check_nccl(ncclAllReduce(device_buffer, device_buffer, count, nccl_type(type), ncclSum,
                           as_comm(comm_), as_stream(stream_)),
             "ncclAllReduce");
  check_cuda(cudaStreamSynchronize(as_stream(stream_)),
             "cudaStreamSynchronize after ncclAllReduce");
}

void NcclCommunicator::broadcast(void* device_buffer, std::size_t count, NcclDataType type,
                                 int root) {
  if (comm_ == nullptr) throw std::runtime_error("NcclCommunicator: used after abort()");
  check_cuda(cudaSetDevice(device_), "cudaSetDevice");
  check_cuda(cudaDeviceSynchronize(), "cudaDeviceSynchronize before ncclBroadcast");
  check_nccl(ncclBroadcast(device_buffer, device_buffer, count, nccl_type(type), root,
                           as_comm(comm_), as_stream(stream_)),
             "ncclBroadcast");
  check_cuda(cudaStreamSynchronize(as_stream(stream_)),
             "cudaStreamSynchronize after ncclBroadcast");
}

void NcclCommunicator::allreduce_sum_host(double* values, std::size_t count) {
  if (count == 0) return;
  check_cuda(cudaSetDevice(device_), "cudaSetDevice");
  if (scratch_count_ < count) {
    if (scratch_ != nullptr) cudaFree(scratch_);
    scratch_ = nullptr;
    void* p = nullptr;
    check_cuda(cudaMalloc(&p, count * sizeof(double)), "cudaMalloc(scratch)");
    scratch_ = static_cast<double*>(p);
    scratch_count_ = count;
  }
  check_cuda(cudaMemcpy(scratch_, values, count * sizeof(double), cudaMemcpyHostToDevice),
             "cudaMemcpy to device");
  allreduce_sum(scratch_, count, NcclDataType::kFloat64);
  check_cuda(cudaMemcpy(values, scratch_, count * sizeof(double), cudaMemcpyDeviceToHost),
             "cudaMemcpy to host");
}

}  // namespace mil::worker
