#pragma once
// One slide's instance scores drawn at their patches: a PNG (raster, with a legend drawn in a
// small bitmap font) and a self-contained SVG (one rectangle per patch with its score as a
// tooltip, a gradient legend, the thumbnail embedded as a data URI), sharing one layout. No
// LibTorch: scores and coordinates come in as plain vectors.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "mil/core/markup.h"
#include "mil/heatmap/image.h"

namespace mil::heatmap {

/// What to draw for one slide.
struct SlideHeatmap {
  std::string slide_id;
  std::vector<std::array<int64_t, 2>> coords;  ///< Level-0 top-left corner (x, y) of each patch.
  std::vector<double> scores;                  ///< One per patch, same order (NaN: drawn grey).
  int64_t patch_size = 256;                    ///< Side of a patch in level-0 pixels.
  /// Level-0 size of the whole slide, which a thumbnail spans; 0 = up to the patches' far edge.
  int64_t slide_width = 0, slide_height = 0;
  std::string caption;  ///< Second title line, e.g. "P(CLASS 1) = 0.931, PREDICTED 1".
};

/// How to draw it.
struct HeatmapStyle {
  std::string colormap = "viridis";  ///< colormap_names(): viridis or magma.
  /// "percentile": each score's rank within the slide, 0 (lowest) to 1 (highest), ties sharing
  /// their mean rank, as CLAM's heatmaps; "range": linear from the slide's lowest to its highest
  /// score; "shared": linear over `shared_range`, one scale for every slide of a run, so that
  /// slides compare (the two per-slide scales make every slide's top patches look hot, a negative
  /// slide's too); scores outside it are clamped to its ends.
  std::string normalize = "percentile";
  std::array<double, 2> shared_range{0.0, 0.0};  ///< [low, high] of "shared".
  std::string score_name = "attention";  ///< What the scores are, for the legend.
  double alpha = 1.0;                ///< Opacity of the patches over the background or thumbnail.
  int max_size = 1024;               ///< Longest side of the map area, in pixels.
  const Image* thumbnail = nullptr;  ///< Drawn under the patches over the whole slide; may be null.
};

/// Where things go, in output pixels.
struct HeatmapLayout {
  int64_t view_x = 0, view_y = 0;                           ///< Level-0 origin of the map area.
  int64_t view_width = 0, view_height = 0;                  ///< Level-0 size the map area shows.
  double scale = 1;                                         ///< Output pixels per level-0 pixel.
  int map_x = 0, map_y = 0, map_width = 0, map_height = 0;  ///< The map area.
  int bar_x = 0, bar_y = 0, bar_width = 0, bar_height = 0;  ///< The legend's colour bar.
  int width = 0, height = 0;                                ///< The whole picture.
};

/// The layout of `slide` in `style`: the map shows the whole slide when there is a thumbnail or a
/// slide size, else the patches' bounding box, scaled so its longest side is style.max_size.
/// Throws std::invalid_argument when the slide has no patches or coords and scores differ in size.
HeatmapLayout heatmap_layout(const SlideHeatmap& slide, const HeatmapStyle& style);

/// Output pixels [x0, x1) x [y0, y1) of the patch at level-0 (x, y): adjacent patches share their
/// edge, none is thinner than a pixel.
std::array<int, 4> patch_pixels(const HeatmapLayout& layout, int64_t x, int64_t y,
                                int64_t patch_size);

/// Scores mapped to [0, 1] as `normalize` says (NaN stays NaN; a constant slide maps to 1, and
/// so does every score when `shared_range` is empty). `shared_range` is used by "shared" only.
std::vector<double> normalized_scores(const std::vector<double>& scores,
                                      const std::string& normalize,
                                      std::array<double, 2> shared_range = {0.0, 0.0});

/// The finite minimum and maximum over several slides' scores ({0, 0} when there is none): the
/// range of "shared".
std::array<double, 2> shared_score_range(const std::vector<const std::vector<double>*>& slides);

/// The PNG picture: title, map, colour bar with ticks, and a caption naming scores and scale.
Image render_png(const SlideHeatmap& slide, const HeatmapStyle& style);

/// The same picture as a self-contained SVG document. `thumbnail_png` holds the thumbnail's PNG
/// file bytes to embed (empty: none).
std::string render_svg(const SlideHeatmap& slide, const HeatmapStyle& style,
                       const std::string& thumbnail_png);

/// RFC 4648 base64 of `bytes`.
std::string base64(const std::string& bytes);

}  // namespace mil::heatmap
