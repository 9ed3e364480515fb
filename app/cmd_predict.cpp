// mhim predict: a trained model (ours or a PyTorch state_dict) on one bag or a folder of bags,
// writing bag logits and probabilities and per-instance scores (with patch coordinates from .h5)
// for heatmaps.
#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/utils.h>
#include <nlohmann/json.hpp>

#include "app/args.h"
#include "app/commands.h"
#include "mil/data/feature_io.h"
#include "mil/mhim/mhim_network.h"
#include "mil/models/mil_model.h"
#include "mil/models/model_registry.h"
#include "mil/models/state_dict.h"

namespace mil::app {
namespace {
namespace fs = std::filesystem;

constexpr const char* kHelp =
    R"(usage: mhim predict --model NAME --weights FILE --input PATH --out FILE [options]

Runs a trained model in eval mode on one bag (a .pt or .h5 feature file) or on every bag of a folder
(its pt_files/ and h5_files/, or the .pt/.h5 files in it) and writes, per bag, the logits, the class
probabilities, the predicted class and the model's per-instance scores (attention for ABMIL-style
models), with each instance's patch coordinates when the features came from a CLAM/TRIDENT .h5.
The weights are a state_dict: a job's model_best.pt, or a PyTorch torch.save(model.state_dict())
(also a checkpoint dict holding it under "model"); loading is strict and names every bad key.

options:
  --model NAME          model name as in a sweep (for an MHIM student use mhim_pure with the same
                        network options), one of:
                          @MODELS@
  --model-options JSON  the model's options as in the sweep (default {})
  --classes C           number of classes the model was trained with (default 2)
  --weights FILE        the state_dict
  --input PATH          a feature file or a folder of them
  --out FILE            .json: everything in one file; .csv: one row per bag, plus FILE with
                        .instances.csv (slide, index, x, y, score) beside it

example:
  mhim predict --model abmil --weights results/q/work/<job id>/model_best.pt \
      --input data/synth/pt_files --out predictions.csv
)";

/// The feature files to predict: `input` itself, or the .pt/.h5 files of a folder (and of its
/// pt_files/ and h5_files/), sorted by name.
std::vector<fs::path> feature_files(const fs::path& input) {
  if (fs::is_regular_file(input)) return {input};
  if (!fs::is_directory(input))
    throw std::runtime_error("--input '" + input.string() + "' does not exist");
  std::vector<fs::path> files;
  for (const fs::path& dir : {input, input / "pt_files", input / "h5_files"}) {
    if (!fs::is_directory(dir)) continue;
    for (const auto& entry : fs::directory_iterator(dir)) {
      const std::string ext = entry.path().extension().string();
      if (entry.is_regular_file() && (ext == ".pt" || ext == ".h5")) files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty())
    throw std::runtime_error("no .pt or .h5 feature files under '" + input.string() + "'");
  return files;
}

std::vector<double> to_vector(const at::Tensor& t) {
  const at::Tensor flat = t.detach().reshape({-1}).to(at::kDouble).contiguous();
  return std::vector<double>(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel());
}
}  // namespace

