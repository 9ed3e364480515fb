// Fuzz target: the readers of instance-level truth and of a dataset folder's own description. The
// first byte picks the file (0: a .pt slide's instance_labels.csv sidecar, 1: an .h5 holding an
// `instance_labels` dataset, 2: dataset.json), the second the slide's instance count; the rest is
// the file. Contract: truth of exactly that many valid codes (or none), a DatasetSpec, or an
// exception.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>

#include "mil/data/dataset_folder.h"
#include "mil/data/instance_labels.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  at::set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const int kind = data[0] % 3;
  const int64_t instances = data[1];
  const std::string_view file = mil::fuzz::as_text(data + 2, size - 2);
  try {
    if (kind == 2) {
      mil::fuzz::write_scratch(mil::kDatasetDescriptionName, file);
      const mil::DatasetSpec spec = mil::dataset_of_folder(mil::fuzz::scratch_dir().string());
      MIL_FUZZ_CHECK(spec.root == mil::fuzz::scratch_dir().string());
      return 0;
    }
    std::string feature_path;
    if (kind == 0) {
      feature_path = (mil::fuzz::scratch_dir() / "slide.pt").string();
      mil::fuzz::write_scratch("slide.instance_labels.csv", file);
    } else {
      feature_path = mil::fuzz::write_scratch("slide.h5", file);
    }
    const at::Tensor codes = mil::read_instance_labels(feature_path, instances);
    if (!codes.defined()) return 0;
    MIL_FUZZ_CHECK(codes.dim() == 1 && codes.numel() == instances);
    MIL_FUZZ_CHECK(codes.scalar_type() == at::kByte);
    MIL_FUZZ_CHECK(codes.le(mil::kRoleAggressive).all().item<bool>());
  } catch (const std::exception&) {
  }
  return 0;
}
