#include "mil/data/instance_labels.h"

#include <ATen/ATen.h>
#ifdef MIL_HAVE_HDF5
#include <H5Cpp.h>
#endif

#include <filesystem>
#include <fstream>
#include <sstream>

#include "mil/data/feature_io.h"

namespace mil {
namespace fs = std::filesystem;
namespace {

/// What the codes mean, stored with them so that a file explains itself.
constexpr const char* kCodesLegend =
    "0 background, 1 hard witness, 2 easy witness, 3 tumour (not a witness), 4 aggressive tumour "
    "(not a witness)";

bool is_h5(const std::string& path) { return fs::path(path).extension() == ".h5"; }

FeatureFileError bad(const std::string& path, const std::string& what) {
  return FeatureFileError(FeatureFileError::Kind::kBadContent, "'" + path + "'" + what);
}

/// Checks the length and the codes of `codes` read from `path`.
at::Tensor checked(at::Tensor codes, int64_t instances, const std::string& path) {
  if (codes.numel() != instances) {
    throw bad(path, ": holds " + std::to_string(codes.numel()) + " instance labels for " +
                        std::to_string(instances) + " instances");
  }
  const std::uint8_t* c = codes.data_ptr<std::uint8_t>();
  for (int64_t i = 0; i < instances; ++i) {
    if (c[i] > kRoleAggressive) {
      throw bad(path, ": instance label " + std::to_string(int(c[i])) + " at row " +
                          std::to_string(i) + " is not a code (" + kCodesLegend + ")");
    }
  }
  return codes;
}

at::Tensor read_sidecar(const std::string& feature_path, int64_t instances) {
  const std::string path = instance_labels_sidecar_path(feature_path);
  std::ifstream in(path);
  if (!in) return at::Tensor();  // no truth for this slide
  std::string line;
  if (!std::getline(in, line) || line.rfind("instance_label", 0) != 0)
    throw bad(path, ": the first line must be the header 'instance_label'");
  std::vector<std::uint8_t> codes;
  codes.reserve(std::size_t(instances));
  int64_t line_number = 1;
  while (std::getline(in, line)) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    int value = -1;
    std::istringstream parse(line);
    if (!(parse >> value) || value < 0 || value > 255) {
      throw bad(path, ": line " + std::to_string(line_number) + " '" + line +
                          "' is not an instance label code");
    }
    codes.push_back(std::uint8_t(value));
  }
  at::Tensor out = at::empty({int64_t(codes.size())}, at::kByte);
  std::copy(codes.begin(), codes.end(), out.data_ptr<std::uint8_t>());
  return checked(out, instances, path);
}

#ifdef MIL_HAVE_HDF5
at::Tensor read_h5(const std::string& path, int64_t instances) {
  H5::Exception::dontPrint();
  try {
    H5::H5File file(path, H5F_ACC_RDONLY);
    if (!file.nameExists(kInstanceLabelsDataset)) return at::Tensor();
    const H5::DataSet set = file.openDataSet(kInstanceLabelsDataset);
    if (set.getTypeClass() != H5T_INTEGER) throw bad(path, ": 'instance_labels' is not integer");
    const H5::DataSpace space = set.getSpace();
    const int rank = space.getSimpleExtentNdims();
    hsize_t dims[2] = {0, 0};
    space.getSimpleExtentDims(dims);
    const bool column = rank == 2 && dims[1] == 1;
    if (rank != 1 && !column) throw bad(path, ": 'instance_labels' must be [N]");
    at::Tensor codes = at::empty({int64_t(dims[0])}, at::kByte);
    set.read(codes.data_ptr<std::uint8_t>(), H5::PredType::NATIVE_UINT8);
    return checked(codes, instances, path);
  } catch (const H5::Exception& e) {
    throw FeatureFileError(
        FeatureFileError::Kind::kUnreadableH5,
        "'" + path + "': HDF5 error while reading 'instance_labels': " + e.getDetailMsg());
  }
}

void write_h5(const std::string& path, const at::Tensor& codes) {
  H5::Exception::dontPrint();
  try {
    H5::H5File file(path, H5F_ACC_RDWR);
    if (file.nameExists(kInstanceLabelsDataset)) file.unlink(kInstanceLabelsDataset);
    const hsize_t dims[1] = {hsize_t(codes.numel())};
    H5::DSetCreatPropList no_times;  // byte-identical files for identical codes
    H5Pset_obj_track_times(no_times.getId(), false);
    H5::DataSet set = file.createDataSet(kInstanceLabelsDataset, H5::PredType::STD_U8LE,
                                         H5::DataSpace(1, dims), no_times);
    set.write(codes.data_ptr<std::uint8_t>(), H5::PredType::NATIVE_UINT8);
    const H5::StrType text(H5::PredType::C_S1, std::string(kCodesLegend).size());
    H5::Attribute legend = set.createAttribute("codes", text, H5::DataSpace(H5S_SCALAR));
    legend.write(text, std::string(kCodesLegend));
  } catch (const H5::Exception& e) {
    throw std::runtime_error("cannot add 'instance_labels' to '" + path + "': " + e.getDetailMsg());
  }
}
#else
at::Tensor read_h5(const std::string& path, int64_t) {
  throw FeatureFileError(FeatureFileError::Kind::kUnreadableH5,
                         "'" + path + "': this build has no HDF5 support");
}
void write_h5(const std::string& path, const at::Tensor&) {
  throw std::runtime_error("cannot write '" + path + "': this build has no HDF5 support");
}
#endif

}  // namespace

std::string instance_labels_sidecar_path(const std::string& feature_path) {
  fs::path p(feature_path);
  return (p.parent_path() / (p.stem().string() + kInstanceLabelsSidecarSuffix)).string();
}

at::Tensor read_instance_labels(const std::string& feature_path, int64_t instances) {
  return is_h5(feature_path) ? read_h5(feature_path, instances)
                             : read_sidecar(feature_path, instances);
}

void write_instance_labels(const std::string& feature_path, const at::Tensor& codes) {
  TORCH_CHECK(codes.dim() == 1, "write_instance_labels expects codes [N], got ", codes.sizes());
  const at::Tensor bytes = codes.to(at::kByte).contiguous();
  if (is_h5(feature_path)) return write_h5(feature_path, bytes);
  const std::string path = instance_labels_sidecar_path(feature_path);
  std::string text = "instance_label\n";
  const std::uint8_t* c = bytes.data_ptr<std::uint8_t>();
  for (int64_t i = 0; i < bytes.numel(); ++i) text += std::to_string(int(c[i])) + "\n";
  std::ofstream out(path, std::ios::binary);
  if (!out || !out.write(text.data(), std::streamsize(text.size())))
    throw std::runtime_error("cannot write '" + path + "'");
}

std::vector<int64_t> count_roles(const at::Tensor& codes) {
  std::vector<int64_t> counts(kRoleAggressive + 1, 0);
  if (!codes.defined()) return counts;
  const at::Tensor bytes = codes.to(at::kByte).contiguous();
  const std::uint8_t* c = bytes.data_ptr<std::uint8_t>();
  for (int64_t i = 0; i < bytes.numel(); ++i) {
    if (c[i] < counts.size()) ++counts[c[i]];
  }
  return counts;
}

}  // namespace mil
