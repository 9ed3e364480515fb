// Fuzz target: the torch.save reader as a whole (our zip reader, the unpickler with its allow-list,
// storage records and tensor views), on arbitrary bytes.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <vector>

#include "mil/core/reader_limits.h"
#include "mil/data/torch_pickle.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

/// Walks the result and reads every byte of every tensor here, in instrumented code, so that a
/// tensor whose size claims more than its memory holds is an ASan report.
void touch(const c10::IValue& value, int depth) {
  MIL_FUZZ_CHECK(depth <= mil::kMaxPickleDepth + 1);
  if (value.isTensor()) {
    const at::Tensor t = value.toTensor().contiguous();
    MIL_FUZZ_CHECK(std::uint64_t(t.numel()) <= mil::kMaxTensorElements);
    const auto* bytes = static_cast<const unsigned char*>(t.data_ptr());
    unsigned char sum = 0;
    for (std::size_t i = 0; i < t.nbytes(); ++i) sum ^= bytes[i];
    static volatile unsigned char sink;
    sink = sum;
  } else if (value.isList()) {
    for (const c10::IValue& e : value.toListRef()) touch(e, depth + 1);
  } else if (value.isTuple()) {
    for (const c10::IValue& e : value.toTupleRef().elements()) touch(e, depth + 1);
  } else if (value.isGenericDict()) {
    for (const auto& entry : value.toGenericDict()) {
      touch(entry.key(), depth + 1);
      touch(entry.value(), depth + 1);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  at::set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::vector<char> bytes(data, data + size);
  try {
    touch(mil::load_torch_save_bytes(bytes), 0);
  } catch (const std::exception&) {
    // A refusal is the expected answer to most inputs.
  }
  return 0;
}
