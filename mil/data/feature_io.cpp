#include "mil/data/feature_io.h"

#include <ATen/ATen.h>
#ifdef MIL_HAVE_HDF5
#include <H5Cpp.h>
#endif

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <torch/csrc/jit/serialization/pickle.h>

#include "mil/core/fatal_signal_context.h"
#include "mil/core/reader_limits.h"
#include "mil/data/torch_pickle.h"

namespace mil {

std::vector<char> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  const std::streamsize size = in.tellg();
  if (size < 0) throw std::runtime_error("cannot size '" + path + "'");
  if (std::uint64_t(size) > kMaxTorchSaveFileBytes) {
    throw std::runtime_error("'" + path + "': " +
                             over_limit("its size", std::uint64_t(size), kMaxTorchSaveFileBytes,
                                        "kMaxTorchSaveFileBytes"));
  }
  std::vector<char> bytes(static_cast<std::size_t>(size));
  in.seekg(0);
  if (size > 0 && !in.read(bytes.data(), size))
    throw std::runtime_error("read error in '" + path + "'");
  return bytes;
}

at::Tensor decode_feature_bytes(const std::vector<char>& bytes, const std::string& origin) {
  using Kind = FeatureFileError::Kind;
  const auto fail = [&](Kind kind, const std::string& what) {
    throw FeatureFileError(kind, "'" + origin + "'" + what);
  };
  // torch.save writes a zip archive ("PK\x03\x04") since PyTorch 1.6; before, a bare pickle stream
  // (0x80).
  const bool zip =
      bytes.size() >= 4 && bytes[0] == 'P' && bytes[1] == 'K' && bytes[2] == 3 && bytes[3] == 4;
  if (!zip && !bytes.empty() && static_cast<unsigned char>(bytes[0]) == 0x80) {
    fail(Kind::kUnreadablePt,
         " is in the legacy (pre-1.6) torch.save format; re-save it with torch.save(x, path) from "
         "PyTorch >= 1.6");
  }
  if (!zip)
    fail(Kind::kUnreadablePt,
         " is not a torch.save zip archive (" + std::to_string(bytes.size()) + " bytes)");
  c10::IValue value;
  try {
    value = load_torch_save_bytes(bytes);
  } catch (
      const c10::Error& e) {  // its what() carries a C++ backtrace; the message alone is enough
    fail(Kind::kUnreadablePt, " is a truncated or corrupt torch.save archive (" +
                                  std::to_string(bytes.size()) + " bytes): " + e.msg());
  } catch (const std::exception& e) {
    fail(Kind::kUnreadablePt, " is a truncated or corrupt torch.save archive (" +
                                  std::to_string(bytes.size()) + " bytes): " + e.what());
  }
  at::Tensor features;
  if (value.isTensor()) {
    features = value.toTensor();
  } else if (value.isGenericDict()) {
    const auto dict = value.toGenericDict();
    auto it = dict.find(c10::IValue(std::string("features")));
    if (it == dict.end() || !it->value().isTensor())
      fail(Kind::kBadContent, " holds a dict without a 'features' tensor");
    features = it->value().toTensor();
  } else {
    fail(Kind::kBadContent,
         " holds a " + std::string(value.tagKind()) + ", expected a tensor or a dict");
  }
  if (features.dim() != 2)
    fail(Kind::kBadContent, ": expected features [N, D], got " + c10::str(features.sizes()));
  if (!at::isFloatingType(features.scalar_type())) {
    fail(Kind::kBadContent, ": features are " + std::string(c10::toString(features.scalar_type())) +
                                ", expected floats");
  }
  if (features.size(0) == 0) fail(Kind::kEmptyBag, ": bag has no instances");
  return features.to(at::kFloat).contiguous();
}

at::Tensor read_feature_file(const std::string& path) {
  return decode_feature_bytes(read_file_bytes(path), path);
}

void write_feature_file(const std::string& path, const at::Tensor& features) {
  TORCH_CHECK(features.dim() == 2, "write_feature_file expects [N, D] features, got ",
              features.sizes());
  const std::vector<char> bytes = torch::jit::pickle_save(c10::IValue(features.contiguous()));
  std::ofstream out(path, std::ios::binary);
  if (!out) throw std::runtime_error("cannot write '" + path + "'");
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("write error in '" + path + "'");
}

#ifdef MIL_HAVE_HDF5

bool hdf5_supported() { return true; }

