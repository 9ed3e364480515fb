#pragma once
// A dataset folder that describes itself: `mhim synth` writes <root>/dataset.json, the dataset
// entry a sweep would hold (kind, label file, classes, label map, slide matching, features). Every
// command that takes a folder starts from it, so `mhim train --dataset DIR` on a stand-in whose
// labels are in label_c16.csv just works; flags given beside it override its fields.
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mil/core/specs.h"

namespace mil {

/// File name of a folder's own description.
inline constexpr const char* kDatasetDescriptionName = "dataset.json";

/// <root>/dataset.json as a dataset entry whose "root" is `root` (the folder may have moved since
/// it was written); nullopt when the folder has none. Throws naming the file when it is not a JSON
/// object.
std::optional<nlohmann::json> read_dataset_description(const std::string& root);

/// The dataset in folder `root`: its description when it has one, else the defaults (kind "bags",
/// labels.csv), with `overrides` (dataset entry fields, e.g. from flags) applied last; the name
/// defaults to the folder's name. Validated like a sweep's dataset (throws naming the field).
DatasetSpec dataset_of_folder(const std::string& root,
                              const nlohmann::json& overrides = nlohmann::json::object());

/// Slide id -> label of the dataset's label file ("bags" datasets: one row per slide, or every
/// slide whose name contains a row's id with slide_match "substring" among `slide_ids`); empty for
/// other kinds. Throws naming the label file when it cannot be read.
std::map<std::string, int> slide_labels(const DatasetSpec& dataset,
                                        const std::vector<std::string>& slide_ids);

}  // namespace mil
