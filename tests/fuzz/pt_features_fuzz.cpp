// Fuzz target: the .pt feature loader (decode_feature_bytes) on top of the torch.save reader. Its
// contract: an [N > 0, D] contiguous float32 tensor, or a FeatureFileError (which `mhim
// check-data` sorts by kind), never another exception.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "mil/data/feature_io.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  at::set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<char> bytes(data, data + size);
  try {
    const at::Tensor features = mil::decode_feature_bytes(bytes, "fuzz.pt");
    MIL_FUZZ_CHECK(features.dim() == 2 && features.size(0) > 0);
    MIL_FUZZ_CHECK(features.scalar_type() == at::kFloat && features.is_contiguous());
    const float* values = features.data_ptr<float>();
    float sum = 0;
    for (int64_t i = 0; i < features.numel(); ++i) sum += values[i];
    static volatile float sink;
    sink = sum;
  } catch (const mil::FeatureFileError&) {
  }
  return 0;
}
