// The heatmap pictures, checked the way a reader would: write the PNG, read it back through
// libpng, and look at which pixels are hot.
#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>

#include "mil/heatmap/colormap.h"
#include "mil/heatmap/heatmap.h"
#include "mil/heatmap/image.h"
#include "mil/heatmap/index_page.h"
#include "tests/support/temp_dir.h"

namespace mil::heatmap {
namespace {

bool same(const std::uint8_t* p, Rgb c) { return p[0] == c.r && p[1] == c.g && p[2] == c.b; }

/// A slide of `columns` x `rows` patches of 256 px whose scores are 1 on `hot` cells, else 0.
SlideHeatmap grid_slide(int columns, int rows, const std::set<std::pair<int, int>>& hot) {
  SlideHeatmap s;
  s.slide_id = "slide_0007";
  s.caption = "P(class 1) = 0.931, predicted 1";
  for (int y = 0; y < rows; ++y) {
    for (int x = 0; x < columns; ++x) {
      // Offset as a real slide's tissue is: the map shows the patches' bounding box.
      s.coords.push_back({10000 + 256 * x, 5000 + 256 * y});
      s.scores.push_back(hot.count({x, y}) ? 1.0 : 0.0);
    }
  }
  return s;
}

TEST(Colormap, EndsAreThePublishedViridisAndMagmaColours) {
  // matplotlib's _viridis_data[0] = (0.267004, 0.004874, 0.329415) and [255] = (0.993248,
  // 0.906157, 0.143936); _magma_data[255] = (0.987053, 0.991438, 0.749504); x 255, rounded.
  const Rgb v0 = colour_at("viridis", 0), v1 = colour_at("viridis", 1);
  EXPECT_EQ(hex(v0), "#440154");
  EXPECT_EQ(hex(v1), "#fde725");
  EXPECT_EQ(hex(colour_at("magma", 1)), "#fcfdbf");
  EXPECT_EQ(hex(colour_at("viridis", std::nan(""))), "#440154");
  EXPECT_THROW(colour_at("jet", 0.5), std::invalid_argument);
}

TEST(Colormap, ViridisLightnessRisesMonotonically) {
  double last = -1;
  for (int i = 0; i < 256; ++i) {
    const Rgb c = colour_at("viridis", (i + 0.5) / 256);
    const double luma = 0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b;
    EXPECT_GE(luma, last - 0.6) << "entry " << i;  // 8-bit rounding wiggles by under a level
    last = luma;
  }
}

TEST(Heatmap, PercentileGivesTiesTheirMeanRank) {
  const std::vector<double> t = normalized_scores({3, 1, 2, 2}, "percentile");
  EXPECT_DOUBLE_EQ(t[0], 1.0);
  EXPECT_DOUBLE_EQ(t[1], 0.0);
  EXPECT_DOUBLE_EQ(t[2], 0.5);  // ranks 1 and 2 of 0..3 share 1.5, / 3
  EXPECT_DOUBLE_EQ(t[3], 0.5);
  const std::vector<double> r = normalized_scores({2, 4, 3}, "range");
  EXPECT_DOUBLE_EQ(r[0], 0.0);
  EXPECT_DOUBLE_EQ(r[1], 1.0);
  EXPECT_DOUBLE_EQ(r[2], 0.5);
}

TEST(Heatmap, SharedScaleIsOneLinearRangeOverEverySlideClampedAtItsEnds) {
  const std::vector<double> a{1, NAN, 3}, b{-2, 0}, none{NAN};
  const std::array<double, 2> range = shared_score_range({&a, &b, &none});
  EXPECT_DOUBLE_EQ(range[0], -2.0);
  EXPECT_DOUBLE_EQ(range[1], 3.0);
  EXPECT_EQ(shared_score_range({&none}), (std::array<double, 2>{0.0, 0.0}));
  // Slide b alone, on the shared scale: not stretched to its own 0..1 as "range" would.
  const std::vector<double> t = normalized_scores(b, "shared", range);
  EXPECT_DOUBLE_EQ(t[0], 0.0);
  EXPECT_DOUBLE_EQ(t[1], 0.4);
  const std::vector<double> c = normalized_scores({0, 5, 7.5, 10, 15, NAN}, "shared", {5, 10});
  EXPECT_DOUBLE_EQ(c[0], 0.0);  // below the range: clamped
  EXPECT_DOUBLE_EQ(c[2], 0.5);
  EXPECT_DOUBLE_EQ(c[4], 1.0);  // above: clamped
  EXPECT_TRUE(std::isnan(c[5]));
  EXPECT_DOUBLE_EQ(normalized_scores({2, 2}, "shared", {2, 2})[0], 1.0);  // an empty range
  EXPECT_THROW(normalized_scores({1}, "global"), std::invalid_argument);
}

TEST(Heatmap, HotPixelsOfTheReadBackPngCoverExactlyTheWitnessRegion) {
  // An L-shaped witness region on a 16 x 8 grid: 4096 x 2048 level-0 px drawn 1024 px wide, so
  // every patch is exactly 64 x 64 output pixels.
  std::set<std::pair<int, int>> region;
  for (int x = 3; x <= 7; ++x) region.insert({x, 2});
  for (int y = 3; y <= 5; ++y) region.insert({3, y});
  region.insert({4, 5});
  const SlideHeatmap slide = grid_slide(16, 8, region);
  HeatmapStyle style;
  style.normalize = "range";
  const HeatmapLayout layout = heatmap_layout(slide, style);
  ASSERT_EQ(layout.map_width, 1024);
  ASSERT_EQ(layout.map_height, 512);

  testing::TempDir dir;
  write_png(dir / "slide.png", render_png(slide, style));
  const Image png = read_png(dir / "slide.png");
  ASSERT_EQ(png.width, layout.width);
  ASSERT_EQ(png.height, layout.height);
  const Rgb hot = colour_at("viridis", 1), cold = colour_at("viridis", 0);
  int hot_pixels = 0, cold_pixels = 0, misplaced = 0;
  for (int y = 0; y < layout.map_height; ++y) {
    for (int x = 0; x < layout.map_width; ++x) {
      const std::uint8_t* p = png.at(layout.map_x + x, layout.map_y + y);
      const bool in_region = region.count({x / 64, y / 64}) > 0;
      if (same(p, hot)) {
        ++hot_pixels;
        misplaced += !in_region;
      } else if (same(p, cold)) {
        ++cold_pixels;
        misplaced += in_region;
      }
    }
  }
  EXPECT_EQ(hot_pixels, int(region.size()) * 64 * 64);  // the whole region, nothing else
  EXPECT_EQ(misplaced, 0);
  EXPECT_EQ(cold_pixels, (16 * 8 - int(region.size())) * 64 * 64);
  // The legend: the bar's top row is the hottest colour, its bottom row the coldest.
  EXPECT_TRUE(same(png.at(layout.bar_x + 2, layout.bar_y), hot));
  EXPECT_TRUE(same(png.at(layout.bar_x + 2, layout.bar_y + layout.bar_height - 1), cold));
  // Dark text in the title strip above the map.
  int ink = 0;
  for (int y = 0; y < layout.map_y - 2; ++y) {
    for (int x = 0; x < png.width; ++x) ink += png.at(x, y)[0] < 100;
  }
  EXPECT_GT(ink, 200);
}

TEST(Heatmap, ThumbnailShowsThroughHalfTransparentPatches) {
  SlideHeatmap slide = grid_slide(4, 4, {{0, 0}});
  slide.slide_width = 10000 + 4 * 256;  // the thumbnail spans the whole slide from (0, 0)
  slide.slide_height = 5000 + 4 * 256;
  Image thumbnail(8, 8, Rgb{200, 0, 0});
  HeatmapStyle style;
  style.thumbnail = &thumbnail;
  style.alpha = 0.5;
  style.normalize = "range";
  const HeatmapLayout layout = heatmap_layout(slide, style);
  const Image image = render_png(slide, style);
  // Far from any patch: the thumbnail alone.
  EXPECT_TRUE(same(image.at(layout.map_x + 1, layout.map_y + 1), Rgb{200, 0, 0}));
  // On the hot patch: half thumbnail red, half viridis yellow (253, 231, 37).
  const auto [x0, y0, x1, y1] = patch_pixels(layout, 10000, 5000, 256);
  const std::uint8_t* p = image.at((x0 + x1) / 2, (y0 + y1) / 2);
  EXPECT_EQ(int(p[0]), 227);  // round(0.5 * 253 + 0.5 * 200)
  EXPECT_EQ(int(p[1]), 116);  // round(0.5 * 231)
  EXPECT_EQ(int(p[2]), 19);   // round(0.5 * 37)
}

TEST(Heatmap, SvgHasOneRectanglePerPatchWithItsScoreAndEmbedsTheThumbnail) {
  const SlideHeatmap slide = grid_slide(3, 2, {{1, 1}});
  const std::string svg = render_svg(slide, HeatmapStyle{}, std::string("\x89PNG", 4));
  std::size_t titled = 0;
  for (std::size_t at = svg.find("</title></rect>"); at != std::string::npos;
       at = svg.find("</title></rect>", at + 1))
    ++titled;
  EXPECT_EQ(titled, 6u);
  EXPECT_NE(svg.find("<title>(10256, 5256) attention 1</title>"), std::string::npos);
  EXPECT_NE(svg.find("data:image/png;base64,iVBORw==\""), std::string::npos);
  EXPECT_NE(svg.find("slide_0007"), std::string::npos);
  EXPECT_EQ(svg.rfind("</svg>\n"), svg.size() - 7);
}

TEST(Heatmap, RejectsMismatchedScoresAndEmptySlides) {
  SlideHeatmap slide = grid_slide(2, 2, {});
  slide.scores.pop_back();
  EXPECT_THROW(heatmap_layout(slide, HeatmapStyle{}), std::invalid_argument);
  EXPECT_THROW(heatmap_layout(SlideHeatmap{}, HeatmapStyle{}), std::invalid_argument);
}

TEST(Base64, MatchesRfc4648TestVectors) {
  EXPECT_EQ(base64(""), "");
  EXPECT_EQ(base64("f"), "Zg==");
  EXPECT_EQ(base64("fo"), "Zm8=");
  EXPECT_EQ(base64("foo"), "Zm9v");
  EXPECT_EQ(base64("foob"), "Zm9vYg==");
  EXPECT_EQ(base64("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64("foobar"), "Zm9vYmFy");
}

TEST(Png, RoundTripsEveryPixel) {
  Image image(3, 2, Rgb{1, 2, 3});
  fill_rect(image, 1, 1, 3, 2, Rgb{250, 128, 0});
  testing::TempDir dir;
  write_png(dir / "x.png", image);
  const Image back = read_png(dir / "x.png");
  EXPECT_EQ(back.width, 3);
  EXPECT_EQ(back.height, 2);
  EXPECT_EQ(back.rgba, image.rgba);
  EXPECT_THROW(read_png(dir / "missing.png"), std::runtime_error);
}

TEST(IndexPage, ListsEverySlideWithItsProbabilityAndEscapesNames) {
  IndexInfo info;
  info.model = "abmil";
  info.scores = "attention";
  IndexEntry a;
  a.slide_id = "tumor_001";
  a.png = "tumor_001.png";
  a.svg = "tumor_001.svg";
  a.probability = 0.9312;
  a.predicted = 1;
  a.label = 1;
  a.hard_witnesses = 4;
  a.easy_witnesses = 0;
  a.instance_auc = 0.875;
  IndexEntry b = a;
  b.slide_id = "<script>x</script>";
  b.probability = 0.1;
  b.label = -1;
  const std::string page = render_index_html(info, {a, b});
  EXPECT_NE(page.find("0.931"), std::string::npos);
  EXPECT_NE(page.find("<img src=\"tumor_001.png\""), std::string::npos);
  EXPECT_NE(page.find("<td>4 / 0</td>"), std::string::npos);
  EXPECT_NE(page.find("0.875"), std::string::npos);
  EXPECT_EQ(page.find("<script>"), std::string::npos);
  EXPECT_NE(page.find("&lt;script&gt;x&lt;/script&gt;"), std::string::npos);
  // The pictures come before the table: a table of many slides would otherwise fill the first
  // screen and hide every heatmap below it.
  EXPECT_LT(page.find("<figure"), page.find("<table"));
  EXPECT_NE(page.find("label 1, instance AUC 0.875"), std::string::npos);  // in the caption
}

}  // namespace
}  // namespace mil::heatmap
