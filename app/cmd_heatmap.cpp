// mhim heatmap: what a trained model looked at, drawn on the slide: per-instance scores at their
// patch coordinates (PNG and SVG per slide) and an index page with each slide's bag probability.
#include <algorithm>
#include <array>
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
#include "app/cmd_heatmap.h"
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
  --model NAME          model name as in a sweep (for an MHIM student use mhim_pure with the same
                        network options), one of:
                          @MODELS@
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
                        range: linear from the slide's lowest to its highest score;
                        shared: one linear scale, lowest to highest score over all slides drawn,
                        so that slides compare (a negative slide stays cold); attention is then
                        drawn as a multiple of the uniform share (attention x instances, 1 = every
                        patch alike), so that bags of different sizes share the scale
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

/// What the flags ask for.
struct HeatmapRequest {
  ModelSpec spec;
  int classes = 2;
  int target_class = 1;  ///< The class whose probability is shown and scores are for.
  ScoreKind kind = ScoreKind::kAttention;
  heatmap::HeatmapStyle style;
  std::string thumbnail;   ///< --thumbnail: a PNG, a folder of <slide>.png, or "".
  double alpha = -1;       ///< --alpha; < 0: 1, or 0.5 over a thumbnail.
  int64_t patch_size = 0;  ///< --patch-size; 0: from the .h5 attributes.
  int64_t slide_width = 0, slide_height = 0;  ///< --slide-size; 0: from the .h5 or the patches.
  std::string weights, input;
  fs::path out_dir;
};

/// Whether attention is drawn as a multiple of the uniform share 1/N: on the shared scale, since
/// softmax attention sums to 1 over each bag and raw values of bags of different sizes are not on
/// one scale.
bool draws_attention_share(const HeatmapRequest& r) {
  return r.style.normalize == "shared" && r.kind == ScoreKind::kAttention;
}

/// --slide-size WxH, or 0 x 0 when absent.
std::array<int64_t, 2> parse_slide_size(const Args& args) {
  if (!args.has("slide-size")) return {0, 0};
  const std::string text = args.get("slide-size", "");
  long long w = 0, h = 0;
  if (std::sscanf(text.c_str(), "%lldx%lld", &w, &h) != 2 || w < 1 || h < 1)
    throw UsageError("--slide-size must be WIDTHxHEIGHT in level-0 pixels, e.g. 98304x73728");
  return {w, h};
}

