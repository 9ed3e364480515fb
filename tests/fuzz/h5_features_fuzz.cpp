// Fuzz target: the CLAM/TRIDENT .h5 feature reader (read_h5_slide) on arbitrary file contents.
// HDF5 is an uninstrumented C library: its own bugs show up only as crashes, and its error stack
// is never printed (read_h5_slide turns printing off). Contract: a slide, or a FeatureFileError.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstddef>
#include <cstdint>

#include "mil/core/reader_limits.h"
#include "mil/data/feature_io.h"
#include "tests/fuzz/fuzz_support.h"

// HDF5 sizes some of its own metadata allocations from the file: a corrupt header made it ask
// malloc for 0x4200000000000058 bytes (tests/fuzz/regressions/h5_features/). Outside ASan, malloc
// returns NULL and HDF5 fails the open cleanly (a FeatureFileError here), which is what this harness
// checks; ASan would abort on the request instead. The environment's ASAN_OPTIONS still apply on top.
// Only this target: our own readers check sizes before they allocate, and there an oversized
// request must stay an error.
extern "C" const char* __asan_default_options() { return "allocator_may_return_null=1"; }

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  at::set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string path = mil::fuzz::write_scratch("slide.h5", mil::fuzz::as_text(data, size));
  try {
    const mil::H5Slide slide = mil::read_h5_slide(path);
    MIL_FUZZ_CHECK(slide.features.dim() == 2 && slide.features.size(0) > 0);
    MIL_FUZZ_CHECK(slide.features.scalar_type() == at::kFloat);
    MIL_FUZZ_CHECK(!slide.coords.defined() ||
                   (slide.coords.dim() == 2 && slide.coords.size(0) == slide.features.size(0) &&
                    slide.coords.size(1) == 2));
    // The decoded bytes are bounded by the file's size (kMaxH5ExpansionRatio).
    MIL_FUZZ_CHECK(std::uint64_t(slide.features.nbytes()) <=
                   mil::kMaxH5ExpansionRatio * std::uint64_t(size) + mil::kMaxH5ExpansionRatio);
  } catch (const mil::FeatureFileError&) {
  }
  return 0;
}
