// mhim pack: a dataset's feature folder, once, into one memory-mapped cache file.
#include <chrono>
#include <cstdio>
#include <filesystem>

#include "app/args.h"
#include "app/commands.h"
#include "app/dataset_args.h"
#include "mil/data/packed_cache.h"

namespace mil::app {
namespace {
constexpr const char* kHelp =
    R"(usage: mhim pack (--root DIR | --sweep FILE --dataset NAME) [options]

Packs every feature file of the dataset's pt_files/ (or h5_files/) folder, in name order, into one
file that loads by memory mapping: <root>/packed.milpack unless --out says otherwise. Set
"features": "packed" on the dataset to train from it. Slide ids are the file names without
extension, so label files and slide_match work as with the folder. The file is written under a
temporary name and renamed, so an interrupted pack leaves no half-written cache.

  --dtype f32|f16       f32 (default): bit-exact, and bags are zero-copy views of the mapping;
                        f16: half the disk and page cache, converted to f32 on load
  --out FILE            where to write (default <root>/packed.milpack)
  --verify              reopen the written cache and check every slide's SHA-256
  --features pt|h5|auto which folder to pack (default auto: pt_files/ if present, else h5_files/)

)";
}  // namespace

int cmd_pack(const Tokens& tokens) {
  if (!tokens.empty() && tokens[0] == "--help") {
    std::fputs(kHelp, stdout);
    std::fputs(kDatasetOptionsHelp, stdout);
    std::fputs("\nexample:\n  mhim pack --root data/camelyon-r50 --dtype f32 --verify\n", stdout);
    return 0;
  }
  DatasetSpec spec;
  std::string out;
  PackOptions options;
  try {
    std::vector<std::string> names = dataset_option_names();
    names.insert(names.end(), {"dtype", "out"});
    const Args args(tokens, names, {"verify"});
    if (!args.positional().empty())
      throw UsageError("unexpected argument '" + args.positional()[0] + "'");
    spec = dataset_from_args(args);
    if (spec.features == "packed")
      spec.features = "auto";  // a sweep's packed dataset: pack its folder
    if (spec.kind == "musk")
      throw UsageError("kind musk keeps its features in CSVs; there is nothing to pack");
    options.dtype = args.get("dtype", "f32");
    if (options.dtype != "f32" && options.dtype != "f16")
      throw UsageError("--dtype must be f32 or f16");
    options.verify = args.has("verify");
    out = args.get("out", (std::filesystem::path(spec.root) / kPackedCacheName).string());
  } catch (const UsageError& e) {
    return usage_failure("pack", e.what());
  }
  namespace fs = std::filesystem;
  const fs::path pt = fs::path(spec.root) / "pt_files", h5 = fs::path(spec.root) / "h5_files";
  const bool use_h5 = spec.features == "h5" ||
                      (spec.features == "auto" && !fs::is_directory(pt) && fs::is_directory(h5));
  const std::string folder = (use_h5 ? h5 : pt).string();
  const auto start = std::chrono::steady_clock::now();
  options.progress = [](std::size_t done, std::size_t total, const std::string&) {
    if (done % 50 == 0 || done == total)
      std::fprintf(stderr, "\rpacked %zu/%zu slides", done, total);
  };
  const PackSummary s = pack_feature_folder(folder, use_h5, out, options);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "\n");
  std::printf(
      "wrote %s: %zu slides, %lld instances, D=%d, %s, %.2f GB of features in %.2f GB; %.1f s "
      "(%.0f MB/s)%s\n",
      out.c_str(), s.slides, static_cast<long long>(s.instances), s.feature_dim,
      options.dtype.c_str(), double(s.payload_bytes) / 1e9, double(s.file_bytes) / 1e9, seconds,
      double(s.payload_bytes) / 1e6 / std::max(seconds, 1e-9),
      s.verified ? ", every slide verified" : "");
  return 0;
}

}  // namespace mil::app