namespace {

/// h5py's float16: a 2-byte IEEE half (sign 15, exponent 10..14 with bias 15, mantissa 0..9).
H5::FloatType half_type() {
  H5::FloatType type(H5::PredType::NATIVE_FLOAT);
  type.setFields(15, 10, 5, 0, 10);
  type.setSize(2);
  type.setEbias(15);
  return type;
}

/// Reads the scalar numeric and string attributes of `object` into `out`; throws `bad` errors for
/// more than kMaxH5Attributes attributes or a string over kMaxH5StringAttributeBytes.
template <typename Bad>
void read_attributes(const H5::H5Object& object, nlohmann::json& out, const Bad& bad) {
  const int count = object.getNumAttrs();
  if (count > kMaxH5Attributes) {
    throw bad(": " + over_limit("the attribute count of '" + object.getObjName() + "'",
                                std::uint64_t(count), kMaxH5Attributes, "kMaxH5Attributes"));
  }
  for (int i = 0; i < count; ++i) {
    const H5::Attribute attribute = object.openAttribute(static_cast<unsigned>(i));
    const H5::DataType type = attribute.getDataType();
    if (attribute.getSpace().getSimpleExtentNpoints() != 1) continue;  // scalars only
    if (type.getClass() == H5T_STRING && !type.isVariableStr() &&
        type.getSize() > kMaxH5StringAttributeBytes) {
      throw bad(": " + over_limit("the size of string attribute '" + attribute.getName() + "'",
                                  type.getSize(), kMaxH5StringAttributeBytes,
                                  "kMaxH5StringAttributeBytes"));
    }
    if (type.getClass() == H5T_INTEGER) {
      long long value = 0;
      attribute.read(H5::PredType::NATIVE_LLONG, &value);
      out[attribute.getName()] = value;
    } else if (type.getClass() == H5T_FLOAT) {
      double value = 0;
      attribute.read(H5::PredType::NATIVE_DOUBLE, &value);
      out[attribute.getName()] = value;
    } else if (type.getClass() == H5T_STRING) {
      std::string value;
      attribute.read(type, value);
      out[attribute.getName()] = value;
    }
  }
}

}  // namespace

H5Slide read_h5_slide(const std::string& path) {
  H5::Exception::dontPrint();
  H5Slide slide;
  std::string stage = "opening";
  const auto bad = [&](const std::string& what) {
    return FeatureFileError(FeatureFileError::Kind::kBadContent, "'" + path + "'" + what);
  };
  std::error_code size_error;
  const std::uint64_t file_bytes = std::filesystem::file_size(path, size_error);
  if (size_error) {
    throw FeatureFileError(FeatureFileError::Kind::kUnreadableH5,
                           "'" + path + "': cannot open: " + size_error.message());
  }
  // What the file may decode to (kMaxH5ExpansionRatio), checked before anything is allocated.
  const auto check_decoded = [&](const char* what, std::uint64_t rows, std::uint64_t width,
                                 std::uint64_t element) {
    std::uint64_t elements = 0, decoded = 0;
    if (rows > kMaxTensorElements || width > kMaxTensorElements ||
        __builtin_mul_overflow(rows, width, &elements) || elements > kMaxTensorElements) {
      throw bad(": " + over_limit(std::string("the element count of '") + what + "'",
                                  kMaxTensorElements, "kMaxTensorElements"));
    }
    if (__builtin_mul_overflow(elements, element, &decoded) ||
        decoded / kMaxH5ExpansionRatio > file_bytes) {
      throw bad(": '" + std::string(what) + "' [" + std::to_string(rows) + ", " +
                std::to_string(width) + "] decodes to " + std::to_string(decoded) +
                " bytes, more than " + std::to_string(kMaxH5ExpansionRatio) + " times the file's " +
                std::to_string(file_bytes) + " (kMaxH5ExpansionRatio)");
    }
  };
  try {
    const FileBeingRead reading(path, "HDF5");
    H5::H5File file(path, H5F_ACC_RDONLY);
    stage = "reading 'features'";
    if (!file.nameExists("features")) throw bad(" has no 'features' dataset");
    const H5::DataSet features = file.openDataSet("features");
    if (features.getTypeClass() != H5T_FLOAT) throw bad(": 'features' is not floating point");
    const H5::DataSpace space = features.getSpace();
    const int rank = space.getSimpleExtentNdims();
    hsize_t dims[3] = {0, 0, 0};
    if (rank < 2 || rank > 3)
      throw bad(": 'features' must be [N, D], got rank " + std::to_string(rank));
    space.getSimpleExtentDims(dims);
    if (rank == 3 && dims[0] != 1) throw bad(": 'features' [B, N, D] needs B = 1");
    check_decoded("features", rank == 3 ? dims[1] : dims[0], rank == 3 ? dims[2] : dims[1],
                  sizeof(float));
    const int64_t n = int64_t(rank == 3 ? dims[1] : dims[0]),
                  d = int64_t(rank == 3 ? dims[2] : dims[1]);
    if (n == 0)
      throw FeatureFileError(FeatureFileError::Kind::kEmptyBag,
                             "'" + path + "': bag has no instances");
    slide.features = at::empty({n, d}, at::kFloat);
    features.read(slide.features.data_ptr<float>(),
                  H5::PredType::NATIVE_FLOAT);  // converts float16
    read_attributes(file.openGroup("/"), slide.attributes, bad);
    read_attributes(features, slide.attributes, bad);
    if (file.nameExists("coords")) {
      stage = "reading 'coords'";
      const H5::DataSet coords = file.openDataSet("coords");
      hsize_t cdims[3] = {0, 0, 0};
      const H5::DataSpace cspace = coords.getSpace();
      const int crank = cspace.getSimpleExtentNdims();
      if (crank < 2 || crank > 3) throw bad(": 'coords' must be [N, 2]");
      cspace.getSimpleExtentDims(cdims);
      const int64_t cn = int64_t(crank == 3 ? cdims[1] : cdims[0]),
                    cw = int64_t(crank == 3 ? cdims[2] : cdims[1]);
      if (cn != n || cw != 2) {
        throw bad(": 'coords' is [" + std::to_string(cn) + ", " + std::to_string(cw) +
                  "], expected [" + std::to_string(n) + ", 2]");
      }
      check_decoded("coords", std::uint64_t(n), 2, sizeof(int64_t));
      slide.coords = at::empty({n, 2}, at::kLong);
      coords.read(slide.coords.data_ptr<int64_t>(), H5::PredType::NATIVE_INT64);
      read_attributes(coords, slide.attributes, bad);
    }
  } catch (const H5::Exception& e) {
    throw FeatureFileError(FeatureFileError::Kind::kUnreadableH5,
                           "'" + path + "': HDF5 error while " + stage + ": " + e.getDetailMsg());
  }
  return slide;
}

