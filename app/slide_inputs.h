#pragma once
// What `mhim predict` and `mhim heatmap` read: one feature file or a folder of them, the slides'
// labels when the folder is a dataset that names its label file (dataset.json, or labels.csv),
// each slide's coordinates and instance truth, and the model with its weights.
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "mil/core/specs.h"
#include "mil/models/mil_model.h"
#include "mil/models/state_dict.h"

namespace mil::app {

/// The slides to read.
struct SlideInputs {
  std::vector<std::filesystem::path> files;  ///< Feature files, sorted.
  std::map<std::string, int> labels;         ///< Slide id -> label, when the dataset names them.
  std::string labels_source;                 ///< The label file they came from ("" when none).
  std::string note;  ///< Why there are no labels, when a label file could not be used.
};

/// `input` is a .pt/.h5 file or a folder. A folder's slides are its .pt/.h5 files and those of
/// its pt_files/ and h5_files/ (only the kind its dataset.json names, or only .h5 when `prefer_h5`
/// and it has any). Labels come from the dataset folder: `input` itself, or the folder above a
/// pt_files/ or h5_files/ folder (or above a file's folder of that name). Throws naming the input
/// when it has no feature files.
SlideInputs find_slide_inputs(const std::string& input, bool prefer_h5);

/// One slide as read from its file.
struct InputSlide {
  std::string id;  ///< The file's stem.
  std::string path;
  at::Tensor features;         ///< [N, D] float32.
  at::Tensor coords;           ///< [N, 2] int64 (.h5 with coords), else undefined.
  at::Tensor instance_labels;  ///< [N] uint8 truth, else undefined.
};

/// Reads one feature file with its coords and instance truth.
InputSlide read_input_slide(const std::filesystem::path& file);

/// Builds `spec` for inputs of `input_dim` and `classes` classes, loads `weights` strictly (naming
/// every bad key) and puts it in eval mode.
std::shared_ptr<MilModelImpl> load_trained_model(const ModelSpec& spec, const StateDict& weights,
                                                 int64_t input_dim, int classes);

}  // namespace mil::app
