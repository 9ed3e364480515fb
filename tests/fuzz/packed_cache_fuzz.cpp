// Fuzz target: opening a packed cache (.milpack: header, index JSON, slide bounds) and reading
// every slide from it. The input is the file, except that the harness writes the index's correct
// SHA-256 and the file's length into the header (a mutated input would never match them, and what
// lies behind those checks is what needs fuzzing).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>

#include "mil/core/sha256.h"
#include "mil/data/packed_cache.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

std::uint64_t get_u64(const std::string& bytes, std::size_t at) {
  std::uint64_t value = 0;
  std::memcpy(&value, bytes.data() + at, sizeof value);
  return value;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  at::set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string bytes(mil::fuzz::as_text(data, size));
  if (bytes.size() >=
      128) {  // header: index offset at 32, index bytes at 40, hash at 48, length at 112
    const std::uint64_t offset = get_u64(bytes, 32), length = get_u64(bytes, 40);
    if (offset <= bytes.size() && length <= bytes.size() - offset) {
      const std::string hash = mil::sha256_hex(std::string_view(bytes).substr(offset, length));
      std::memcpy(bytes.data() + 48, hash.data(), 64);
    }
    const std::uint64_t file_bytes = bytes.size();
    std::memcpy(bytes.data() + 112, &file_bytes, sizeof file_bytes);
  }
  const std::string path = mil::fuzz::write_scratch("cache.milpack", bytes);
  try {
    const auto cache = mil::PackedCache::open(path);
    for (std::size_t i = 0; i < cache->slides().size(); ++i) {
      const mil::PackedSlide& s = cache->slides()[i];
      // What open() promises: every slide's bytes lie inside the mapped file.
      MIL_FUZZ_CHECK(s.offset <= cache->file_bytes() && s.bytes <= cache->file_bytes() - s.offset);
      MIL_FUZZ_CHECK(s.coords_offset == 0 ||
                     (s.coords_offset <= cache->file_bytes() &&
                      16 * std::uint64_t(s.instances) <= cache->file_bytes() - s.coords_offset));
      const at::Tensor features = cache->features(i);
      MIL_FUZZ_CHECK(features.dim() == 2 && features.size(0) == s.instances);
      MIL_FUZZ_CHECK(features.size(1) == cache->feature_dim());
      volatile float first = features.data_ptr<float>()[0];
      (void)first;
      const at::Tensor coords = cache->coords(i);
      MIL_FUZZ_CHECK(!coords.defined() || coords.size(0) == s.instances);
      try {
        cache->verify(i);
      } catch (const std::exception&) {
      }
    }
  } catch (const std::exception&) {
  }
  return 0;
}
