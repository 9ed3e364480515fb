#pragma once
// A dataset's per-slide feature files packed once into one memory-mapped file (a ".milpack"), so
// that loading a slide costs a pointer and a length instead of an open, a read and a pickle parse,
// and the OS page cache (shared by every process on the node) is the only cache.
//
// Layout, little-endian; every block starts at a multiple of 64 bytes:
//   [0, 128)     header: magic "MILPACK\0", u32 version (1), u32 dtype (1 = f16, 2 = f32), u64 D,
//                u64 slide count, u64 index offset, u64 index bytes, SHA-256 of the index bytes
//                (64 hex characters), u64 file bytes, zero padding.
//   index        JSON, space-padded, right after the header (so a truncated file still names the
//                slides it lost): {"format": "milpack", "version", "dtype", "feature_dim",
//                "source", "slides": [{"id", "instances", "offset", "bytes", "sha256",
//                "source_file", "source_sha256", optional "coords_offset"}]}.
//   payload      per slide: features [N, D] row-major (f16 or f32), then, for .h5 sources, coords
//                [N, 2] int64. "sha256" covers the features bytes; "source_sha256" the source file.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

namespace mil {

/// File name of a dataset's cache: features "packed" reads <root>/packed.milpack.
constexpr const char* kPackedCacheName = "packed.milpack";

/// One slide in a cache's index.
struct PackedSlide {
  std::string id;                   ///< Slide id: the source file's name without extension.
  int64_t instances = 0;            ///< N.
  std::uint64_t offset = 0;         ///< Byte offset of the features [N, D].
  std::uint64_t bytes = 0;          ///< N * D * element size.
  std::string sha256;               ///< SHA-256 of those bytes.
  std::string source_file;          ///< File it was packed from, e.g. "slide_0001.pt".
  std::string source_sha256;        ///< SHA-256 of that file, as unpacked loads hash it.
  std::uint64_t coords_offset = 0;  ///< Byte offset of int64 coords [N, 2]; 0 = none (.pt sources).
};

/// How `mhim pack` writes a cache.
struct PackOptions {
  std::string dtype = "f32";  ///< "f32": bit-exact, loads are zero-copy views; "f16": half the
                              ///< bytes, converted on load.
  bool verify =
      false;  ///< Reopen the written file and check every slide's SHA-256 against the index.
  /// Called after each slide; may be empty.
  std::function<void(std::size_t done, std::size_t total, const std::string& slide)> progress;
};

/// What pack_feature_folder wrote.
struct PackSummary {
  std::size_t slides = 0;
  int64_t instances = 0;
  int feature_dim = 0;
  std::uint64_t payload_bytes = 0;  ///< Feature bytes (without coords and padding).
  std::uint64_t file_bytes = 0;
  bool verified = false;  ///< Every slide's hash was checked after writing.
};

/// Packs every `*.pt` (or, with `h5`, `*.h5`) file of `directory`, in name order, into `out`:
/// written under a temporary name beside it, synced, then renamed, so `out` is never half-written.
/// Refuses mixed feature dims, empty bags and non-finite values (or values beyond float16's range
/// for "f16"), naming the file.
PackSummary pack_feature_folder(const std::string& directory, bool h5, const std::string& out,
                                const PackOptions& options = {});

/// A packed cache mapped into memory. Opening checks the header, the index hash, every slide's
/// bounds and the file length; errors name the file and, where one is to blame, the slide.
class PackedCache {
 public:
  /// Maps `path` (private, read-mostly: a write to a view copies that page, never the file).
  static std::shared_ptr<const PackedCache> open(const std::string& path);

  const std::string& path() const { return path_; }
  const std::string& dtype() const { return dtype_; }  ///< "f16" or "f32".
  int feature_dim() const { return feature_dim_; }
  const std::vector<PackedSlide>& slides() const { return slides_; }
  const nlohmann::json& source() const { return source_; }  ///< What was packed: directory, kind.
  std::string index_sha256() const { return index_sha256_; }
  std::uint64_t file_bytes() const;

  /// Position of slide `id` in slides(), or -1.
  int find(const std::string& id) const;
  /// Features of slide `i` as float32 [N, D]: for f32 a zero-copy view that keeps the mapping alive
  /// after the cache object is gone; for f16 a converted copy.
  at::Tensor features(std::size_t i) const;
  /// Coords [N, 2] int64 of slide `i` (zero-copy), or an undefined tensor.
  at::Tensor coords(std::size_t i) const;
  /// The stored features bytes of slide `i`.
  const std::uint8_t* raw(std::size_t i) const;
  /// Recomputes slide `i`'s SHA-256; throws naming the file and the slide when it differs.
  void verify(std::size_t i) const;

 private:
  struct Mapping;
  PackedCache() = default;
  std::string path_;
  std::string dtype_;
  int feature_dim_ = 0;
  std::vector<PackedSlide> slides_;
  nlohmann::json source_;
  std::string index_sha256_;
  std::shared_ptr<Mapping> mapping_;
};

}  // namespace mil
