#include "mil/data/dataset_folder.h"

#include <filesystem>
#include <stdexcept>

#include "mil/core/json_reader.h"
#include "mil/data/label_csv.h"

namespace mil {
namespace fs = std::filesystem;

std::optional<nlohmann::json> read_dataset_description(const std::string& root) {
  const fs::path path = fs::path(root) / kDatasetDescriptionName;
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  // Within kMaxJsonDocumentBytes and kMaxJsonDepth; errors name the file.
  nlohmann::json j = read_json_file(path.string());
  if (!j.is_object()) throw std::runtime_error("'" + path.string() + "' is not a JSON object");
  j["root"] = root;
  return j;
}

DatasetSpec dataset_of_folder(const std::string& root, const nlohmann::json& overrides) {
  nlohmann::json j = read_dataset_description(root).value_or(nlohmann::json::object());
  std::string name = fs::path(root).lexically_normal().filename().string();
  if (name.empty()) name = fs::path(root).lexically_normal().parent_path().filename().string();
  if (!j.contains("name")) j["name"] = name;
  j["root"] = root;
  for (const auto& [key, value] : overrides.items()) j[key] = value;
  try {
    return j.get<DatasetSpec>();
  } catch (const std::exception& e) {
    const bool described = fs::exists(fs::path(root) / kDatasetDescriptionName);
    throw std::runtime_error(
        std::string(e.what()) +
        (described
             ? " (from " + (fs::path(root) / kDatasetDescriptionName).string() + " and the flags)"
             : ""));
  }
}

std::map<std::string, int> slide_labels(const DatasetSpec& dataset,
                                        const std::vector<std::string>& slide_ids) {
  std::map<std::string, int> out;
  if (dataset.kind != "bags") return out;
  const std::string path =
      (fs::path(dataset.root) / (dataset.labels.empty() ? "labels.csv" : dataset.labels)).string();
  for (const LabelRow& row : read_label_csv(path, dataset)) {
    if (dataset.slide_match != "substring") {
      out[row.id] = row.label;
      continue;
    }
    for (const std::string& slide : slide_ids) {
      if (slide.find(row.id) != std::string::npos) out[slide] = row.label;
    }
  }
  return out;
}

}  // namespace mil