int cmd_predict(const Tokens& tokens) {
  if (!tokens.empty() && tokens[0] == "--help") {
    std::fputs(with_model_list(kHelp).c_str(), stdout);
    return 0;
  }
  try {
    const Args args(tokens, {"model", "model-options", "classes", "weights", "input", "out"}, {});
    const std::string out_path = args.require("out");
    const bool csv = fs::path(out_path).extension() == ".csv";
    if (!csv && fs::path(out_path).extension() != ".json")
      throw UsageError("--out must end in .json or .csv");
    const ModelSpec spec{args.require("model"),
                         nlohmann::json::parse(args.get("model-options", "{}"))};
    const int classes = args.get_int("classes", 2);
    const StateDict weights = read_state_dict(args.require("weights"));
    const std::vector<fs::path> files = feature_files(args.require("input"));

    std::shared_ptr<MilModelImpl> model;
    int64_t input_dim = -1;
    nlohmann::json bags = nlohmann::json::array();
    torch::NoGradGuard no_grad;
    for (const fs::path& file : files) {
      at::Tensor features, coords;
      if (file.extension() == ".h5") {
        H5Slide slide = read_h5_slide(file.string());
        features = slide.features;
        coords = slide.coords;
      } else {
        features = read_feature_file(file.string());
      }
      if (!model) {
        input_dim = features.size(1);
        model = make_model(spec, input_dim, classes);
        // Strict: throws naming every bad key. MHIM networks also take the reference's v1 and v2
        // names.
        const bool mhim = spec.name == "mhim" || spec.name == "mhim_pure";
        load_state_dict(*model, mhim ? from_reference_names(weights) : weights);
        model->eval();
      } else if (features.size(1) != input_dim) {
        throw std::runtime_error("'" + file.string() +
                                 "' has D = " + std::to_string(features.size(1)) +
                                 ", the first bag had " + std::to_string(input_dim));
      }
      const MilOutput out = model->forward(features);
      const at::Tensor probabilities = out.logits.softmax(1);
      nlohmann::json bag = {{"slide_id", file.stem().string()},
                            {"file", file.string()},
                            {"instances", features.size(0)},
                            {"logits", to_vector(out.logits)},
                            {"probabilities", to_vector(probabilities)},
                            {"predicted", probabilities.argmax(1).item<int64_t>()}};
      if (out.instance_scores.defined()) bag["instance_scores"] = to_vector(out.instance_scores);
      if (coords.defined()) {
        const at::Tensor c = coords.to(at::kLong).contiguous();
        std::vector<std::array<int64_t, 2>> xy;
        for (int64_t i = 0; i < c.size(0); ++i)
          xy.push_back({c[i][0].item<int64_t>(), c[i][1].item<int64_t>()});
        bag["coords"] = xy;
      }
      bags.push_back(std::move(bag));
    }

    if (!csv) {
      std::ofstream(out_path) << nlohmann::json{{"model", spec.name},
                                                {"options", spec.options},
                                                {"weights", args.require("weights")},
                                                {"bags", bags}}
                                     .dump(1)
                              << "\n";
    } else {
      std::ofstream bag_csv(out_path);
      bag_csv << "slide_id,instances,predicted";
      for (int c = 0; c < classes; ++c) bag_csv << ",logit_" << c;
      for (int c = 0; c < classes; ++c) bag_csv << ",prob_" << c;
      bag_csv << "\n";
      const std::string instances_path =
          (fs::path(out_path).replace_extension(".instances.csv")).string();
      std::ofstream instance_csv(instances_path);
      instance_csv << "slide_id,index,x,y,score\n";
      char number[32];
      for (const auto& bag : bags) {
        bag_csv << bag.at("slide_id").get<std::string>() << ',' << bag.at("instances") << ','
                << bag.at("predicted");
        for (const char* key : {"logits", "probabilities"}) {
          for (double v : bag.at(key)) {
            std::snprintf(number, sizeof number, "%.9g", v);
            bag_csv << ',' << number;
          }
        }
        bag_csv << "\n";
        if (!bag.contains("instance_scores")) continue;
        const auto& scores = bag.at("instance_scores");
        for (std::size_t i = 0; i < scores.size(); ++i) {
          std::snprintf(number, sizeof number, "%.9g", scores[i].get<double>());
          instance_csv << bag.at("slide_id").get<std::string>() << ',' << i << ',';
          if (bag.contains("coords"))
            instance_csv << bag["coords"][i][0] << ',' << bag["coords"][i][1];
          else
            instance_csv << ',';
          instance_csv << ',' << number << "\n";
        }
      }
    }
    std::printf("predicted %zu bags with %s; wrote %s\n", bags.size(), spec.name.c_str(),
                out_path.c_str());
    return 0;
  } catch (const UsageError& e) {
    return usage_failure("predict", e.what());
  }
}

}  // namespace mil::app
