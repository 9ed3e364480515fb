#include "mil/runtime/allocation_meter.h"

#include <algorithm>
#include <atomic>

#include <c10/core/Allocator.h>
#include <c10/util/ThreadLocalDebugInfo.h>

namespace mil {

/// The allocator reports every allocation and free here while memory profiling is "enabled".
struct AllocationMeter::Listener : c10::MemoryReportingInfoBase {
  std::atomic<int64_t> current{0};
  std::atomic<int64_t> peak{0};

  // LibTorch 1.13 passes the totals as int64_t, 2.x as size_t: one of these overrides, whichever
  // matches this LibTorch (no `override`, so the other is a harmless overload).
  void reportMemoryUsage(void* /*ptr*/, int64_t alloc_size, int64_t /*total_allocated*/,
                         int64_t /*total_reserved*/, c10::Device /*device*/) {
    record(alloc_size);
  }
  void reportMemoryUsage(void* /*ptr*/, int64_t alloc_size, size_t /*total_allocated*/,
                         size_t /*total_reserved*/, c10::Device /*device*/) {
    record(alloc_size);
  }
  void record(int64_t alloc_size) {
    const int64_t now = current.fetch_add(alloc_size) + alloc_size;
    int64_t seen = peak.load();
    while (now > seen && !peak.compare_exchange_weak(seen, now)) {
    }
  }
  bool memoryProfilingEnabled() const override { return true; }
};

AllocationMeter::AllocationMeter()
    : listener_(std::make_shared<Listener>()),
      guard_(std::make_unique<c10::DebugInfoGuard>(c10::DebugInfoKind::PROFILER_STATE, listener_)) {
}

AllocationMeter::~AllocationMeter() = default;

int64_t AllocationMeter::peak_bytes() const { return listener_->peak.load(); }

int64_t AllocationMeter::current_bytes() const { return listener_->current.load(); }

}  // namespace mil
