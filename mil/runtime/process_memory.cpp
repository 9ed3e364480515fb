#include "mil/runtime/process_memory.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>

namespace mil {

std::string keep_freed_buffers_for_reuse() {
#if defined(__GLIBC__)
  const char* switch_value = std::getenv("MIL_MALLOC_TUNING");
  if (switch_value != nullptr && std::strcmp(switch_value, "0") == 0)
    return "glibc malloc defaults (MIL_MALLOC_TUNING=0)";
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables != nullptr && std::strstr(tunables, "glibc.malloc.") != nullptr) {
    return "glibc malloc settings from GLIBC_TUNABLES";
  }
  // 32 MiB is glibc's largest accepted mmap threshold on 64-bit (HEAP_MAX_SIZE / 2); a trim
  // threshold of 1 GiB keeps a bag's worth of freed buffers at the top of the heap between steps.
  constexpr int kMmapThresholdBytes = 32 << 20;
  constexpr int kTrimThresholdBytes = 1 << 30;
  const bool ok = mallopt(M_MMAP_THRESHOLD, kMmapThresholdBytes) == 1 &&
                  mallopt(M_TRIM_THRESHOLD, kTrimThresholdBytes) == 1;
  return ok ? "malloc keeps freed buffers up to 32 MiB for reuse"
            : "malloc tuning refused by glibc; defaults kept";
#else
  return "allocator defaults (not glibc)";
#endif
}

std::string keep_compiled_kernels_for_reuse() {
  for (const char* name : {"ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY"}) {
    if (const char* value = std::getenv(name))
      return std::string("oneDNN primitive cache from ") + name + "=" + value;
  }
  ::setenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16384", /*overwrite=*/0);
  return "oneDNN primitive cache of 16384 shapes";
}

}  // namespace mil
