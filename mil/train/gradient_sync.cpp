#include "mil/train/gradient_sync.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>

namespace mil {
namespace {

/// Consecutive runs of `tensors` of one dtype and device, each at most `limit` bytes (a tensor
/// larger than the limit is a bucket of its own). Keeping the caller's order keeps every rank's
/// buckets equal.
std::vector<std::vector<at::Tensor>> buckets_of(const std::vector<at::Tensor>& tensors,
                                                std::size_t limit) {
  std::vector<std::vector<at::Tensor>> buckets;
  std::size_t bytes = 0;
  for (const at::Tensor& t : tensors) {
    const std::size_t size = std::size_t(t.numel()) * t.element_size();
    const bool fits = !buckets.empty() && bytes + size <= limit &&
                      buckets.back().front().scalar_type() == t.scalar_type() &&
                      buckets.back().front().device() == t.device();
    if (!fits) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(t);
    bytes += size;
  }
  return buckets;
}

at::Tensor flatten(const std::vector<at::Tensor>& bucket) {
  std::vector<at::Tensor> flat;
  flat.reserve(bucket.size());
  for (const at::Tensor& t : bucket) flat.push_back(t.reshape({-1}));
  return at::cat(flat);
}

void unflatten_into(const at::Tensor& flat, const std::vector<at::Tensor>& bucket) {
  int64_t offset = 0;
  for (const at::Tensor& t : bucket) {
    const int64_t n = t.numel();
    const_cast<at::Tensor&>(t).copy_(flat.narrow(0, offset, n).view(t.sizes()));
    offset += n;
  }
}

}  // namespace

at::Tensor& GradientSync::filled_bucket(std::size_t index, const std::vector<at::Tensor>& bucket) {
  int64_t total = 0;
  for (const at::Tensor& t : bucket) total += t.numel();
  if (bucket_buffers_.size() <= index) bucket_buffers_.resize(index + 1);
  at::Tensor& buffer = bucket_buffers_[index];
  const at::Tensor& first = bucket.front();
  if (!buffer.defined() || buffer.numel() != total || buffer.scalar_type() != first.scalar_type() ||
      buffer.device() != first.device()) {
    buffer = at::empty({total}, first.options());
  }
  int64_t offset = 0;
  for (const at::Tensor& t : bucket) {
    buffer.narrow(0, offset, t.numel()).copy_(t.reshape({-1}));
    offset += t.numel();
  }
  return buffer;
}

void GradientSync::broadcast_parameters(const std::vector<at::Tensor>& tensors) {
  if (size() == 1 || tensors.empty()) return;
  at::NoGradGuard no_grad;
  for (const auto& bucket : buckets_of(tensors, bucket_bytes_)) {
    at::Tensor flat = flatten(bucket);
    broadcast_buffer(flat);
    ++buffer_collectives_;
    unflatten_into(flat, bucket);
  }
}

void GradientSync::allreduce_gradients(const std::vector<at::Tensor>& parameters) {
  if (size() == 1) return;
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> grads;
  grads.reserve(parameters.size());
  for (const at::Tensor& p : parameters) {
    if (!p.requires_grad()) continue;
    if (!p.grad().defined()) const_cast<at::Tensor&>(p).mutable_grad() = at::zeros_like(p);
    grads.push_back(p.grad());
  }
  const auto buckets = buckets_of(grads, bucket_bytes_);
  for (std::size_t index = 0; index < buckets.size(); ++index) {
    const auto& bucket = buckets[index];
    at::Tensor& flat = filled_bucket(index, bucket);
    allreduce_sum_buffer(flat);
    ++buffer_collectives_;
    // Dividing by a power of two is exact, so 2 ranks give the same bits as one rank accumulating.
    flat.div_(double(size()));
    unflatten_into(flat, bucket);
  }
}

std::string agree_on_failure(GradientSync& sync, const std::string& own_error,
                             const std::string& during, bool* stop) {
  const auto ranks = static_cast<std::size_t>(sync.size());
  std::vector<double> flags(ranks + 1, 0.0);  // [stop, failed on rank 0, ..., failed on rank R-1]
  if (stop != nullptr && *stop) flags[0] = 1.0;
  if (!own_error.empty()) flags[1 + static_cast<std::size_t>(sync.rank())] = 1.0;
  sync.allreduce_sum(flags);
  if (stop != nullptr) *stop = flags[0] > 0.0;
  const auto first = std::find_if(flags.begin() + 1, flags.end(), [](double f) { return f > 0.0; });
  if (first == flags.end()) return "";
  const int failed_rank = static_cast<int>(first - flags.begin() - 1);
  std::vector<double> text(kSharedErrorChars, 0.0);
  if (failed_rank == sync.rank()) {
    for (std::size_t i = 0; i < std::min(kSharedErrorChars, own_error.size()); ++i) {
      text[i] = static_cast<unsigned char>(own_error[i]);
    }
  }
  sync.allreduce_sum(text);  // only failed_rank wrote: the sum is its text
  std::string error;
  for (double c : text) {
    if (c == 0.0) break;
    error += static_cast<char>(static_cast<unsigned char>(c));
  }
  return "rank " + std::to_string(failed_rank) + " of the job's " + std::to_string(ranks) +
         "-rank group failed " + during + ": " + error;
}

}  // namespace mil
