#pragma once
// PyTorch state_dict interchange: read what Python's `torch.save(model.state_dict())` writes, write
// files Python's `torch.load` reads, and load them into our modules reporting every missing,
// unexpected or mis-shaped key by name.
#include <string>
#include <utility>
#include <vector>

#include <ATen/core/Tensor.h>

namespace torch::nn {
class Module;
}

namespace mil {

/// Parameter and buffer tensors by their dotted PyTorch names, in registration (file) order.
using StateDict = std::vector<std::pair<std::string, at::Tensor>>;

/// Reads a state_dict saved by Python (`torch.save`, zip format) or by write_state_dict. Accepts a
/// plain dict of tensors or a checkpoint dict holding one under "model" or "state_dict" (the
/// reference's checkpoints); strips a leading "module." (DataParallel) from every key. Errors name
/// the file.
StateDict read_state_dict(const std::string& path);

/// Writes `state` as a dict of tensors that Python's `torch.load` returns as {name: tensor}.
/// The file is replaced atomically (temporary file, fsync, rename), so a crash never leaves a torn
/// one.
void write_state_dict(const StateDict& state, const std::string& path);

/// Writes a dict of state_dicts, {name: {tensor name: tensor}}, as the reference's best checkpoints
/// ({"model": student, "teacher": teacher}); read_state_dict reads its "model" part. Atomic as
/// above.
void write_state_dicts(const std::vector<std::pair<std::string, StateDict>>& parts,
                       const std::string& path);

/// Writes the reference's best-checkpoint layout, {"model": model, "teacher": teacher, "epoch":
/// epoch} (what its training loop saves as fold_{k}_model_best.pt); an empty `teacher` is written
/// as None, as the reference does for models without one. read_state_dict reads its "model" part.
/// Atomic as above.
void write_best_checkpoint(const StateDict& model, const StateDict& teacher, int64_t epoch,
                           const std::string& path);

/// Reads part `key` of a dict of state_dicts (write_state_dicts, or a reference checkpoint's
/// "teacher"). Throws naming the file when the key is missing or not a dict of tensors.
StateDict read_state_dict_part(const std::string& path, const std::string& key);

/// Every parameter and buffer of `module`, named as PyTorch names them (e.g. "feature.0.weight").
StateDict state_dict_of(const torch::nn::Module& module);

/// What load_state_dict found besides the keys it copied.
struct StateDictReport {
  std::vector<std::string> missing;     ///< In the module, absent from the state_dict.
  std::vector<std::string> unexpected;  ///< In the state_dict, absent from the module.
  std::vector<std::string>
      mismatched;  ///< In both, with different shapes ("name: [a, b] vs [c, d]").
  /// True when every module tensor was filled and nothing was left over.
  bool clean() const { return missing.empty() && unexpected.empty() && mismatched.empty(); }
  /// One line listing the problems by key, for error messages.
  std::string describe() const;
};

/// Copies matching tensors of `state` into `module` (no gradient tracking, dtype converted to the
/// module's). Mis-shaped keys are never copied. With `strict`, any missing, unexpected or
/// mismatched key is an error naming them all, and nothing is copied; otherwise the report says
/// what was skipped.
StateDictReport load_state_dict(torch::nn::Module& module, const StateDict& state,
                                bool strict = true);

}  // namespace mil
