#include "mil/runtime/parallel_width.h"

#include <ATen/Parallel.h>
#include <gtest/gtest.h>

namespace {

/// Sets LibTorch's thread count for one test and restores it.
class ThreadCount {
 public:
  explicit ThreadCount(int threads) : saved_(at::get_num_threads()) {
    at::set_num_threads(threads);
  }
  ~ThreadCount() { at::set_num_threads(saved_); }

 private:
  int saved_;
};

TEST(ParallelWidth, MilsParallelLoopsUseEveryLibTorchThreadWhenBuiltWithOpenMP) {
  const ThreadCount two(2);
#ifdef MIL_BUILT_WITH_OPENMP
  EXPECT_EQ(mil::parallel_for_width(8), 2);
#else
  EXPECT_EQ(mil::parallel_for_width(8), 1);
#endif
}

TEST(ParallelWidth, OneThreadOrOneTaskRunsSerially) {
  {
    const ThreadCount one(1);
    EXPECT_EQ(mil::parallel_for_width(8), 1);
  }
  const ThreadCount two(2);
  EXPECT_EQ(mil::parallel_for_width(1), 1);
}

}  // namespace
