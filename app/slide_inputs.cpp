#include "app/slide_inputs.h"

#include <algorithm>
#include <optional>
#include <stdexcept>

#include "mil/data/dataset_folder.h"
#include "mil/data/feature_io.h"
#include "mil/data/instance_labels.h"
#include "mil/mhim/mhim_network.h"
#include "mil/models/model_registry.h"

namespace mil::app {
namespace fs = std::filesystem;
namespace {

bool is_feature_folder_name(const fs::path& p) {
  const std::string name = p.filename().string();
  return name == "pt_files" || name == "h5_files";
}

/// The dataset folder `input` belongs to: itself, or the parent of a pt_files/ or h5_files/.
fs::path dataset_root(const fs::path& input) {
  fs::path dir = fs::is_regular_file(input) ? input.parent_path() : input;
  dir = dir.lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();
  if (is_feature_folder_name(dir)) return dir.parent_path();
  return dir;
}

std::vector<fs::path> files_with(const std::vector<fs::path>& dirs, const std::string& ext) {
  std::vector<fs::path> files;
  for (const fs::path& dir : dirs) {
    if (!fs::is_directory(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.is_regular_file() && entry.path().extension() == ext) files.push_back(entry.path());
    }
  }
  return files;
}

}  // namespace

SlideInputs find_slide_inputs(const std::string& input_text, bool prefer_h5) {
  const fs::path input(input_text);
  SlideInputs out;
  if (!fs::exists(input)) throw std::runtime_error("--input '" + input_text + "' does not exist");
  const fs::path root = dataset_root(input);
  std::optional<nlohmann::json> description = read_dataset_description(root.string());
  if (fs::is_regular_file(input)) {
    out.files = {input};
  } else {
    const std::vector<fs::path> dirs{input, input / "pt_files", input / "h5_files"};
    std::vector<fs::path> pt = files_with(dirs, ".pt"), h5 = files_with(dirs, ".h5");
    std::string kind = description && description->contains("features")
                           ? description->at("features").get<std::string>()
                           : "";
    if (kind != "pt" && kind != "h5") kind = prefer_h5 && !h5.empty() ? "h5" : "";
    if (kind == "pt") out.files = pt;
    if (kind == "h5") out.files = h5;
    if (kind.empty()) {
      out.files = pt;
      out.files.insert(out.files.end(), h5.begin(), h5.end());
    }
    std::sort(out.files.begin(), out.files.end());
    if (out.files.empty())
      throw std::runtime_error("no .pt or .h5 feature files under '" + input_text + "'");
  }
  // Labels of a dataset folder: its dataset.json names the label file (else labels.csv).
  const bool has_labels = description || fs::exists(root / "labels.csv");
  if (has_labels) {
    try {
      const DatasetSpec dataset = dataset_of_folder(root.string());
      std::vector<std::string> ids;
      for (const fs::path& f : out.files) ids.push_back(f.stem().string());
      out.labels = slide_labels(dataset, ids);
      if (!out.labels.empty())
        out.labels_source =
            (root / (dataset.labels.empty() ? "labels.csv" : dataset.labels)).string();
    } catch (const std::exception& e) {
      out.note = std::string("no slide labels: ") + e.what();
    }
  }
  return out;
}

InputSlide read_input_slide(const fs::path& file) {
  InputSlide s;
  s.id = file.stem().string();
  s.path = file.string();
  if (file.extension() == ".h5") {
    H5Slide slide = read_h5_slide(s.path);
    s.features = slide.features;
    s.coords = slide.coords;
  } else {
    s.features = read_feature_file(s.path);
  }
  s.instance_labels = read_instance_labels(s.path, s.features.size(0));
  return s;
}

std::shared_ptr<MilModelImpl> load_trained_model(const ModelSpec& spec, const StateDict& weights,
                                                 int64_t input_dim, int classes) {
  std::shared_ptr<MilModelImpl> model = make_model(spec, input_dim, classes);
  // Strict: throws naming every bad key. MHIM networks also take the reference's v1 and v2 names.
  const bool mhim = spec.name == "mhim" || spec.name == "mhim_pure";
  load_state_dict(*model, mhim ? from_reference_names(weights) : weights);
  model->eval();
  return model;
}

}  // namespace mil::app
