#pragma once
// How many threads at::parallel_for really uses inside the mil library. ATen's parallel_for is a
// header template that runs serially in any translation unit compiled without OpenMP, so this is a
// property of how mil was built (MIL_OPENMP), not only of at::get_num_threads().
#include <cstdint>

namespace mil {

/// The number of distinct threads that ran chunks of an at::parallel_for over `tasks` items of
/// grain 1, compiled in mil: min(tasks, at::get_num_threads()) when mil is built with OpenMP, 1
/// otherwise.
int parallel_for_width(int64_t tasks);

}  // namespace mil
