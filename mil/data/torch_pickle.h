#pragma once
// Reading what Python's torch.save writes (zip format) with LibTorch's unpickler, which rejects the
// BUILD opcode that every state_dict carries (Python pickles OrderedDict `_metadata` through
// BUILD).
#include <vector>

#include <ATen/core/ivalue.h>

namespace mil {

/// Unpickles a torch.save zip archive held in `bytes`: tensors, dicts (OrderedDicts become plain
/// dicts, their `_metadata` dropped), lists, tuples, numbers and strings. Throws std::runtime_error
/// when the bytes are not such an archive or hold objects LibTorch cannot represent.
c10::IValue load_torch_save_bytes(const std::vector<char>& bytes);

}  // namespace mil
