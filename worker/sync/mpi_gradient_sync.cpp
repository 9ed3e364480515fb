#include "worker/sync/mpi_gradient_sync.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <climits>
#include <cstdio>

#include "comm/mpi_env.h"

namespace mil::worker {
namespace {

MPI_Datatype mpi_type_of(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return MPI_FLOAT;
    case at::kDouble:
      return MPI_DOUBLE;
    case at::kLong:
      return MPI_INT64_T;
    case at::kInt:
      return MPI_INT32_T;
    default:
      throw std::invalid_argument(std::string("MpiGradientSync: no MPI type for ") +
                                  c10::toString(t.scalar_type()) +
                                  " tensors (bf16/fp16 gradients: keep fp32 master weights)");
  }
}

/// Runs `op(offset, count)` over [0, n) in pieces that fit MPI's int counts.
template <typename Op>
void in_int_pieces(int64_t n, Op op) {
  constexpr int64_t kPiece = INT_MAX / 2;
  for (int64_t offset = 0; offset < n; offset += kPiece)
    op(offset, int(std::min(kPiece, n - offset)));
}

}  // namespace

MpiGradientSync::MpiGradientSync(MPI_Comm comm) {
  MIL_MPI_CHECK(MPI_Comm_dup(comm, &comm_));
  MIL_MPI_CHECK(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN));
  MIL_MPI_CHECK(MPI_Comm_rank(comm_, &rank_));
  MIL_MPI_CHECK(MPI_Comm_size(comm_, &size_));
}

MpiGradientSync::~MpiGradientSync() {
  if (comm_ != MPI_COMM_NULL) MPI_Comm_free(&comm_);
}

void MpiGradientSync::check(int code, const char* what) {
  if (code == MPI_SUCCESS) return;
  try {
    comm::mpi_check(code, what, __FILE__, __LINE__);
  } catch (const comm::MpiError& e) {
    std::fprintf(stderr, "gradient sync (mpi, rank %d of %d): %s; aborting the group\n", rank_,
                 size_, e.what());
    abort(3);
    throw;
  }
}

void MpiGradientSync::allreduce_sum(std::vector<double>& values) {
  in_int_pieces(int64_t(values.size()), [&](int64_t offset, int count) {
    check(MPI_Allreduce(MPI_IN_PLACE, values.data() + offset, count, MPI_DOUBLE, MPI_SUM, comm_),
          "MPI_Allreduce(doubles)");
  });
}

void MpiGradientSync::allreduce_sum_buffer(at::Tensor& flat) {
  TORCH_CHECK(flat.is_cpu() && flat.is_contiguous() && flat.dim() == 1,
              "MpiGradientSync reduces contiguous 1-D CPU buffers; got ", flat.device(), " ",
              flat.sizes(), " (CUDA tensors need the NCCL backend)");
  const MPI_Datatype type = mpi_type_of(flat);
  auto* base = static_cast<char*>(flat.data_ptr());
  const auto element = int64_t(flat.element_size());
  in_int_pieces(flat.numel(), [&](int64_t offset, int count) {
    check(MPI_Allreduce(MPI_IN_PLACE, base + offset * element, count, type, MPI_SUM, comm_),
          "MPI_Allreduce(gradients)");
  });
}

void MpiGradientSync::broadcast_buffer(at::Tensor& flat) {
  TORCH_CHECK(flat.is_cpu() && flat.is_contiguous() && flat.dim() == 1,
              "MpiGradientSync broadcasts contiguous 1-D CPU buffers; got ", flat.device(), " ",
              flat.sizes());
  const MPI_Datatype type = mpi_type_of(flat);
  auto* base = static_cast<char*>(flat.data_ptr());
  const auto element = int64_t(flat.element_size());
  in_int_pieces(flat.numel(), [&](int64_t offset, int count) {
    check(MPI_Bcast(base + offset * element, count, type, 0, comm_), "MPI_Bcast(parameters)");
  });
}

void MpiGradientSync::abort(int code) noexcept {
  // Open MPI has no fault-tolerant shrink: aborting the group's communicator ends the whole job,
  // which is what a peer waiting in a collective needs.
  MPI_Abort(comm_ == MPI_COMM_NULL ? MPI_COMM_WORLD : comm_, code);
}

}  // namespace mil::worker
