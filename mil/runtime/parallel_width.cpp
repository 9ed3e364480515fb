#include "mil/runtime/parallel_width.h"

#include <ATen/Parallel.h>

#include <mutex>
#include <set>

namespace mil {

int parallel_for_width(int64_t tasks) {
  std::mutex mutex;
  std::set<int> threads;
  at::parallel_for(0, tasks, 1, [&](int64_t, int64_t) {
    const std::lock_guard<std::mutex> lock(mutex);
    threads.insert(at::get_thread_num());
  });
  return static_cast<int>(threads.size());
}

}  // namespace mil
