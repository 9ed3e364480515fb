#include "mil/data/patch_geometry.h"

#ifdef MIL_HAVE_HDF5
#include <H5Cpp.h>
#endif

#include <cmath>
#include <stdexcept>
#include <vector>

#include "mil/core/fatal_signal_context.h"
#include "mil/data/feature_io.h"

namespace mil {

#ifdef MIL_HAVE_HDF5
namespace {

/// Most values read from one patch attribute: the geometry needs at most two (level_dim), and
/// the count comes from the file, so it is checked before the values are allocated.
constexpr hssize_t kMaxPatchAttributeValues = 16;

/// The numeric, finite values of attribute `name` of `object` (empty when absent, not numeric,
/// longer than kMaxPatchAttributeValues or not finite: such an attribute says nothing usable).
std::vector<double> numbers(const H5::H5Object& object, const char* name) {
  if (!object.attrExists(name)) return {};
  const H5::Attribute a = object.openAttribute(name);
  const H5T_class_t type = a.getDataType().getClass();
  if (type != H5T_INTEGER && type != H5T_FLOAT) return {};
  const hssize_t count = a.getSpace().getSimpleExtentNpoints();
  if (count <= 0 || count > kMaxPatchAttributeValues) return {};
  std::vector<double> values(std::size_t(count), 0.0);
  a.read(H5::PredType::NATIVE_DOUBLE, values.data());
  for (double v : values) {
    // Past 2^40 pixels no slide exists, and llround of larger values is undefined.
    if (!std::isfinite(v) || std::fabs(v) > 1e12) return {};
  }
  return values;
}

}  // namespace

PatchGeometry read_patch_geometry(const std::string& path) {
  H5::Exception::dontPrint();
  PatchGeometry g;
  try {
    const FileBeingRead reading(path, "HDF5");
    H5::H5File file(path, H5F_ACC_RDONLY);
    std::vector<const H5::H5Object*> holders;
    const H5::Group root = file.openGroup("/");
    H5::DataSet coords;
    if (file.nameExists("coords")) {
      coords = file.openDataSet("coords");
      holders.push_back(&coords);  // CLAM and TRIDENT put them here
    }
    holders.push_back(&root);
    const auto first = [&](const char* name) {
      for (const H5::H5Object* h : holders) {
        if (std::vector<double> v = numbers(*h, name); !v.empty()) return v;
      }
      return std::vector<double>{};
    };
    if (auto v = first("patch_size"); !v.empty()) g.patch_size = int64_t(std::llround(v[0]));
    if (auto v = first("patch_level"); !v.empty())
      g.patch_level = int64_t(std::llround(v[0])), g.has_patch_level = true;
    if (auto v = first("downsample"); !v.empty()) g.downsample = v[0];
    if (auto v = first("patch_size_level0"); !v.empty())
      g.patch_size_level0 = int64_t(std::llround(v[0]));
    if (auto v = first("level_dim"); v.size() >= 2)
      g.level_width = int64_t(std::llround(v[0])), g.level_height = int64_t(std::llround(v[1]));
  } catch (const H5::Exception& e) {
    throw FeatureFileError(
        FeatureFileError::Kind::kUnreadableH5,
        "'" + path + "': HDF5 error while reading the patch attributes: " + e.getDetailMsg());
  }
  return g;
}
#else
PatchGeometry read_patch_geometry(const std::string& path) {
  throw FeatureFileError(FeatureFileError::Kind::kUnreadableH5,
                         "'" + path + "': this build has no HDF5 support");
}
#endif

int64_t level0_patch_size(const PatchGeometry& g, const std::string& path) {
  if (g.patch_size_level0 > 0) return g.patch_size_level0;
  if (g.patch_size <= 0) {
    throw std::runtime_error("'" + path +
                             "' does not say its patch size (no patch_size or patch_size_level0 "
                             "attribute); give it in level-0 pixels with --patch-size");
  }
  if (g.downsample > 0) return int64_t(std::llround(double(g.patch_size) * g.downsample));
  if (g.patch_level == 0) return g.patch_size;
  throw std::runtime_error("'" + path + "' has patch_size " + std::to_string(g.patch_size) +
                           " at patch_level " + std::to_string(g.patch_level) +
                           " but no downsample attribute; give the level-0 patch size with "
                           "--patch-size");
}

}  // namespace mil
