// gtest main for suites that run LibTorch. It fixes the intra-op thread count before any test runs:
// OpenBLAS picks different GEMM kernels for different thread counts, so results are
// bit-reproducible only at a fixed count, and LibTorch otherwise changes the count lazily on its
// first parallel op.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  at::set_num_threads(1);
  return RUN_ALL_TESTS();
}
