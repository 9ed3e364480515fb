#include "mil/heatmap/heatmap.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <stdexcept>

#include "mil/heatmap/bitmap_font.h"

namespace mil::heatmap {
namespace {

constexpr int kMargin = 16;         ///< Around everything.
constexpr int kTextScale = 2;       ///< Bitmap-font pixels per glyph pixel.
constexpr int kLineGap = 6;         ///< Between text lines.
constexpr int kBarWidth = 16;       ///< The legend's colour bar.
constexpr int kBarGap = 20;         ///< Between the map and the bar.
constexpr int kMinBarHeight = 160;  ///< The bar is at least this tall, even beside a small map.
constexpr int kTicks = 5;           ///< Labelled ticks on the bar (bottom, quarters, top).
const Rgb kInk{34, 34, 34};
const Rgb kNoTissue{242, 242, 242};  ///< Map area where no patch lies.
const Rgb kFrame{200, 200, 200};
const Rgb kMissing{160, 160, 160};  ///< A patch whose score is NaN.

std::string upper(std::string s) {
  for (char& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string format_number(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3g", v);
  return text;
}

/// The finite minimum and maximum over every score of `slides` ({0, 0} when there is none).
std::array<double, 2> finite_range(const std::vector<const std::vector<double>*>& slides) {
  double lo = INFINITY, hi = -INFINITY;
  for (const std::vector<double>* scores : slides) {
    for (double s : *scores) {
      if (std::isfinite(s)) lo = std::min(lo, s), hi = std::max(hi, s);
    }
  }
  return std::isfinite(lo) ? std::array<double, 2>{lo, hi} : std::array<double, 2>{0.0, 0.0};
}

/// The [low, high] a linear scale ("range" or "shared") maps to [0, 1] for `scores`.
std::array<double, 2> linear_range(const std::vector<double>& scores, const std::string& normalize,
                                   std::array<double, 2> shared_range) {
  return normalize == "shared" ? shared_range : finite_range({&scores});
}

/// Tick labels of the colour bar, bottom (0) to top (1).
std::vector<std::string> tick_labels(const SlideHeatmap& slide, const HeatmapStyle& style) {
  std::vector<std::string> labels;
  const auto [lo, hi] = linear_range(slide.scores, style.normalize, style.shared_range);
  for (int k = 0; k < kTicks; ++k) {
    const double t = double(k) / (kTicks - 1);
    labels.push_back(style.normalize == "percentile"
                         ? std::to_string(int(std::lround(100 * t))) + "%"
                         : format_number(lo + t * (hi - lo)));
  }
  return labels;
}

std::string title_line(const SlideHeatmap& slide) { return "SLIDE " + slide.slide_id; }

/// "ATTENTION: PERCENTILE WITHIN THE SLIDE, VIRIDIS".
std::string legend_caption(const HeatmapStyle& style) {
  const std::string scale = style.normalize == "percentile" ? "percentile within the slide"
                            : style.normalize == "shared"   ? "one scale for all slides"
                                                            : "slide's lowest to highest score";
  return style.score_name + ": " + scale + ", " + style.colormap;
}

}  // namespace

HeatmapLayout heatmap_layout(const SlideHeatmap& slide, const HeatmapStyle& style) {
  if (slide.coords.empty())
    throw std::invalid_argument("heatmap of '" + slide.slide_id + "': no patches");
  if (slide.coords.size() != slide.scores.size()) {
    throw std::invalid_argument("heatmap of '" + slide.slide_id +
                                "': " + std::to_string(slide.coords.size()) + " patches but " +
                                std::to_string(slide.scores.size()) + " scores");
  }
  if (slide.patch_size < 1 || style.max_size < 16)
    throw std::invalid_argument("heatmap: need patch_size >= 1 and max_size >= 16");
  HeatmapLayout l;
  int64_t x0 = slide.coords[0][0], y0 = slide.coords[0][1], x1 = x0, y1 = y0;
  for (const auto& c : slide.coords) {
    x0 = std::min(x0, c[0]), y0 = std::min(y0, c[1]);
    x1 = std::max(x1, c[0]), y1 = std::max(y1, c[1]);
  }
  x1 += slide.patch_size, y1 += slide.patch_size;
  if (style.thumbnail != nullptr || slide.slide_width > 0 || slide.slide_height > 0) {
    l.view_x = 0, l.view_y = 0;  // the whole slide, which a thumbnail spans
    l.view_width = slide.slide_width > 0 ? slide.slide_width : x1;
    l.view_height = slide.slide_height > 0 ? slide.slide_height : y1;
  } else {
    l.view_x = x0, l.view_y = y0, l.view_width = x1 - x0, l.view_height = y1 - y0;
  }
  l.scale = double(style.max_size) / double(std::max(l.view_width, l.view_height));
  l.map_width = std::max(1, int(std::ceil(double(l.view_width) * l.scale)));
  l.map_height = std::max(1, int(std::ceil(double(l.view_height) * l.scale)));
  const int line = text_height(kTextScale);
  l.map_x = kMargin;
  l.map_y = kMargin + 2 * line + kLineGap + 2 * kLineGap;
  l.bar_x = l.map_x + l.map_width + kBarGap;
  l.bar_y = l.map_y;
  l.bar_width = kBarWidth;
  l.bar_height = std::max(kMinBarHeight, std::min(l.map_height, 4 * kMinBarHeight));
  int label_width = 0;
  for (const std::string& label : tick_labels(slide, style))
    label_width = std::max(label_width, text_width(label, kTextScale));
  const int text_width_needed = std::max({text_width(upper(title_line(slide)), kTextScale),
                                          text_width(upper(slide.caption), kTextScale),
                                          text_width(upper(legend_caption(style)), kTextScale)});
  l.width = std::max(l.bar_x + l.bar_width + kLineGap + label_width + kMargin,
                     kMargin + text_width_needed + kMargin);
  l.height =
      l.map_y + std::max(l.map_height, l.bar_height + line / 2) + 2 * kLineGap + line + kMargin;
  return l;
}

std::array<int, 4> patch_pixels(const HeatmapLayout& l, int64_t x, int64_t y, int64_t patch) {
  const auto edge = [&l](int64_t level0, int64_t origin, int map_origin) {
    return map_origin + int(std::floor(double(level0 - origin) * l.scale));
  };
  const int px0 = edge(x, l.view_x, l.map_x), py0 = edge(y, l.view_y, l.map_y);
  const int px1 = std::max(px0 + 1, edge(x + patch, l.view_x, l.map_x));
  const int py1 = std::max(py0 + 1, edge(y + patch, l.view_y, l.map_y));
  return {px0, py0, px1, py1};
}

std::array<double, 2> shared_score_range(const std::vector<const std::vector<double>*>& slides) {
  return finite_range(slides);
}

std::vector<double> normalized_scores(const std::vector<double>& scores,
                                      const std::string& normalize,
                                      std::array<double, 2> shared_range) {
  std::vector<double> out(scores.size(), NAN);
  if (normalize == "range" || normalize == "shared") {
    const auto [lo, hi] = linear_range(scores, normalize, shared_range);
    for (std::size_t i = 0; i < scores.size(); ++i) {
      if (std::isfinite(scores[i]))
        out[i] = hi > lo ? std::clamp((scores[i] - lo) / (hi - lo), 0.0, 1.0) : 1.0;
    }
    return out;
  }
  if (normalize != "percentile") {
    throw std::invalid_argument("normalize must be percentile, range or shared, not '" +
                                normalize + "'");
  }
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    if (std::isfinite(scores[i])) order.push_back(i);
  }
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return scores[a] < scores[b]; });
  const double n = double(order.size());
  for (std::size_t i = 0; i < order.size();) {
    std::size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) ++j;
    const double mean_rank = (double(i) + double(j - 1)) / 2.0;  // 0-based, ties averaged
    for (std::size_t k = i; k < j; ++k) out[order[k]] = n > 1 ? mean_rank / (n - 1) : 1.0;
    i = j;
  }
  return out;
}

