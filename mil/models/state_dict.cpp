#include "mil/models/state_dict.h"

#include <algorithm>
#include <map>
#include <sstream>
#include <stdexcept>

#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/nn/module.h>
#include <torch/serialize.h>

#include "mil/core/durable_file.h"
#include "mil/data/feature_io.h"
#include "mil/data/torch_pickle.h"

namespace mil {
namespace {

std::string shape_string(const at::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

StateDict tensors_of_dict(const c10::impl::GenericDict& dict, const std::string& path) {
  StateDict state;
  for (const auto& entry : dict) {
    if (!entry.key().isString())
      throw std::runtime_error("'" + path + "': state_dict key is not a string");
    std::string name = entry.key().toStringRef();
    if (!entry.value().isTensor()) {
      throw std::runtime_error("'" + path + "': state_dict entry '" + name + "' is a " +
                               entry.value().tagKind() + ", not a tensor");
    }
    if (name.rfind("module.", 0) == 0) name = name.substr(7);
    state.emplace_back(std::move(name), entry.value().toTensor());
  }
  return state;
}

}  // namespace

std::string StateDictReport::describe() const {
  std::string out;
  const auto list = [&out](const char* what, const std::vector<std::string>& keys) {
    if (keys.empty()) return;
    if (!out.empty()) out += "; ";
    out += what;
    out += ": ";
    for (std::size_t i = 0; i < keys.size(); ++i) out += (i ? ", " : "") + keys[i];
  };
  list("missing keys", missing);
  list("unexpected keys", unexpected);
  list("shape mismatches", mismatched);
  return out.empty() ? "all keys match" : out;
}

namespace {

/// The dict a torch.save file at `path` holds; `expected` says what it should be, for the error.
c10::impl::GenericDict saved_dict(const std::string& path, const std::string& expected) {
  const std::vector<char> bytes = read_file_bytes(path);
  c10::IValue value;
  try {
    value = load_torch_save_bytes(bytes);
  } catch (const std::exception& e) {
    throw std::runtime_error("'" + path + "' is not a torch.save zip archive: " + e.what());
  }
  if (!value.isGenericDict()) {
    throw std::runtime_error("'" + path + "' holds a " + value.tagKind() + ", expected " +
                             expected);
  }
  return value.toGenericDict();
}

/// `state` as the {name: tensor} dict Python's state_dicts are, on the CPU.
c10::Dict<std::string, at::Tensor> tensor_dict(const StateDict& state) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& [name, tensor] : state)
    dict.insert(name, tensor.detach().to(at::kCPU).contiguous());
  return dict;
}

void write_pickled(const c10::IValue& value, const std::string& path) {
  const std::vector<char> bytes = torch::jit::pickle_save(value);
  write_file_atomic(path, std::string(bytes.begin(), bytes.end()));
}

}  // namespace

StateDict read_state_dict(const std::string& path) {
  const auto dict = saved_dict(path, "a state_dict (a dict)");
  for (const char* nested : {"model", "state_dict"}) {
    auto it = dict.find(c10::IValue(std::string(nested)));
    if (it != dict.end()) {
      if (!it->value().isGenericDict()) {
        throw std::runtime_error("'" + path + "': checkpoint key '" + nested +
                                 "' is not a dict of tensors");
      }
      return tensors_of_dict(it->value().toGenericDict(), path);
    }
  }
  return tensors_of_dict(dict, path);
}

void write_state_dict(const StateDict& state, const std::string& path) {
  write_pickled(c10::IValue(tensor_dict(state)), path);
}

void write_state_dicts(const std::vector<std::pair<std::string, StateDict>>& parts,
                       const std::string& path) {
  c10::Dict<std::string, c10::Dict<std::string, at::Tensor>> outer;
  for (const auto& [key, state] : parts) outer.insert(key, tensor_dict(state));
  write_pickled(c10::IValue(outer), path);
}

void write_best_checkpoint(const StateDict& model, const StateDict& teacher, int64_t epoch,
                           const std::string& path) {
  c10::impl::GenericDict checkpoint(c10::StringType::get(), c10::AnyType::get());
  checkpoint.insert(std::string("model"), c10::IValue(tensor_dict(model)));
  checkpoint.insert(std::string("teacher"),
                    teacher.empty() ? c10::IValue() : c10::IValue(tensor_dict(teacher)));
  checkpoint.insert(std::string("epoch"), c10::IValue(epoch));
  write_pickled(c10::IValue(checkpoint), path);
}

StateDict read_state_dict_part(const std::string& path, const std::string& key) {
  const auto dict = saved_dict(path, "a dict with key '" + key + "'");
  const auto it = dict.find(c10::IValue(key));
  if (it == dict.end() || !it->value().isGenericDict()) {
    throw std::runtime_error("'" + path + "' has no dict of tensors under key '" + key + "'");
  }
  return tensors_of_dict(it->value().toGenericDict(), path);
}

StateDict state_dict_of(const torch::nn::Module& module) {
  StateDict state;
  for (const auto& item : module.named_parameters(/*recurse=*/true))
    state.emplace_back(item.key(), item.value());
  for (const auto& item : module.named_buffers(/*recurse=*/true))
    state.emplace_back(item.key(), item.value());
  return state;
}

StateDictReport load_state_dict(torch::nn::Module& module, const StateDict& state, bool strict) {
  std::map<std::string, at::Tensor> targets;
  for (auto& [name, tensor] : state_dict_of(module)) targets.emplace(name, tensor);
  std::map<std::string, const at::Tensor*> sources;
  StateDictReport report;
  for (const auto& [name, tensor] : state) {
    auto it = targets.find(name);
    if (it == targets.end()) {
      report.unexpected.push_back(name);
    } else if (it->second.sizes() != tensor.sizes()) {
      report.mismatched.push_back(name + ": " + shape_string(tensor) + " in the file vs " +
                                  shape_string(it->second) + " in the model");
    } else {
      sources[name] = &tensor;
    }
  }
  for (const auto& entry : state_dict_of(module)) {
    const std::string& name = entry.first;  // a lambda may not capture a structured binding (C++17)
    const bool seen =
        sources.count(name) != 0 ||
        std::any_of(report.mismatched.begin(), report.mismatched.end(),
                    [&](const std::string& m) { return m.rfind(name + ":", 0) == 0; });
    if (!seen) report.missing.push_back(name);
  }
  if (strict && !report.clean())
    throw std::runtime_error("state_dict does not match the model: " + report.describe());
  torch::NoGradGuard no_grad;
  for (const auto& [name, source] : sources) {
    at::Tensor& target = targets.at(name);
    target.copy_(source->to(target.device(), target.scalar_type()));
  }
  return report;
}

}  // namespace mil
