// mhim heatmap: what a trained model looked at, drawn on the slide: per-instance scores at their
// patch coordinates (PNG and SVG per slide) and an index page with each slide's bag probability.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <torch/utils.h>
#include <nlohmann/json.hpp>

#include "app/args.h"
#include "app/commands.h"
#include "app/slide_inputs.h"
#include "mil/core/durable_file.h"
#include "mil/data/feature_io.h"
#include "mil/data/instance_labels.h"
#include "mil/data/patch_geometry.h"
#include "mil/eval/instance_metrics.h"
#include "mil/eval/instance_scores.h"
#include "mil/heatmap/heatmap.h"
#include "mil/heatmap/index_page.h"

namespace mil::app {
namespace {
namespace fs = std::filesystem;

constexpr const char* kHelp =
    R"(usage: mhim heatmap --model NAME --weights FILE --input SLIDE.h5|FOLDER --out DIR [options]

Draws a trained model's per-instance scores at their patch coordinates: DIR/<slide>.png and a
self-contained DIR/<slide>.svg per slide (each patch a rectangle whose tooltip gives its coordinates
and score), on a perceptual colour map (brighter = higher) with a legend, optionally over a slide
thumbnail, and DIR/index.html: every slide's picture with its bag probability and predicted class
(and its label, witness counts and instance AUC where the folder has labels and instance truth).
The features must be .h5 files with coords (CLAM/TRIDENT layout, or mhim synth --format h5).

options:
  --model NAME          model name as in a sweep (abmil, gabmil, transmil, clam_sb, dsmil, ...,
                        mhim_pure; for an MHIM student use mhim_pure with the same network options)
  --model-options JSON  the model's options as in the sweep (default {})
  --classes C           number of classes the model was trained with (default 2)
  --weights FILE        the state_dict (a job's model_best.pt, or PyTorch's)
  --input PATH          one .h5, a folder of them, or a dataset folder (its h5_files/)
  --out DIR             output folder (created)
  --scores KIND         attention (default): the model's own instance scores (ABMIL-style softmax
                        attention; TransMIL: class-token attention, mean over heads);
                        class-aware: MHIM's class-aware instance probability for --class, the bag
                        classifier applied to each instance's contribution to the pooled embedding;
                        logit: --class's logit of each instance alone (the model's instance logits,
                        or its bag classifier applied to the instance's embedding)
  --class C             the class whose probability the page shows and class-aware/logit scores are
                        for (default 1)
  --normalize N         percentile (default): each patch's rank within its slide, as CLAM does;
                        range: linear from the slide's lowest to its highest score
  --colormap M          viridis (default) or magma
  --patch-size P        side of a patch in level-0 pixels (default: from the .h5 attributes:
                        patch_size_level0, or patch_size x downsample of patch_level)
  --thumbnail IMG       a PNG of the whole slide to draw under the patches (for a folder: a folder
                        of <slide>.png); it spans the slide's level-0 size (--slide-size, else the
                        .h5's level_dim x downsample, else up to the farthest patch)
  --slide-size WxH      level-0 size of the slide in pixels
  --alpha A             opacity of the patches (default 1, or 0.5 over a thumbnail)
  --max-size PX         longest side of the map in pixels (default 1024)

examples:
  mhim synth --out data/demo --format h5 --bags 40 --dim 32
  mhim train --dataset data/demo --epochs 20 --work-dir runs/demo
  mhim heatmap --model abmil --weights runs/demo/model_best.pt --input data/demo --out heatmaps
  mhim heatmap --model abmil --weights model_best.pt --input h5_files/tumor_001.h5 \
      --thumbnail thumbnails/tumor_001.png --out heatmaps --scores class-aware
)";

std::vector<double> to_vector(const at::Tensor& t) {
  const at::Tensor flat = t.detach().reshape({-1}).to(at::kDouble).contiguous();
  return std::vector<double>(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel());
}

std::string fixed(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", v);
  return text;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

/// The thumbnail of `slide`: --thumbnail itself (a file), or <dir>/<slide>.png (a folder).
fs::path thumbnail_of(const std::string& option, const std::string& slide) {
  if (option.empty()) return {};
  if (fs::is_directory(option)) {
    const fs::path p = fs::path(option) / (slide + ".png");
    return fs::exists(p) ? p : fs::path();
  }
  return option;
}

}  // namespace

