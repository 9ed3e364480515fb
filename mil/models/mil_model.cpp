#include "mil/models/mil_model.h"

#include <stdexcept>

#include "mil/models/abmil.h"
#include "mil/models/gated_abmil.h"
#include "mil/models/transmil.h"

namespace mil {

std::shared_ptr<MilModelImpl> make_model(const ModelSpec& spec, int64_t input_dim, int64_t class_count) {
  try {
    if (spec.name == "abmil") {
      return std::make_shared<AbmilImpl>(abmil_options_from_json(spec.options, input_dim, class_count));
    }
    if (spec.name == "gabmil") {
      return std::make_shared<GatedAbmilImpl>(gated_abmil_options_from_json(spec.options, input_dim, class_count));
    }
    if (spec.name == "transmil") {
      return std::make_shared<TransMilImpl>(transmil_options_from_json(spec.options, input_dim, class_count));
    }
  } catch (const std::exception& e) {
    throw std::runtime_error("building model '" + spec.name + "': " + e.what());
  }
  throw std::runtime_error("unknown model '" + spec.name + "' (available: abmil, gabmil)");
}

int64_t count_trainable_parameters(const torch::nn::Module& module) {
  int64_t total = 0;
  for (const auto& p : module.parameters()) {
    if (p.requires_grad()) total += p.numel();
  }
  return total;
}

}  // namespace mil