/// The flags checked and read; throws UsageError naming the bad one.
HeatmapRequest parse_request(const Args& args) {
  if (!args.positional().empty())
    throw UsageError("unexpected argument '" + args.positional()[0] + "'");
  HeatmapRequest r;
  try {
    r.spec =
        ModelSpec{args.require("model"), nlohmann::json::parse(args.get("model-options", "{}"))};
  } catch (const nlohmann::json::exception& e) {
    throw UsageError("--model-options: not JSON: " + std::string(e.what()));
  }
  r.classes = args.get_int("classes", 2);
  r.target_class = args.get_int("class", 1);
  if (r.target_class < 0 || r.target_class >= r.classes)
    throw UsageError("--class must be in [0, " + std::to_string(r.classes) + ")");
  try {
    r.kind = parse_score_kind(args.get("scores", "attention"));
    r.style.colormap = args.get("colormap", r.style.colormap);
    heatmap::colour_at(r.style.colormap, 0);  // validates the name
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  r.style.normalize = args.get("normalize", r.style.normalize);
  if (r.style.normalize != "percentile" && r.style.normalize != "range" &&
      r.style.normalize != "shared")
    throw UsageError("--normalize must be percentile, range or shared");
  r.style.score_name = score_kind_name(r.kind);
  if (draws_attention_share(r)) r.style.score_name = "attention x instances";
  r.style.max_size = args.get_int("max-size", r.style.max_size);
  if (r.style.max_size < 16 || r.style.max_size > 16384)
    throw UsageError("--max-size must be in [16, 16384]");
  r.thumbnail = args.get("thumbnail", "");
  if (!r.thumbnail.empty() && !fs::exists(r.thumbnail))
    throw UsageError("--thumbnail '" + r.thumbnail + "' does not exist");
  r.alpha = args.get_double("alpha", -1);
  if (args.has("alpha") && !(r.alpha >= 0 && r.alpha <= 1))
    throw UsageError("--alpha must be in [0, 1]");
  r.patch_size = args.get_int("patch-size", 0);
  if (args.has("patch-size") && r.patch_size < 1) throw UsageError("--patch-size must be >= 1");
  const std::array<int64_t, 2> size = parse_slide_size(args);
  r.slide_width = size[0], r.slide_height = size[1];
  r.weights = args.require("weights");
  r.input = args.require("input");
  r.out_dir = args.require("out");
  return r;
}

/// One run of the command: each slide drawn in turn, then the index page.
class HeatmapRun {
 public:
  explicit HeatmapRun(HeatmapRequest request) : r_(std::move(request)) {}

  /// Draws every slide of the input and writes the index page; returns the exit code.
  int run() {
    const StateDict weights = read_state_dict(r_.weights);
    const SlideInputs inputs = find_slide_inputs(r_.input, /*prefer_h5=*/true);
    fs::create_directories(r_.out_dir);
    torch::NoGradGuard no_grad;
    std::vector<PreparedSlide> slides;
    for (const fs::path& file : inputs.files)
      slides.push_back(prepare_slide(read_input_slide(file), weights, inputs));
    heatmap::HeatmapStyle style = r_.style;
    if (style.normalize == "shared") {
      std::vector<const std::vector<double>*> scores;
      for (const PreparedSlide& s : slides) scores.push_back(&s.picture.scores);
      style.shared_range = heatmap::shared_score_range(scores);
    }
    for (const PreparedSlide& s : slides) draw_slide(s, style);
    const heatmap::IndexInfo info = index_info(style);
    write_file_atomic((r_.out_dir / "index.html").string(),
                      heatmap::render_index_html(info, entries_));
    std::printf("wrote %zu heatmaps (%s scores) and %s\n", entries_.size(), info.scores.c_str(),
                (r_.out_dir / "index.html").string().c_str());
    if (!info.summary.empty()) std::fputs(info.summary.c_str(), stdout);
    return 0;
  }

 private:
  /// The model's scores of `slide`, with its bag probabilities; builds the model on first use.
  ScoredBag score(const InputSlide& slide, const StateDict& weights) {
    if (!slide.coords.defined()) {
      throw std::runtime_error("'" + slide.path +
                               "' has no patch coordinates: heatmaps need .h5 features with a "
                               "coords dataset (CLAM/TRIDENT layout, or mhim synth --format h5)");
    }
    if (!model_) model_ = load_trained_model(r_.spec, weights, slide.features.size(1), r_.classes);
    ScoredBag scored;
    try {
      scored = score_instances(*model_, slide.features, r_.kind, r_.target_class);
    } catch (const std::invalid_argument& e) {
      throw UsageError(std::string("--scores ") + e.what() + " (model " + r_.spec.name + ")");
    }
    if (!scored.scores.defined())
      throw UsageError("model " + r_.spec.name + " gives no attention scores; try --scores logit");
    return scored;
  }

  /// Where the patches go: coordinates, patch size and (with a thumbnail) the slide's size.
  heatmap::SlideHeatmap place(const InputSlide& slide, bool with_thumbnail) const {
    heatmap::SlideHeatmap picture;
    picture.slide_id = slide.id;
    const at::Tensor c = slide.coords.to(at::kLong).contiguous();
    for (int64_t i = 0; i < c.size(0); ++i)
      picture.coords.push_back({c.data_ptr<int64_t>()[2 * i], c.data_ptr<int64_t>()[2 * i + 1]});
    const PatchGeometry geometry = read_patch_geometry(slide.path);
    picture.patch_size =
        r_.patch_size > 0 ? r_.patch_size : level0_patch_size(geometry, slide.path);
    picture.slide_width = r_.slide_width, picture.slide_height = r_.slide_height;
    if (with_thumbnail && r_.slide_width == 0 && geometry.level_width > 0) {
      const double down = geometry.downsample > 0 ? geometry.downsample : 1.0;
      picture.slide_width = int64_t(std::llround(double(geometry.level_width) * down));
      picture.slide_height = int64_t(std::llround(double(geometry.level_height) * down));
    }
    return picture;
  }

  /// Adds the slide's truth (witness counts, instance AUC) to its entry and to the run's metrics.
  void add_truth(const InputSlide& slide, const heatmap::SlideHeatmap& picture,
                 double positive_probability, heatmap::IndexEntry& entry) {
    if (!slide.instance_labels.defined()) return;
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
    ts.positive_probability = positive_probability;
    ts.scores = picture.scores;
    truth_slides_.push_back(std::move(ts));
  }

  /// One slide scored and placed, ready to draw once every slide's scores are known.
  struct PreparedSlide {
    heatmap::SlideHeatmap picture;
    heatmap::IndexEntry entry;
    fs::path thumbnail;
  };

  /// Scores `slide`, places its patches and fills its line on the index page.
  PreparedSlide prepare_slide(const InputSlide& slide, const StateDict& weights,
                              const SlideInputs& inputs) {
    const ScoredBag scored = score(slide, weights);
    const at::Tensor probabilities = scored.logits.softmax(1);
    PreparedSlide p;
    p.thumbnail = thumbnail_of(r_.thumbnail, slide.id);
    p.picture = place(slide, !p.thumbnail.empty());
    p.picture.scores = to_vector(scored.scores);
    if (draws_attention_share(r_)) {
      for (double& v : p.picture.scores) v *= double(p.picture.scores.size());
    }
    heatmap::IndexEntry& entry = p.entry;
    entry.slide_id = slide.id;
    entry.png = slide.id + ".png";
    entry.svg = slide.id + ".svg";
    entry.instances = slide.features.size(0);
    entry.probability = probabilities[0][r_.target_class].item<double>();
    entry.predicted = int(probabilities.argmax(1).item<int64_t>());
    p.picture.caption = "P(class " + std::to_string(r_.target_class) +
                        ") = " + fixed(entry.probability) + ", predicted " +
                        std::to_string(entry.predicted);
    if (const auto it = inputs.labels.find(slide.id); it != inputs.labels.end()) {
      entry.label = it->second;
      p.picture.caption += ", label " + std::to_string(it->second);
    }
    add_truth(slide, p.picture, probabilities[0][std::min(1, r_.classes - 1)].item<double>(),
              entry);
    return p;
  }

  /// The PNG and SVG of one prepared slide, and its line on the index page.
  void draw_slide(const PreparedSlide& p, heatmap::HeatmapStyle style) {
    heatmap::Image thumbnail;
    if (!p.thumbnail.empty()) {
      thumbnail = heatmap::read_png(p.thumbnail.string());
      style.thumbnail = &thumbnail;
    }
    style.alpha = r_.alpha >= 0 ? r_.alpha : (style.thumbnail ? 0.5 : 1.0);
    write_png((r_.out_dir / p.entry.png).string(), heatmap::render_png(p.picture, style));
    const std::string thumbnail_bytes = p.thumbnail.empty() ? "" : read_bytes(p.thumbnail);
    write_file_atomic((r_.out_dir / p.entry.svg).string(),
                      heatmap::render_svg(p.picture, style, thumbnail_bytes));
    entries_.push_back(p.entry);
  }

  /// The page's header, with the instance-truth metrics over the slides that have truth.
  heatmap::IndexInfo index_info(const heatmap::HeatmapStyle& style) const {
    heatmap::IndexInfo info;
    info.title = "Heatmaps: " + r_.spec.name + " on " + r_.input;
    info.model = r_.spec.name;
    info.weights = r_.weights;
    info.scores = style.score_name;
    info.target_class = r_.target_class;
    info.normalize = style.normalize == "percentile" ? "percentile within each slide"
                     : style.normalize == "range"    ? "each slide's lowest to highest score"
                                                     : "one scale for all slides, " +
                                                        fixed(style.shared_range[0]) + " to " +
                                                        fixed(style.shared_range[1]);
    info.colormap = r_.style.colormap;
    if (truth_slides_.empty()) return info;
    const TruthMetrics m = truth_metrics(truth_slides_);
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
    return info;
  }

  const HeatmapRequest r_;
  std::shared_ptr<MilModelImpl> model_;
  std::vector<heatmap::IndexEntry> entries_;
  std::vector<TruthSlide> truth_slides_;
};

}  // namespace

int cmd_heatmap(const Tokens& tokens) {
  if (!tokens.empty() && tokens[0] == "--help")
    return std::fputs(with_model_list(kHelp).c_str(), stdout), 0;
  try {
    const Args args(
        tokens,
        {"model", "model-options", "classes", "weights", "input", "out", "scores", "class",
         "normalize", "colormap", "patch-size", "thumbnail", "slide-size", "alpha", "max-size"},
        {});
    return HeatmapRun(parse_request(args)).run();
  } catch (const UsageError& e) {
    return usage_failure("heatmap", e.what());
  }
}

}  // namespace mil::app