Image render_png(const SlideHeatmap& slide, const HeatmapStyle& style) {
  const HeatmapLayout l = heatmap_layout(slide, style);
  Image image(l.width, l.height, Rgb{255, 255, 255});
  const int line = text_height(kTextScale);
  draw_text(image, kMargin, kMargin, upper(title_line(slide)), kTextScale, kInk);
  draw_text(image, kMargin, kMargin + line + kLineGap, upper(slide.caption), kTextScale, kInk);

  fill_rect(image, l.map_x - 1, l.map_y - 1, l.map_x + l.map_width + 1, l.map_y + l.map_height + 1,
            kFrame);
  fill_rect(image, l.map_x, l.map_y, l.map_x + l.map_width, l.map_y + l.map_height, kNoTissue);
  if (style.thumbnail != nullptr)
    draw_scaled(image, *style.thumbnail, l.map_x, l.map_y, l.map_width, l.map_height);
  const std::vector<double> t =
      normalized_scores(slide.scores, style.normalize, style.shared_range);
  for (std::size_t i = 0; i < slide.coords.size(); ++i) {
    const auto [x0, y0, x1, y1] =
        patch_pixels(l, slide.coords[i][0], slide.coords[i][1], slide.patch_size);
    const Rgb colour = std::isfinite(t[i]) ? colour_at(style.colormap, t[i]) : kMissing;
    fill_rect(image, x0, y0, x1, y1, colour, style.alpha);
  }

  // Colour bar: top = highest score.
  fill_rect(image, l.bar_x - 1, l.bar_y - 1, l.bar_x + l.bar_width + 1, l.bar_y + l.bar_height + 1,
            kInk);
  for (int y = 0; y < l.bar_height; ++y) {
    const double v = 1.0 - (double(y) + 0.5) / double(l.bar_height);
    fill_rect(image, l.bar_x, l.bar_y + y, l.bar_x + l.bar_width, l.bar_y + y + 1,
              colour_at(style.colormap, v));
  }
  const std::vector<std::string> labels = tick_labels(slide, style);
  for (int k = 0; k < kTicks; ++k) {
    const int y = l.bar_y + int(std::lround((1.0 - double(k) / (kTicks - 1)) * (l.bar_height - 1)));
    fill_rect(image, l.bar_x + l.bar_width, y, l.bar_x + l.bar_width + 4, y + 1, kInk);
    draw_text(image, l.bar_x + l.bar_width + kLineGap, y - line / 2, labels[std::size_t(k)],
              kTextScale, kInk);
  }
  draw_text(image, kMargin, l.height - kMargin - line, upper(legend_caption(style)), kTextScale,
            kInk);
  return image;
}

