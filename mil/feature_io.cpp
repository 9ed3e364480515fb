#include "mil/feature_io.h"

#include <fstream>
#include <stdexcept>

#include <torch/csrc/jit/serialization/pickle.h>

namespace mil {

std::vector<char> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("cannot open '" + path + "'");
  const std::streamsize size = in.tellg();
  std::vector<char> bytes(static_cast<std::size_t>(size));
  in.seekg(0);
  if (size > 0 && !in.read(bytes.data(), size)) throw std::runtime_error("read error in '" + path + "'");
  return bytes;
}

at::Tensor decode_feature_bytes(const std::vector<char>& bytes, const std::string& origin) {
  c10::IValue value;
  try {
    value = torch::jit::pickle_load(bytes);
  } catch (const std::exception& e) {
    throw std::runtime_error("'" + origin + "' is not a torch.save zip archive: " + e.what());
  }
  at::Tensor features;
  if (value.isTensor()) {
    features = value.toTensor();
  } else if (value.isGenericDict()) {
    const auto dict = value.toGenericDict();
    auto it = dict.find(c10::IValue(std::string("features")));
    if (it == dict.end() || !it->value().isTensor()) {
      throw std::runtime_error("'" + origin + "' holds a dict without a 'features' tensor");
    }
    features = it->value().toTensor();
  } else {
    throw std::runtime_error("'" + origin + "' holds a " + value.tagKind() + ", expected a tensor or a dict");
  }
  if (features.dim() != 2) {
    throw std::runtime_error("'" + origin + "': expected features [N, D], got " + c10::str(features.sizes()));
  }
  if (features.size(0) == 0) throw std::runtime_error("'" + origin + "': bag has no instances");
  return features.to(at::kFloat).contiguous();
}

at::Tensor read_feature_file(const std::string& path) { return decode_feature_bytes(read_file_bytes(path), path); }

void write_feature_file(const std::string& path, const at::Tensor& features) {
  TORCH_CHECK(features.dim() == 2, "write_feature_file expects [N, D] features, got ", features.sizes());
  const std::vector<char> bytes = torch::jit::pickle_save(c10::IValue(features.contiguous()));
  std::ofstream out(path, std::ios::binary);
  if (!out) throw std::runtime_error("cannot write '" + path + "'");
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("write error in '" + path + "'");
}

}  // namespace mil
