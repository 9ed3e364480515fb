#pragma once
// Measures how many bytes of CPU tensor memory a piece of code needs at its peak, exactly (no
// malloc slack, no other processes), by listening to LibTorch's CPU allocator.
#include <cstdint>
#include <memory>

namespace c10 {
class DebugInfoGuard;
}

namespace mil {

/// While alive, counts the bytes LibTorch's default CPU allocator hands out and takes back for
/// tensors allocated on this thread and on the threads that inherit its state (autograd's backward
/// pass). Tensors that existed before construction are not counted, also when they are freed.
/// Allocations made inside intra-op worker threads and by BLAS itself are not seen. Not copyable;
/// one meter per thread at a time.
class AllocationMeter {
 public:
  AllocationMeter();
  ~AllocationMeter();
  AllocationMeter(const AllocationMeter&) = delete;
  AllocationMeter& operator=(const AllocationMeter&) = delete;

  /// Largest number of counted bytes alive at once since construction.
  int64_t peak_bytes() const;
  /// Counted bytes alive now.
  int64_t current_bytes() const;

 private:
  struct Listener;
  std::shared_ptr<Listener> listener_;
  std::unique_ptr<c10::DebugInfoGuard> guard_;
};

}  // namespace mil