std::string render_svg(const SlideHeatmap& slide, const HeatmapStyle& style,
                       const std::string& thumbnail_png) {
  const HeatmapLayout l = heatmap_layout(slide, style);
  const int line = text_height(kTextScale);
  std::string s;
  s.reserve(256 + slide.coords.size() * 110);
  char buf[512];
  std::snprintf(buf, sizeof buf,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                "viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Arial, sans-serif\">\n",
                l.width, l.height, l.width, l.height);
  s += buf;
  s += "<title>" + escape_markup(title_line(slide) + " — " + slide.caption) + "</title>\n";
  s += "<rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n";
  std::snprintf(buf, sizeof buf, "<text x=\"%d\" y=\"%d\" font-size=\"16\" font-weight=\"600\">",
                kMargin, kMargin + line);
  s += buf + escape_markup(title_line(slide)) + "</text>\n";
  std::snprintf(buf, sizeof buf, "<text x=\"%d\" y=\"%d\" font-size=\"14\">", kMargin,
                kMargin + 2 * line + kLineGap);
  s += buf + escape_markup(slide.caption) + "</text>\n";
  std::snprintf(buf, sizeof buf,
                "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\" stroke=\"%s\"/>\n",
                l.map_x, l.map_y, l.map_width, l.map_height, hex(kNoTissue).c_str(),
                hex(kFrame).c_str());
  s += buf;
  // The map in level-0 coordinates: one unit = one slide pixel.
  std::snprintf(buf, sizeof buf,
                "<g transform=\"translate(%d %d) scale(%.9g) translate(%lld %lld)\">\n", l.map_x,
                l.map_y, l.scale, -(long long)l.view_x, -(long long)l.view_y);
  s += buf;
  if (!thumbnail_png.empty()) {
    std::snprintf(buf, sizeof buf,
                  "<image x=\"0\" y=\"0\" width=\"%lld\" height=\"%lld\" "
                  "preserveAspectRatio=\"none\" href=\"data:image/png;base64,",
                  (long long)l.view_width, (long long)l.view_height);
    s += buf + base64(thumbnail_png) + "\"/>\n";
  }
  std::snprintf(buf, sizeof buf, "<g opacity=\"%.3g\" shape-rendering=\"crispEdges\">\n",
                style.alpha);
  s += buf;
  const std::vector<double> t =
      normalized_scores(slide.scores, style.normalize, style.shared_range);
  for (std::size_t i = 0; i < slide.coords.size(); ++i) {
    const Rgb colour = std::isfinite(t[i]) ? colour_at(style.colormap, t[i]) : kMissing;
    std::snprintf(buf, sizeof buf,
                  "<rect x=\"%lld\" y=\"%lld\" width=\"%lld\" height=\"%lld\" fill=\"%s\">"
                  "<title>(%lld, %lld) %s %.6g</title></rect>\n",
                  (long long)slide.coords[i][0], (long long)slide.coords[i][1],
                  (long long)slide.patch_size, (long long)slide.patch_size, hex(colour).c_str(),
                  (long long)slide.coords[i][0], (long long)slide.coords[i][1],
                  escape_markup(style.score_name).c_str(), slide.scores[i]);
    s += buf;
  }
  s += "</g>\n</g>\n";
  // Legend: a gradient of the map's own colours, top = highest.
  s += "<defs><linearGradient id=\"scale\" x1=\"0\" y1=\"1\" x2=\"0\" y2=\"0\">";
  for (int k = 0; k <= 32; ++k) {
    const double v = double(k) / 32;
    std::snprintf(buf, sizeof buf, "<stop offset=\"%.4g\" stop-color=\"%s\"/>", v,
                  hex(colour_at(style.colormap, v)).c_str());
    s += buf;
  }
  s += "</linearGradient></defs>\n";
  std::snprintf(buf, sizeof buf,
                "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"url(#scale)\" "
                "stroke=\"%s\"/>\n",
                l.bar_x, l.bar_y, l.bar_width, l.bar_height, hex(kInk).c_str());
  s += buf;
  const std::vector<std::string> labels = tick_labels(slide, style);
  for (int k = 0; k < kTicks; ++k) {
    const int y = l.bar_y + int(std::lround((1.0 - double(k) / (kTicks - 1)) * (l.bar_height - 1)));
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\"/>"
                  "<text x=\"%d\" y=\"%d\" font-size=\"13\" dominant-baseline=\"middle\">",
                  l.bar_x + l.bar_width, y, l.bar_x + l.bar_width + 4, y, hex(kInk).c_str(),
                  l.bar_x + l.bar_width + kLineGap, y);
    s += buf + escape_markup(labels[std::size_t(k)]) + "</text>\n";
  }
  std::snprintf(buf, sizeof buf, "<text x=\"%d\" y=\"%d\" font-size=\"13\">", kMargin,
                l.height - kMargin);
  s += buf + escape_markup(legend_caption(style)) + "</text>\n</svg>\n";
  return s;
}

std::string base64(const std::string& bytes) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const unsigned v = (unsigned char)bytes[i] << 16 | (unsigned char)bytes[i + 1] << 8 |
                       (unsigned char)bytes[i + 2];
    out += kAlphabet[v >> 18], out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63], out += kAlphabet[v & 63];
  }
  if (i + 1 == bytes.size()) {
    const unsigned v = (unsigned char)bytes[i] << 16;
    out += kAlphabet[v >> 18], out += kAlphabet[(v >> 12) & 63], out += "==";
  } else if (i + 2 == bytes.size()) {
    const unsigned v = (unsigned char)bytes[i] << 16 | (unsigned char)bytes[i + 1] << 8;
    out += kAlphabet[v >> 18], out += kAlphabet[(v >> 12) & 63], out += kAlphabet[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

}  // namespace mil::heatmap
