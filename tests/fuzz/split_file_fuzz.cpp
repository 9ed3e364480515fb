// Fuzz target: split files, CLAM's splits_{k}.csv and the reference's fold_{k}.csv. The first byte
// picks the layout (even: CLAM, odd: reference); the rest is the file.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <filesystem>

#include "mil/data/split_protocol.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool clam = data[0] % 2 == 0;
  std::filesystem::remove(mil::fuzz::scratch_dir() / (clam ? "fold_0.csv" : "splits_0.csv"));
  mil::fuzz::write_scratch(clam ? "splits_0.csv" : "fold_0.csv",
                           mil::fuzz::as_text(data + 1, size - 1));
  try {
    const mil::SplitFile file = mil::read_split_file(mil::fuzz::scratch_dir().string(), 0);
    for (const auto& [id, part] : file.entries)
      MIL_FUZZ_CHECK(part == "train" || part == "val" || part == "test");
  } catch (const std::exception&) {
  }
  return 0;
}
