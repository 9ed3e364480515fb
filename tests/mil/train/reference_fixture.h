#pragma once
// Reading tests/fixtures/reference (make_reference_fixtures.py): what the unchanged reference
// computed while training each case, and the inputs to hand our trainer to replay the same steps.
#include <string>
#include <vector>

#include <ATen/core/ivalue.h>
#include <nlohmann/json.hpp>

#include "mil/core/specs.h"
#include "mil/data/bag_dataset.h"
#include "mil/models/state_dict.h"

namespace mil::testing {

/// One recorded training run of the reference.
struct ReferenceCase {
  std::string name;
  nlohmann::json meta;    ///< <case>.json: options, bags, init table, per-step records.
  c10::IValue samples;    ///< <case>.pt: {"sample_index": {...}, "steps": [...]}.
  std::vector<Bag> bags;  ///< The case's bags with their labels (and censorship).
  bool mhim = false;      ///< Trained with the MHIM objective.
  bool survival = false;  ///< Trained with the survival NLL.

  /// The reference option `key` (after its parser and config file).
  const nlohmann::json& option(const std::string& key) const { return meta.at("options").at(key); }
  /// Recorded step `k` (0-based, in training order).
  const nlohmann::json& step(std::size_t k) const { return meta.at("steps").at(k); }
  std::size_t step_count() const { return meta.at("steps").size(); }
};

/// Loads tests/fixtures/reference/<name>.json, <name>.pt and the case's bags from bags.pt.
ReferenceCase load_reference_case(const std::string& name);

/// The generator's hashed initial weights: for each row {name, shape, offset, scale} of `table`,
/// float32(offset + scale·u_i) with u_i from splitmix64 over fnv1a64(name) and `seed`. Rows for
/// which `keep(name)` is false are left out.
StateDict hashed_state(const nlohmann::json& table, std::uint64_t seed,
                       const std::function<bool(const std::string&)>& keep = nullptr);

/// Our model spec for the reference's options (same meanings, our option names), dropout at the
/// reference's default; `teacher_init` is used by MHIM cases.
ModelSpec our_model_spec(const ReferenceCase& c, const std::string& teacher_init);

/// Our training spec for the reference's options: Adam lr and weight decay, the timm cosine over
/// num_epoch with its 1e-7 floor, no early stopping, the task loss.
TrainSpec our_train_spec(const ReferenceCase& c);

/// Entry `key` of a dict IValue (string keys); throws naming the key when absent.
c10::IValue dict_at(const c10::IValue& dict, const std::string& key);

}  // namespace mil::testing
