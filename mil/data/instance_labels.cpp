#include "mil/data/instance_labels.h"

#include <ATen/ATen.h>
#ifdef MIL_HAVE_HDF5
#include <H5Cpp.h>
#endif

#include <charconv>
#include <filesystem>
#include <fstream>

#include "mil/core/fatal_signal_context.h"
#include "mil/data/feature_io.h"
#include "mil/data/label_csv.h"

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

/// What may surround a code on a sidecar line; a line of nothing else is blank.
constexpr const char* kBlank = " \t\r";

/// One code of a sidecar line: the whole line (blanks around allowed) must be an integer in
/// [0, 255]; -1 otherwise. Both ends are found with the same blank set, so a line of blanks only
/// (e.g. "\r\r", which once made `last` npos) has no code.
int parse_code(const std::string& line) {
  const std::size_t first = line.find_first_not_of(kBlank);
  if (first == std::string::npos) return -1;
  const std::size_t last = line.find_last_not_of(kBlank);
  int value = -1;
  const char* end = line.data() + last + 1;
  const auto [ptr, ec] = std::from_chars(line.data() + first, end, value);
  if (ec != std::errc() || ptr != end || value < 0 || value > 255) return -1;
  return value;
}

at::Tensor read_sidecar(const std::string& feature_path, int64_t instances) {
  const std::string path = instance_labels_sidecar_path(feature_path);
  CsvLineReader in(path);  // within kMaxCsvFileBytes, kMaxCsvLineBytes and kMaxCsvLines
  if (!in.is_open()) return at::Tensor();  // no truth for this slide
  std::string line;
  if (!in.next(line) || line.rfind("instance_label", 0) != 0)
    throw bad(path, ":1: the first line must be the header 'instance_label'");
  // One byte per instance, never more than the slide has: a sidecar cannot make us store more
  // than its slide's features already cost.
  at::Tensor out = at::empty({instances}, at::kByte);
  std::uint8_t* codes = out.data_ptr<std::uint8_t>();
  int64_t count = 0;
  while (in.next(line)) {
    if (line.find_first_not_of(kBlank) == std::string::npos) continue;
    if (line.back() == '\r') line.pop_back();
    const int value = parse_code(line);
    if (value < 0) {
      throw bad(path, ":" + std::to_string(in.line_number()) + ": '" + line.substr(0, 40) +
                          "' is not an instance label code");
    }
    if (count == instances) {
      throw bad(path, ":" + std::to_string(in.line_number()) + ": more instance labels than the " +
                          std::to_string(instances) + " instances of the slide");
    }
    codes[count++] = std::uint8_t(value);
  }
  return checked(out.narrow(0, 0, count), instances, path);
}

#ifdef MIL_HAVE_HDF5
at::Tensor read_h5(const std::string& path, int64_t instances) {
  H5::Exception::dontPrint();
  try {
    const FileBeingRead reading(path, "HDF5");
    H5::H5File file(path, H5F_ACC_RDONLY);
    if (!file.nameExists(kInstanceLabelsDataset)) return at::Tensor();
    const H5::DataSet set = file.openDataSet(kInstanceLabelsDataset);
    if (set.getTypeClass() != H5T_INTEGER) throw bad(path, ": 'instance_labels' is not integer");
    const H5::DataSpace space = set.getSpace();
    const int rank = space.getSimpleExtentNdims();
    // The rank is checked before the extent is read into a 2-element array.
    if (rank != 1 && rank != 2) throw bad(path, ": 'instance_labels' must be [N]");
    hsize_t dims[2] = {0, 0};
    space.getSimpleExtentDims(dims);
    if (rank == 2 && dims[1] != 1) throw bad(path, ": 'instance_labels' must be [N]");
    // The length is checked before anything is allocated for it.
    if (dims[0] != hsize_t(instances)) {
      throw bad(path, ": holds " + std::to_string(dims[0]) + " instance labels for " +
                          std::to_string(instances) + " instances");
    }
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
