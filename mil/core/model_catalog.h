#pragma once
// Every model the project trains, as facts every layer can read without LibTorch: the option keys
// its ModelSpec accepts, the training objective it needs, whether the reference ships it as a
// stand-alone model, and what one instance costs. The builders (LibTorch) live in
// mil/models/model_registry.h under the same names; a test checks that both name the same models.
// Adding a model: its own files under mil/models/, one entry here and one builder line there.
#include <cstdint>
#include <string>
#include <vector>

namespace mil {

/// What training a model needs beyond its forward pass.
enum class ObjectiveKind {
  kTaskLoss,  ///< The task loss on the bag logits plus the model's own auxiliary loss, if any.
  kMhim,      ///< MHIM: a momentum teacher scores instances and masks them for the student.
};

/// Forward FLOPs (2 x multiply-adds) of one bag of `instances` rows of `dim` features.
using FlopFormula = double (*)(int64_t instances, int64_t dim);

/// One model of the catalogue.
struct ModelInfo {
  std::string name;                                    ///< ModelSpec::name, e.g. "abmil".
  std::string summary;                                 ///< One line for --help listings.
  std::vector<std::string> option_keys;                ///< Every key ModelSpec::options may hold.
  ObjectiveKind objective = ObjectiveKind::kTaskLoss;  ///< What training needs.
  bool reference_zoo = false;  ///< A stand-alone model of the reference (`mhim bench models`).
  /// Relative cost of one instance through the model (abmil = 1); 0 where none is known.
  double cost_factor = 0;
  FlopFormula forward_flops = nullptr;  ///< Null where the arithmetic was not written down.
};

/// Every model, in the order --help lists them.
const std::vector<ModelInfo>& model_catalog();

/// The model called `name`, or null.
const ModelInfo* find_model(const std::string& name);

/// The model called `name`; throws std::runtime_error naming it and listing the known names.
const ModelInfo& model_info(const std::string& name);

/// The catalogue's names joined by `separator`, e.g. "abmil, gabmil, ...".
std::string model_names(const std::string& separator = ", ");

}  // namespace mil
