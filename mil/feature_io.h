#pragma once
// Per-slide feature files as written by Python's torch.save (zip format): a float tensor [N, D], or a
// dict holding one under "features".
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace mil {

/// Decodes a torch.save'd [N, D] tensor (or {"features": tensor}) from the file's bytes and returns it
/// as contiguous float32. `origin` names the file in errors.
at::Tensor decode_feature_bytes(const std::vector<char>& bytes, const std::string& origin);

/// Reads the whole file; throws std::runtime_error naming the path when it cannot be read.
std::vector<char> read_file_bytes(const std::string& path);

/// Reads one feature file (see decode_feature_bytes).
at::Tensor read_feature_file(const std::string& path);

/// Writes `features` [N, D] in torch.save's zip format, loadable by Python's torch.load.
void write_feature_file(const std::string& path, const at::Tensor& features);

}  // namespace mil
