#include "mil/models/mil_model.h"

#include <stdexcept>

#include "mil/mhim/mhim_objective.h"
#include "mil/models/abmil.h"
#include "mil/models/clam.h"
#include "mil/models/dsmil.h"
#include "mil/models/dtfd.h"
#include "mil/models/gated_abmil.h"
#include "mil/models/mean_max.h"
#include "mil/models/transmil.h"

namespace mil {

std::shared_ptr<MilModelImpl> make_model(const ModelSpec& spec, int64_t input_dim,
                                         int64_t class_count) {
  try {
    if (spec.name == "abmil") {
      return std::make_shared<AbmilImpl>(
          abmil_options_from_json(spec.options, input_dim, class_count));
    }
    if (spec.name == "mhim_pure") {
      require_known_keys(spec.options, mhim_network_option_keys(), "model 'mhim_pure'.options");
      return std::make_shared<MhimNetworkImpl>(
          mhim_network_options_from_json(spec.options, input_dim, class_count));
    }
    if (spec.name == "mhim") {
      mhim_options_from_json(
          spec.options);  // validates the training keys; the trainer reads them again
      return std::make_shared<MhimNetworkImpl>(
          mhim_network_options_from_json(spec.options, input_dim, class_count));
    }
    if (spec.name == "gabmil") {
      return std::make_shared<GatedAbmilImpl>(
          gated_abmil_options_from_json(spec.options, input_dim, class_count));
    }
    if (spec.name == "dsmil") {
      return std::make_shared<DsmilImpl>(
          dsmil_options_from_json(spec.options, input_dim, class_count));
    }
    if (spec.name == "clam_sb" || spec.name == "clam_mb") {
      const bool multi_branch = spec.name == "clam_mb";
      return std::make_shared<ClamImpl>(
          clam_options_from_json(spec.options, input_dim, class_count, multi_branch));
    }
    if (spec.name == "dtfd") {
      return std::make_shared<DtfdImpl>(
          dtfd_options_from_json(spec.options, input_dim, class_count));
    }
    if (spec.name == "meanmil" || spec.name == "maxmil") {
      const std::string pooling = spec.name == "meanmil" ? "mean" : "max";
      return std::make_shared<MeanMaxMilImpl>(
          mean_max_mil_options_from_json(spec.options, input_dim, class_count, pooling));
    }
    if (spec.name == "transmil") {
      return std::make_shared<TransMilImpl>(
          transmil_options_from_json(spec.options, input_dim, class_count));
    }
  } catch (const std::exception& e) {
    throw std::runtime_error("building model '" + spec.name + "': " + e.what());
  }
  throw std::runtime_error("unknown model '" + spec.name +
                           "' (available: abmil, gabmil, transmil, dsmil, clam_sb, clam_mb, dtfd, "
                           "meanmil, maxmil, mhim_pure, mhim)");
}

int64_t count_trainable_parameters(const torch::nn::Module& module) {
  int64_t total = 0;
  for (const auto& p : module.parameters()) {
    if (p.requires_grad()) total += p.numel();
  }
  return total;
}

}  // namespace mil
