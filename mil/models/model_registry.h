#pragma once
// The builders of the models in the catalogue (mil/core/model_catalog.h): a model from its
// ModelSpec, and the training objective the catalogue says it needs. Every model the project
// trains is built here, and only here.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "mil/core/specs.h"
#include "mil/models/mil_model.h"

namespace mil {

class TrainingObjective;  // mil/train/trainer.h

/// Builds the model `spec.name` for inputs of `input_dim` and `class_count` outputs. Unknown names
/// or options are errors naming them.
std::shared_ptr<MilModelImpl> make_model(const ModelSpec& spec, int64_t input_dim,
                                         int64_t class_count);

/// What building a training objective needs to know about the run it serves.
struct ObjectiveSetup {
  int fold_index = 0;       ///< Fold of the run (a teacher folder holds one checkpoint per fold).
  int64_t total_steps = 0;  ///< Epochs x training bags: the horizon of MHIM's schedules.
  /// A teacher checkpoint found for this run (a sweep's baseline job), used in place of the
  /// model's own teacher_init option; empty: the option as given.
  std::string teacher_init;
};

/// The objective `model` (built by make_model from `spec`) trains with, as the catalogue's
/// ModelInfo::objective says: null for the task loss alone, the MHIM objective (a momentum teacher)
/// for "mhim". Throws naming the model when `model` is not what `spec` builds.
std::unique_ptr<TrainingObjective> make_training_objective(const ModelSpec& spec,
                                                           MilModelImpl& model,
                                                           const ObjectiveSetup& setup);

/// The names make_model builds, to check against the catalogue.
std::vector<std::string> buildable_models();

}  // namespace mil
