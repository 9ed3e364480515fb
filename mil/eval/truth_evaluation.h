#pragma once
// A trained model against the instance truth of the bags it is tested on: the metrics of
// mil/eval/instance_metrics.h from the model's own instance scores (eval mode) and its bag
// probabilities. What a job adds to its result as metrics.test_truth, only where truth exists.
#include <vector>

#include <c10/core/Device.h>
#include <nlohmann/json.hpp>

#include "mil/data/bag_dataset.h"
#include "mil/eval/instance_scores.h"
#include "mil/models/mil_model.h"

namespace mil {

/// truth_metrics_json() over the bags of `indices` that carry instance truth, with `kind` scores
/// for class 1, plus {"scores": kind's name, "bags": bags with truth}; null when no bag of
/// `indices` carries truth, the task is not binary, or the model gives no scores of that kind.
/// Restores the model's train/eval mode.
nlohmann::json evaluate_instance_truth(MilModelImpl& model, const std::vector<Bag>& bags,
                                       const std::vector<int>& indices, c10::Device device,
                                       ScoreKind kind = ScoreKind::kAttention);

}  // namespace mil
