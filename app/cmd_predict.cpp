// mhim predict: a trained model (ours or a PyTorch state_dict) on one bag or a folder of bags,
// writing bag logits and probabilities and per-instance scores (with patch coordinates from .h5)
// for heatmaps; where the slides carry instance truth, how well the scores single out the
// witnesses.
#include <algorithm>
#include <array>
#include <cmath>
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
#include "app/slide_inputs.h"
#include "mil/data/instance_labels.h"
#include "mil/eval/instance_metrics.h"
#include "mil/eval/instance_scores.h"
#include "mil/models/mil_model.h"
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

Instance truth: where the slides carry it (mhim synth writes it: an .h5's instance_labels, or a
.pt's <slide>.instance_labels.csv), each bag also gets its hard and easy witness counts and the
within-slide instance AUC of its scores (witnesses against the other instances), and the run gets
the mean of those AUCs (all, hard and easy witnesses) and the slide AUC on the positive slides
that hold only hard witnesses against all negatives. Slide labels come from the folder's label file
(its dataset.json names it; else labels.csv), or, without one, from the truth (a slide with
witnesses is positive).

options:
  --model NAME          model name as in a sweep (for an MHIM student use mhim_pure with the same
                        network options), one of:
                          @MODELS@
  --model-options JSON  the model's options as in the sweep (default {})
  --classes C           number of classes the model was trained with (default 2)
  --weights FILE        the state_dict
  --input PATH          a feature file, a folder of them, or a dataset folder
  --scores KIND         attention (default), class-aware or logit (see mhim heatmap --help)
  --class C             the class class-aware and logit scores are for (default 1)
  --out FILE            .json: everything in one file; .csv: one row per bag, plus FILE with
                        .instances.csv (slide, index, x, y, score[, truth]) beside it and, with
                        truth, FILE with .truth.json (the run's instance-truth metrics)

example:
  mhim predict --model abmil --weights results/q/work/<job id>/model_best.pt \
      --input data/synth --out predictions.csv
)";

std::vector<double> to_vector(const at::Tensor& t) {
  const at::Tensor flat = t.detach().reshape({-1}).to(at::kDouble).contiguous();
  return std::vector<double>(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel());
}

std::string number(double v) {
  if (!std::isfinite(v)) return "";
  char text[32];
  std::snprintf(text, sizeof text, "%.9g", v);
  return text;
}

/// One bag's truth summary: witness counts and its within-slide instance AUCs.
nlohmann::json bag_truth(const std::vector<double>& scores,
                         const std::vector<std::uint8_t>& codes) {
  const std::vector<int64_t> counts = count_roles(
      at::from_blob(const_cast<std::uint8_t*>(codes.data()), {int64_t(codes.size())}, at::kByte));
  nlohmann::json j = {{"hard_witnesses", counts[kRoleHardWitness]},
                      {"easy_witnesses", counts[kRoleEasyWitness]}};
  const auto put = [&](const char* key, WitnessKind kind) {
    const double auc = within_slide_instance_auc(scores, codes, kind);
    if (std::isfinite(auc)) j[key] = auc;
  };
  put("instance_auc", WitnessKind::kAny);
  put("instance_auc_hard", WitnessKind::kHard);
  put("instance_auc_easy", WitnessKind::kEasy);
  return j;
}

/// One bag's output: logits, probabilities, scores, coords, label and, where the slide has truth,
/// its witness counts and AUCs (the slide is also added to `truth_slides`; `labels_inferred` is set
/// when its label had to come from the truth).
nlohmann::json describe_bag(const InputSlide& slide, const ScoredBag& scored,
                            const std::map<std::string, int>& labels, int classes,
                            std::vector<TruthSlide>& truth_slides, bool& labels_inferred) {
  const at::Tensor probabilities = scored.logits.softmax(1);
  nlohmann::json bag = {{"slide_id", slide.id},
                        {"file", slide.path},
                        {"instances", slide.features.size(0)},
                        {"logits", to_vector(scored.logits)},
                        {"probabilities", to_vector(probabilities)},
                        {"predicted", probabilities.argmax(1).item<int64_t>()}};
  const std::vector<double> scores =
      scored.scores.defined() ? to_vector(scored.scores) : std::vector<double>{};
  if (scored.scores.defined()) bag["instance_scores"] = scores;
  if (slide.coords.defined()) {
    const at::Tensor c = slide.coords.to(at::kLong).contiguous();
    std::vector<std::array<int64_t, 2>> xy;
    for (int64_t i = 0; i < c.size(0); ++i)
      xy.push_back({c[i][0].item<int64_t>(), c[i][1].item<int64_t>()});
    bag["coords"] = xy;
  }
  const auto label = labels.find(slide.id);
  if (label != labels.end()) bag["label"] = label->second;
  if (slide.instance_labels.defined() && scored.scores.defined()) {
    const at::Tensor t = slide.instance_labels.contiguous();
    std::vector<std::uint8_t> codes(t.data_ptr<std::uint8_t>(),
                                    t.data_ptr<std::uint8_t>() + t.numel());
    bag["truth"] = bag_truth(scores, codes);
    bag["instance_truth"] = codes;
    TruthSlide ts;
    ts.label = label != labels.end() ? label->second
                                     : int(std::any_of(codes.begin(), codes.end(), is_witness));
    labels_inferred |= label == labels.end();
    ts.positive_probability = probabilities[0][std::min(1, classes - 1)].item<double>();
    ts.scores = scores;
    ts.codes = std::move(codes);
    truth_slides.push_back(std::move(ts));
  }
  return bag;
}

/// The .csv output: one row per bag in `out_path` and one per instance in <out>.instances.csv;
/// the label and truth columns only where some bag has them.
void write_prediction_csv(const std::string& out_path, const nlohmann::json& bags, int classes,
                          bool any_label, bool any_truth) {
  std::ofstream bag_csv(out_path);
  bag_csv << "slide_id,instances,predicted";
  for (int c = 0; c < classes; ++c) bag_csv << ",logit_" << c;
  for (int c = 0; c < classes; ++c) bag_csv << ",prob_" << c;
  if (any_label) bag_csv << ",label";
  if (any_truth)
    bag_csv << ",hard_witnesses,easy_witnesses,instance_auc,instance_auc_hard,instance_auc_easy";
  bag_csv << "\n";
  const std::string instances_path =
      (fs::path(out_path).replace_extension(".instances.csv")).string();
  std::ofstream instance_csv(instances_path);
  instance_csv << "slide_id,index,x,y,score" << (any_truth ? ",truth" : "") << "\n";
  for (const auto& bag : bags) {
    bag_csv << bag.at("slide_id").get<std::string>() << ',' << bag.at("instances") << ','
            << bag.at("predicted");
    for (const char* key : {"logits", "probabilities"}) {
      for (double v : bag.at(key)) bag_csv << ',' << number(v);
    }
    if (any_label) bag_csv << ',' << (bag.contains("label") ? bag["label"].dump() : "");
    if (any_truth) {
      const nlohmann::json t = bag.value("truth", nlohmann::json::object());
      for (const char* key : {"hard_witnesses", "easy_witnesses"})
        bag_csv << ',' << (t.contains(key) ? t[key].dump() : "");
      for (const char* key : {"instance_auc", "instance_auc_hard", "instance_auc_easy"})
        bag_csv << ',' << (t.contains(key) ? number(t[key].get<double>()) : "");
    }
    bag_csv << "\n";
    if (!bag.contains("instance_scores")) continue;
    const auto& scores = bag.at("instance_scores");
    for (std::size_t i = 0; i < scores.size(); ++i) {
      instance_csv << bag.at("slide_id").get<std::string>() << ',' << i << ',';
      if (bag.contains("coords"))
        instance_csv << bag["coords"][i][0] << ',' << bag["coords"][i][1];
      else
        instance_csv << ',';
      instance_csv << ',' << number(scores[i].get<double>());
      if (any_truth)
        instance_csv << ','
                     << (bag.contains("instance_truth") ? bag["instance_truth"][i].dump() : "");
      instance_csv << "\n";
    }
  }
}

}  // namespace

