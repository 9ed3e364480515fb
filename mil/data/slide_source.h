#pragma once
// Where a dataset's per-slide features come from: a folder of .pt files, a folder of CLAM/TRIDENT
// .h5 files, or a packed cache (mil/data/packed_cache.h). Loaders and `mhim check-data` read slides
// through it.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "mil/core/specs.h"
#include "mil/data/data_problem.h"
#include "mil/data/label_csv.h"

namespace mil {

class PackedCache;

/// One slide as read from its source.
struct SlideData {
  at::Tensor features;      ///< [N, D] float32, contiguous.
  at::Tensor coords;        ///< [N, 2] int64 (.h5 and packed .h5 sources), else undefined.
  std::uint64_t bytes = 0;  ///< Bytes the source holds for it (file size, or packed feature bytes).
  std::string
      sha256;  ///< SHA-256 of the file, or (packed) of the stored bytes as the index records it.
  std::string
      source_sha256;  ///< SHA-256 of the original file (packed: from the index; else = sha256).
  /// [N] uint8 instance truth (mil/data/instance_labels.h) from the .h5 or the .pt's sidecar;
  /// undefined when the slide has none (and for packed caches, which do not carry it).
  at::Tensor instance_labels;
  std::string instance_labels_sha256;  ///< SHA-256 of a .pt's sidecar; empty otherwise.
};

/// A dataset's feature store, chosen by DatasetSpec::features.
class SlideSource {
 public:
  /// "pt": <root>/pt_files; "h5": <root>/h5_files; "auto": pt_files/ when it exists, else
  /// h5_files/; "packed": <root>/packed.milpack, opened (and checked) now.
  static SlideSource for_dataset(const DatasetSpec& spec);

  const std::string& kind() const { return kind_; }          ///< "pt", "h5" or "packed".
  const std::string& location() const { return location_; }  ///< The folder, or the cache file.
  /// Path of a slide's file, or "<cache>:<slide>" for a packed cache (for messages).
  std::string path_of(const std::string& slide) const;
  bool contains(const std::string& slide) const;
  /// Every slide id the source holds, sorted.
  std::vector<std::string> slide_ids() const;
  /// Reads one slide; throws FeatureFileError (unreadable, empty) or std::runtime_error naming the
  /// file.
  SlideData read(const std::string& slide) const;
  /// True when read() returns views into a mapped file rather than memory of its own (f32 caches).
  bool zero_copy() const;
  /// The packed cache, or null.
  const PackedCache* cache() const { return cache_.get(); }

 private:
  std::string kind_;
  std::string location_;
  std::shared_ptr<const PackedCache> cache_;
};

/// A label row and one slide it names.
struct SlideOfRow {
  const LabelRow* row;
  std::string slide;
};

/// The slides of each row: its id ("exact") or every slide whose id contains it ("substring", the
/// reference's lookup for case ids). Rows without a slide go to `missing` ("path (file:line)"). A
/// slide named by two rows, or a case with two labels, is reported through `log` (null: thrown).
std::vector<SlideOfRow> match_slides(const std::vector<LabelRow>& rows,
                                     const std::string& slide_match, const SlideSource& source,
                                     std::vector<std::string>& missing, ProblemLog* log = nullptr);

}  // namespace mil