int cmd_heatmap(const Tokens& tokens) {
  if (!tokens.empty() && tokens[0] == "--help") return std::fputs(kHelp, stdout), 0;
  try {
    const Args args(
        tokens,
        {"model", "model-options", "classes", "weights", "input", "out", "scores", "class",
         "normalize", "colormap", "patch-size", "thumbnail", "slide-size", "alpha", "max-size"},
        {});
    if (!args.positional().empty())
      throw UsageError("unexpected argument '" + args.positional()[0] + "'");
    nlohmann::json model_options;
    try {
      model_options = nlohmann::json::parse(args.get("model-options", "{}"));
    } catch (const nlohmann::json::exception& e) {
      throw UsageError("--model-options: not JSON: " + std::string(e.what()));
    }
    const ModelSpec spec{args.require("model"), model_options};
    const int classes = args.get_int("classes", 2);
    const int target_class = args.get_int("class", 1);
    if (target_class < 0 || target_class >= classes)
      throw UsageError("--class must be in [0, " + std::to_string(classes) + ")");
    ScoreKind kind = ScoreKind::kAttention;
    heatmap::HeatmapStyle style;
    try {
      kind = parse_score_kind(args.get("scores", "attention"));
      style.colormap = args.get("colormap", style.colormap);
      heatmap::colour_at(style.colormap, 0);  // validates the name
    } catch (const std::invalid_argument& e) {
      throw UsageError(e.what());
    }
    style.normalize = args.get("normalize", style.normalize);
    if (style.normalize != "percentile" && style.normalize != "range")
      throw UsageError("--normalize must be percentile or range");
    style.score_name = score_kind_name(kind);
    style.max_size = args.get_int("max-size", style.max_size);
    if (style.max_size < 16 || style.max_size > 16384)
      throw UsageError("--max-size must be in [16, 16384]");
    const std::string thumbnail_option = args.get("thumbnail", "");
    if (!thumbnail_option.empty() && !fs::exists(thumbnail_option))
      throw UsageError("--thumbnail '" + thumbnail_option + "' does not exist");
    const double alpha = args.get_double("alpha", -1);
    if (args.has("alpha") && !(alpha >= 0 && alpha <= 1))
      throw UsageError("--alpha must be in [0, 1]");
    const int64_t patch_flag = args.get_int("patch-size", 0);
    if (args.has("patch-size") && patch_flag < 1) throw UsageError("--patch-size must be >= 1");
    int64_t slide_width = 0, slide_height = 0;
    if (args.has("slide-size")) {
      const std::string text = args.get("slide-size", "");
      long long w = 0, h = 0;
      if (std::sscanf(text.c_str(), "%lldx%lld", &w, &h) != 2 || w < 1 || h < 1)
        throw UsageError("--slide-size must be WIDTHxHEIGHT in level-0 pixels, e.g. 98304x73728");
      slide_width = w, slide_height = h;
    }

    const fs::path out_dir = args.require("out");
    const StateDict weights = read_state_dict(args.require("weights"));
    const SlideInputs inputs = find_slide_inputs(args.require("input"), /*prefer_h5=*/true);
    fs::create_directories(out_dir);

    std::shared_ptr<MilModelImpl> model;
    torch::NoGradGuard no_grad;
    std::vector<heatmap::IndexEntry> entries;
    std::vector<TruthSlide> truth_slides;
    for (const fs::path& file : inputs.files) {
      const InputSlide slide = read_input_slide(file);
      if (!slide.coords.defined()) {
        throw std::runtime_error("'" + slide.path +
                                 "' has no patch coordinates: heatmaps need .h5 features with a "
                                 "coords dataset (CLAM/TRIDENT layout, or mhim synth --format h5)");
      }
      if (!model) model = load_trained_model(spec, weights, slide.features.size(1), classes);
      ScoredBag scored;
      try {
        scored = score_instances(*model, slide.features, kind, target_class);
      } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("--scores ") + e.what() + " (model " + spec.name + ")");
      }
      if (!scored.scores.defined())
        throw UsageError("model " + spec.name + " gives no attention scores; try --scores logit");
      const at::Tensor probabilities = scored.logits.softmax(1);
      const double probability = probabilities[0][target_class].item<double>();
      const int predicted = int(probabilities.argmax(1).item<int64_t>());

      heatmap::SlideHeatmap picture;
      picture.slide_id = slide.id;
      picture.scores = to_vector(scored.scores);
      const at::Tensor c = slide.coords.to(at::kLong).contiguous();
      for (int64_t i = 0; i < c.size(0); ++i)
        picture.coords.push_back({c.data_ptr<int64_t>()[2 * i], c.data_ptr<int64_t>()[2 * i + 1]});
      const PatchGeometry geometry = read_patch_geometry(slide.path);
      picture.patch_size = patch_flag > 0 ? patch_flag : level0_patch_size(geometry, slide.path);
      const fs::path thumbnail_path = thumbnail_of(thumbnail_option, slide.id);
      heatmap::Image thumbnail;
      if (!thumbnail_path.empty()) {
        thumbnail = heatmap::read_png(thumbnail_path.string());
        style.thumbnail = &thumbnail;
        if (slide_width > 0) {
          picture.slide_width = slide_width, picture.slide_height = slide_height;
        } else if (geometry.level_width > 0) {
          const double down = geometry.downsample > 0 ? geometry.downsample : 1.0;
          picture.slide_width = int64_t(std::llround(double(geometry.level_width) * down));
          picture.slide_height = int64_t(std::llround(double(geometry.level_height) * down));
        }
      } else {
        style.thumbnail = nullptr;
        picture.slide_width = slide_width, picture.slide_height = slide_height;
      }
      style.alpha = alpha >= 0 ? alpha : (style.thumbnail ? 0.5 : 1.0);
      picture.caption = "P(class " + std::to_string(target_class) + ") = " + fixed(probability) +
                        ", predicted " + std::to_string(predicted);

      heatmap::IndexEntry entry;
      entry.slide_id = slide.id;
      entry.png = slide.id + ".png";
      entry.svg = slide.id + ".svg";
      entry.instances = slide.features.size(0);
      entry.probability = probability;
      entry.predicted = predicted;
      if (const auto it = inputs.labels.find(slide.id); it != inputs.labels.end()) {
        entry.label = it->second;
        picture.caption += ", label " + std::to_string(it->second);
      }
      if (slide.instance_labels.defined()) {
        const at::Tensor t = slide.instance_labels.contiguous();
        TruthSlide ts;
        ts.codes.assign(t.data_ptr<std::uint8_t>(), t.data_ptr<std::uint8_t>() + t.numel());
        const std::vector<int64_t> counts = count_roles(t);
        entry.hard_witnesses = counts[kRoleHardWitness];
        entry.easy_witnesses = counts[kRoleEasyWitness];
        const double auc = within_slide_instance_auc(picture.scores, ts.codes, WitnessKind::kAny);
        if (std::isfinite(auc)) entry.instance_auc = auc;
        ts.label = entry.label >= 0 ? entry.label
                                    : int(counts[kRoleHardWitness] + counts[kRoleEasyWitness] > 0);
        ts.positive_probability = probabilities[0][std::min(1, classes - 1)].item<double>();
        ts.scores = picture.scores;
        truth_slides.push_back(std::move(ts));
      }
      write_png((out_dir / entry.png).string(), heatmap::render_png(picture, style));
      const std::string thumbnail_bytes = thumbnail_path.empty() ? "" : read_bytes(thumbnail_path);
      write_file_atomic((out_dir / entry.svg).string(),
                        heatmap::render_svg(picture, style, thumbnail_bytes));
      entries.push_back(entry);
    }

    heatmap::IndexInfo info;
    info.title = "Heatmaps: " + spec.name + " on " + args.require("input");
    info.model = spec.name;
    info.weights = args.require("weights");
    info.scores = score_kind_name(kind);
    info.target_class = target_class;
    info.normalize = style.normalize == "percentile" ? "percentile within each slide"
                                                     : "each slide's lowest to highest score";
    info.colormap = style.colormap;
    if (!truth_slides.empty()) {
      const TruthMetrics m = truth_metrics(truth_slides);
      const auto line = [](const char* what, double v, int n) {
        return std::string(what) + (std::isfinite(v) ? fixed(v) : "–") + " (" + std::to_string(n) +
               " slides)\n";
      };
      info.summary = "Instance truth, " + info.scores + " scores:\n" +
                     line("  instance AUC, all witnesses:  ", m.instance_auc, m.instance_slides) +
                     line("  instance AUC, hard witnesses: ", m.instance_auc_hard, m.hard_slides) +
                     line("  instance AUC, easy witnesses: ", m.instance_auc_easy, m.easy_slides) +
                     line("  slide AUC, hard-only positives vs negatives: ", m.auc_hard_only,
                          m.hard_only_positives + m.negatives);
    }
    write_file_atomic((out_dir / "index.html").string(), heatmap::render_index_html(info, entries));
    std::printf("wrote %zu heatmaps (%s scores) and %s\n", entries.size(), info.scores.c_str(),
                (out_dir / "index.html").string().c_str());
    if (!info.summary.empty()) std::fputs(info.summary.c_str(), stdout);
    return 0;
  } catch (const UsageError& e) {
    return usage_failure("heatmap", e.what());
  }
}

}  // namespace mil::app
