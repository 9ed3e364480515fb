#pragma once
// An RGBA raster with the few drawing operations a heatmap needs, and PNG files through libpng's
// simplified API (read and write; 8-bit RGBA in memory, whatever the file's colour type).
#include <cstdint>
#include <string>
#include <vector>

#include "mil/heatmap/colormap.h"

namespace mil::heatmap {

/// 8-bit RGBA pixels, row-major, top row first.
struct Image {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> rgba;  ///< width * height * 4 bytes.

  Image() = default;
  /// A width x height image filled with `fill` (opaque).
  Image(int width, int height, Rgb fill);
  /// The pixel at (x, y) as {r, g, b, a}; no bounds check.
  const std::uint8_t* at(int x, int y) const { return &rgba[(std::size_t(y) * width + x) * 4]; }
  std::uint8_t* at(int x, int y) { return &rgba[(std::size_t(y) * width + x) * 4]; }
};

/// Paints [x0, x1) x [y0, y1) (clipped to the image) with `colour` at opacity `alpha` in [0, 1]
/// over what is there.
void fill_rect(Image& image, int x0, int y0, int x1, int y1, Rgb colour, double alpha = 1.0);

/// Draws `image` scaled (nearest neighbour) into [x0, x0 + width) x [y0, y0 + height) of `canvas`.
void draw_scaled(Image& canvas, const Image& image, int x0, int y0, int width, int height);

/// Writes `image` as an 8-bit RGBA PNG; throws std::runtime_error naming the path on failure.
void write_png(const std::string& path, const Image& image);

/// Reads any PNG libpng understands as 8-bit RGBA; throws std::runtime_error naming the path and
/// libpng's message on failure.
Image read_png(const std::string& path);

}  // namespace mil::heatmap
