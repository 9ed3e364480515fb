// Fuzz target: the state_dict loader (read_state_dict, read_state_dict_part, load_state_dict into a
// module) on arbitrary file contents.
#include <ATen/Parallel.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <cstddef>
#include <cstdint>
#include <exception>

#include "mil/models/state_dict.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  at::set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The shape of tests/fixtures/state_dict/plain.pt, so its keys match and the copy runs.
  static torch::nn::Sequential model(torch::nn::Linear(3, 2),
                                     torch::nn::LayerNorm(torch::nn::LayerNormOptions({2})));
  const std::string path = mil::fuzz::write_scratch("state.pt", mil::fuzz::as_text(data, size));
  try {
    const mil::StateDict state = mil::read_state_dict(path);
    for (const auto& [name, tensor] : state) MIL_FUZZ_CHECK(tensor.defined());
    mil::load_state_dict(*model, state, /*strict=*/false);
  } catch (const std::exception&) {
  }
  try {
    mil::read_state_dict_part(path, "teacher");
  } catch (const std::exception&) {
  }
  return 0;
}