int cmd_predict(const Tokens& tokens) {
  if (!tokens.empty() && tokens[0] == "--help") {
    std::fputs(with_model_list(kHelp).c_str(), stdout);
    return 0;
  }
  try {
    const Args args(
        tokens, {"model", "model-options", "classes", "weights", "input", "out", "scores", "class"},
        {});
    const std::string out_path = args.require("out");
    const bool csv = fs::path(out_path).extension() == ".csv";
    if (!csv && fs::path(out_path).extension() != ".json")
      throw UsageError("--out must end in .json or .csv");
    const ModelSpec spec{args.require("model"),
                         nlohmann::json::parse(args.get("model-options", "{}"))};
    const int classes = args.get_int("classes", 2);
    const int target_class = args.get_int("class", 1);
    if (target_class < 0 || target_class >= classes)
      throw UsageError("--class must be in [0, " + std::to_string(classes) + ")");
    ScoreKind kind = ScoreKind::kAttention;
    try {
      kind = parse_score_kind(args.get("scores", "attention"));
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--") + e.what());
    }
    const StateDict weights = read_state_dict(args.require("weights"));
    const SlideInputs inputs = find_slide_inputs(args.require("input"), /*prefer_h5=*/false);

    std::shared_ptr<MilModelImpl> model;
    int64_t input_dim = -1;
    nlohmann::json bags = nlohmann::json::array();
    std::vector<TruthSlide> truth_slides;
    bool labels_inferred = false;
    torch::NoGradGuard no_grad;
    for (const fs::path& file : inputs.files) {
      const InputSlide slide = read_input_slide(file);
      if (!model) {
        input_dim = slide.features.size(1);
        model = load_trained_model(spec, weights, input_dim, classes);
      } else if (slide.features.size(1) != input_dim) {
        throw std::runtime_error("'" + file.string() +
                                 "' has D = " + std::to_string(slide.features.size(1)) +
                                 ", the first bag had " + std::to_string(input_dim));
      }
      ScoredBag scored;
      try {
        scored = score_instances(*model, slide.features, kind, target_class);
      } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("--scores ") + e.what());
      }
      bags.push_back(
          describe_bag(slide, scored, inputs.labels, classes, truth_slides, labels_inferred));
    }

    nlohmann::json truth = nullptr;
    if (!truth_slides.empty()) {
      truth = truth_metrics_json(truth_metrics(truth_slides));
      truth["scores"] = score_kind_name(kind);
      truth["labels"] = labels_inferred ? "inferred from the truth (a slide with witnesses is 1)"
                                        : inputs.labels_source;
    }
    nlohmann::json header = {{"model", spec.name},
                             {"options", spec.options},
                             {"weights", args.require("weights")},
                             {"scores", score_kind_name(kind)},
                             {"class", target_class}};
    if (!csv) {
      header["bags"] = bags;
      if (!truth.is_null()) header["truth_metrics"] = truth;
      std::ofstream(out_path) << header.dump(1) << "\n";
    } else {
      write_prediction_csv(out_path, bags, classes, !inputs.labels.empty(), !truth_slides.empty());
      if (!truth.is_null()) {
        const std::string truth_path = fs::path(out_path).replace_extension(".truth.json").string();
        std::ofstream(truth_path) << truth.dump(2) << "\n";
      }
    }
    std::printf("predicted %zu bags with %s; wrote %s\n", bags.size(), spec.name.c_str(),
                out_path.c_str());
    if (!inputs.note.empty()) std::printf("%s\n", inputs.note.c_str());
    if (!truth.is_null()) {
      std::printf("instance truth on %zu slides (%s scores):", truth_slides.size(),
                  score_kind_name(kind).c_str());
      for (const char* key :
           {"instance_auc", "instance_auc_hard", "instance_auc_easy", "auc_hard_only"}) {
        if (truth.contains(key)) std::printf(" %s %.3f", key, truth[key].get<double>());
      }
      std::printf("\n");
    }
    return 0;
  } catch (const UsageError& e) {
    return usage_failure("predict", e.what());
  }
}

}  // namespace mil::app