void write_h5_slide(const std::string& path, const at::Tensor& features, const at::Tensor& coords,
                    bool float16, int patch_size) {
  TORCH_CHECK(features.dim() == 2, "write_h5_slide expects [N, D] features, got ",
              features.sizes());
  H5::Exception::dontPrint();
  try {
    H5::H5File file(path, H5F_ACC_TRUNC);
    const hsize_t dims[2] = {hsize_t(features.size(0)), hsize_t(features.size(1))};
    const at::Tensor values = features.to(at::kFloat).contiguous();
    // No modification times in object headers, so the same tensors give byte-identical files.
    H5::DSetCreatPropList no_times;
    H5Pset_obj_track_times(no_times.getId(), false);
    H5::DataSet data =
        float16 ? file.createDataSet("features", half_type(), H5::DataSpace(2, dims), no_times)
                : file.createDataSet("features", H5::PredType::IEEE_F32LE, H5::DataSpace(2, dims),
                                     no_times);
    data.write(values.data_ptr<float>(), H5::PredType::NATIVE_FLOAT);
    if (coords.defined()) {
      TORCH_CHECK(coords.dim() == 2 && coords.size(1) == 2 && coords.size(0) == features.size(0),
                  "write_h5_slide expects coords [N, 2], got ", coords.sizes());
      const hsize_t cdims[2] = {hsize_t(coords.size(0)), 2};
      const at::Tensor c = coords.to(at::kLong).contiguous();
      H5::DataSet cset =
          file.createDataSet("coords", H5::PredType::STD_I64LE, H5::DataSpace(2, cdims), no_times);
      cset.write(c.data_ptr<int64_t>(), H5::PredType::NATIVE_INT64);
      H5::Attribute attribute =
          cset.createAttribute("patch_size", H5::PredType::STD_I32LE, H5::DataSpace(H5S_SCALAR));
      attribute.write(H5::PredType::NATIVE_INT, &patch_size);
    }
  } catch (const H5::Exception& e) {
    throw std::runtime_error("cannot write '" + path + "': " + e.getDetailMsg());
  }
}

#else  // MIL_HAVE_HDF5

bool hdf5_supported() { return false; }

H5Slide read_h5_slide(const std::string& path) {
  throw FeatureFileError(
      FeatureFileError::Kind::kUnreadableH5,
      "'" + path + "': this build has no HDF5 support (configure with -DMIL_WITH_HDF5=ON)");
}

void write_h5_slide(const std::string& path, const at::Tensor&, const at::Tensor&, bool, int) {
  throw std::runtime_error("cannot write '" + path +
                           "': this build has no HDF5 support (configure with -DMIL_WITH_HDF5=ON)");
}

#endif  // MIL_HAVE_HDF5

}  // namespace mil
