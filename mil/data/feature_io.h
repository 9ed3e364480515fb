#pragma once
// Per-slide feature files as written by Python's torch.save (zip format): a float tensor [N, D], or
// a dict holding one under "features".
#include <stdexcept>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

namespace mil {

/// A feature file that cannot be used, with what is wrong with it, so that `mhim check-data` can
/// sort problems into classes. The message names the file.
class FeatureFileError : public std::runtime_error {
 public:
  enum class Kind {
    kUnreadablePt,  ///< Not a readable torch.save zip archive (truncated, legacy format, not a
                    ///< .pt).
    kUnreadableH5,  ///< HDF5 cannot open or read it.
    kBadContent,    ///< Readable, but not an [N, D] floating tensor (or dict with one under
                    ///< "features").
    kEmptyBag,      ///< N = 0.
  };
  FeatureFileError(Kind kind, const std::string& message)
      : std::runtime_error(message), kind_(kind) {}
  Kind kind() const { return kind_; }

 private:
  Kind kind_;
};

/// Decodes a torch.save'd [N, D] tensor (or {"features": tensor}) from the file's bytes and returns
/// it as contiguous float32. `origin` names the file in errors; throws FeatureFileError.
at::Tensor decode_feature_bytes(const std::vector<char>& bytes, const std::string& origin);

/// Reads the whole file; throws std::runtime_error naming the path when it cannot be read.
std::vector<char> read_file_bytes(const std::string& path);

/// Reads one feature file (see decode_feature_bytes).
at::Tensor read_feature_file(const std::string& path);

/// False when this build was configured without HDF5: .h5 reads and writes then throw saying so.
bool hdf5_supported();

/// One slide of a CLAM/TRIDENT .h5 file.
struct H5Slide {
  at::Tensor features;  ///< [N, D] float32 (float16 files are converted).
  at::Tensor coords;    ///< [N, 2] int64 patch coordinates; undefined when the file has none.
  nlohmann::json attributes =
      nlohmann::json::object();  ///< Numeric/string attributes of `coords` and the file.
};

/// Reads `features` ([N, D] or [1, N, D], float32 or float16) and `coords` ([N, 2]) with their
/// attributes (patch_size, level, downsample, ...); errors name the file and the dataset.
H5Slide read_h5_slide(const std::string& path);

/// Writes a CLAM-layout .h5 (`features` as float32 or float16, `coords` when defined, with
/// `patch_size` on coords); used by tests and the synthetic benchmarks.
void write_h5_slide(const std::string& path, const at::Tensor& features, const at::Tensor& coords,
                    bool float16, int patch_size = 256);

/// Writes `features` [N, D] in torch.save's zip format, loadable by Python's torch.load.
void write_feature_file(const std::string& path, const at::Tensor& features);

}  // namespace mil
