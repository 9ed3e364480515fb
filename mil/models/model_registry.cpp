#include "mil/models/model_registry.h"

#include <map>
#include <stdexcept>

#include "mil/core/model_catalog.h"
#include "mil/mhim/mhim_objective.h"
#include "mil/models/abmil.h"
#include "mil/models/clam.h"
#include "mil/models/dsmil.h"
#include "mil/models/dtfd.h"
#include "mil/models/gated_abmil.h"
#include "mil/models/mean_max.h"
#include "mil/models/transmil.h"
#include "mil/train/trainer.h"

namespace mil {
namespace {

using ModelPtr = std::shared_ptr<MilModelImpl>;
/// Builds one model from its options (already known to name only keys of its catalogue entry).
using Builder = ModelPtr (*)(const nlohmann::json& options, int64_t input_dim, int64_t classes);

ModelPtr build_mhim(const nlohmann::json& options, int64_t input_dim, int64_t classes) {
  mhim_options_from_json(options);  // validates the training keys; the objective reads them again
  return std::make_shared<MhimNetworkImpl>(
      mhim_network_options_from_json(options, input_dim, classes));
}

/// One builder per catalogue entry, under the same name.
const std::map<std::string, Builder>& builders() {
  static const std::map<std::string, Builder> kBuilders = {
      {"abmil",
       [](const nlohmann::json& o, int64_t d, int64_t c) -> ModelPtr {
         return std::make_shared<AbmilImpl>(abmil_options_from_json(o, d, c));
       }},
      {"gabmil",
       [](const nlohmann::json& o, int64_t d, int64_t c) -> ModelPtr {
         return std::make_shared<GatedAbmilImpl>(gated_abmil_options_from_json(o, d, c));
       }},
      {"transmil",
       [](const nlohmann::json& o, int64_t d, int64_t c) -> ModelPtr {
         return std::make_shared<TransMilImpl>(transmil_options_from_json(o, d, c));
       }},
      {"dsmil",
       [](const nlohmann::json& o, int64_t d, int64_t c) -> ModelPtr {
         return std::make_shared<DsmilImpl>(dsmil_options_from_json(o, d, c));
       }},
      {"clam_sb",
       [](const nlohmann::json& o, int64_t d, int64_t c) -> ModelPtr {
         return std::make_shared<ClamImpl>(clam_options_from_json(o, d, c, /*multi_branch=*/false));
       }},
      {"clam_mb",
       [](const nlohmann::json& o, int64_t d, int64_t c) -> ModelPtr {
         return std::make_shared<ClamImpl>(clam_options_from_json(o, d, c, /*multi_branch=*/true));
       }},
      {"dtfd",
       [](const nlohmann::json& o, int64_t d, int64_t c) -> ModelPtr {
         return std::make_shared<DtfdImpl>(dtfd_options_from_json(o, d, c));
       }},
      {"meanmil",
       [](const nlohmann::json& o, int64_t d, int64_t c) -> ModelPtr {
         return std::make_shared<MeanMaxMilImpl>(mean_max_mil_options_from_json(o, d, c, "mean"));
       }},
      {"maxmil",
       [](const nlohmann::json& o, int64_t d, int64_t c) -> ModelPtr {
         return std::make_shared<MeanMaxMilImpl>(mean_max_mil_options_from_json(o, d, c, "max"));
       }},
      {"mhim_pure",
       [](const nlohmann::json& o, int64_t d, int64_t c) -> ModelPtr {
         return std::make_shared<MhimNetworkImpl>(mhim_network_options_from_json(o, d, c));
       }},
      {"mhim", build_mhim},
  };
  return kBuilders;
}

std::unique_ptr<TrainingObjective> make_mhim_objective(const ModelSpec& spec, MilModelImpl& model,
                                                       const ObjectiveSetup& setup) {
  auto* network = dynamic_cast<MhimNetworkImpl*>(&model);
  if (network == nullptr) {
    throw std::runtime_error("model '" + spec.name + "' did not build an MHIM network");
  }
  MhimOptions options = mhim_options_from_json(spec.options);
  if (!setup.teacher_init.empty()) options.teacher_init = setup.teacher_init;
  return std::make_unique<MhimObjective>(*network, options, setup.fold_index, setup.total_steps);
}

}  // namespace

std::shared_ptr<MilModelImpl> make_model(const ModelSpec& spec, int64_t input_dim,
                                         int64_t class_count) {
  const ModelInfo& info = model_info(spec.name);  // unknown names: an error listing the known ones
  const auto builder = builders().find(spec.name);
  if (builder == builders().end()) {
    throw std::runtime_error("model '" + spec.name + "' is in the catalogue but has no builder");
  }
  try {
    require_known_keys(spec.options, info.option_keys, "model '" + spec.name + "'.options");
    return builder->second(spec.options, input_dim, class_count);
  } catch (const std::exception& e) {
    throw std::runtime_error("building model '" + spec.name + "': " + e.what());
  }
}

std::unique_ptr<TrainingObjective> make_training_objective(const ModelSpec& spec,
                                                           MilModelImpl& model,
                                                           const ObjectiveSetup& setup) {
  switch (model_info(spec.name).objective) {
    case ObjectiveKind::kTaskLoss:
      return nullptr;
    case ObjectiveKind::kMhim:
      return make_mhim_objective(spec, model, setup);
  }
  throw std::logic_error("make_training_objective: unhandled objective of '" + spec.name + "'");
}

std::vector<std::string> buildable_models() {
  std::vector<std::string> names;
  for (const auto& entry : builders()) names.push_back(entry.first);
  return names;
}

}  // namespace mil
