#pragma once
// How big a patch of an .h5 feature file is on the slide, and how big the slide is, from the
// attributes that CLAM and TRIDENT write on the `coords` dataset (or the file): CLAM records
// `patch_size` at `patch_level` with that level's `downsample` (and `level_dim`); TRIDENT records
// `patch_size_level0` directly. Coordinates are level-0 pixels in both.
#include <cstdint>
#include <string>

namespace mil {

/// The attributes as found; 0 / false where absent.
struct PatchGeometry {
  int64_t patch_size = 0;         ///< `patch_size`, in pixels of `patch_level`.
  int64_t patch_level = 0;        ///< `patch_level` (0 when absent).
  bool has_patch_level = false;   ///< The file names its patch level.
  double downsample = 0;          ///< Level-0 pixels per patch-level pixel (`downsample`, x).
  int64_t patch_size_level0 = 0;  ///< `patch_size_level0` (TRIDENT).
  int64_t level_width = 0, level_height = 0;  ///< `level_dim`: the slide at the patch level.
};

/// Reads the geometry attributes of `path` (.h5); throws FeatureFileError naming the file when it
/// cannot be read.
PatchGeometry read_patch_geometry(const std::string& path);

/// The side of a patch in level-0 pixels: `patch_size_level0`, else `patch_size` x `downsample`
/// (x 1 at level 0). Throws std::runtime_error naming the file and what is missing when the
/// attributes do not say (e.g. patch_level 1 without a downsample): pass the size explicitly then.
int64_t level0_patch_size(const PatchGeometry& geometry, const std::string& path);

}  // namespace mil
