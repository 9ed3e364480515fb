#include "mil/heatmap/image.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace mil::heatmap {

Image::Image(int w, int h, Rgb fill) : width(w), height(h), rgba(std::size_t(w) * h * 4, 255) {
  for (std::size_t i = 0; i < rgba.size(); i += 4) {
    rgba[i] = fill.r;
    rgba[i + 1] = fill.g;
    rgba[i + 2] = fill.b;
  }
}

void fill_rect(Image& image, int x0, int y0, int x1, int y1, Rgb colour, double alpha) {
  x0 = std::max(0, x0), y0 = std::max(0, y0);
  x1 = std::min(image.width, x1), y1 = std::min(image.height, y1);
  const double a = std::clamp(alpha, 0.0, 1.0);
  const auto mix = [a](std::uint8_t under, std::uint8_t over) {
    return std::uint8_t(std::lround(a * over + (1.0 - a) * under));
  };
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) {
      std::uint8_t* p = image.at(x, y);
      p[0] = mix(p[0], colour.r);
      p[1] = mix(p[1], colour.g);
      p[2] = mix(p[2], colour.b);
      p[3] = 255;
    }
  }
}

void draw_scaled(Image& canvas, const Image& image, int x0, int y0, int width, int height) {
  if (image.width == 0 || image.height == 0) return;
  for (int y = std::max(0, y0); y < std::min(canvas.height, y0 + height); ++y) {
    const int sy = std::min(image.height - 1, int((y - y0) * std::int64_t(image.height) / height));
    for (int x = std::max(0, x0); x < std::min(canvas.width, x0 + width); ++x) {
      const int sx = std::min(image.width - 1, int((x - x0) * std::int64_t(image.width) / width));
      const std::uint8_t* s = image.at(sx, sy);
      std::uint8_t* d = canvas.at(x, y);
      const double a = s[3] / 255.0;  // a transparent thumbnail pixel shows the canvas
      for (int c = 0; c < 3; ++c) d[c] = std::uint8_t(std::lround(a * s[c] + (1 - a) * d[c]));
      d[3] = 255;
    }
  }
}

void write_png(const std::string& path, const Image& image) {
  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  png.width = png_uint_32(image.width);
  png.height = png_uint_32(image.height);
  png.format = PNG_FORMAT_RGBA;
  if (!png_image_write_to_file(&png, path.c_str(), /*convert_to_8bit=*/0, image.rgba.data(),
                               /*row_stride=*/0, /*colormap=*/nullptr)) {
    const std::string message = png.message;
    png_image_free(&png);
    throw std::runtime_error("cannot write PNG '" + path + "': " + message);
  }
}

Image read_png(const std::string& path) {
  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_file(&png, path.c_str())) {
    const std::string message = png.message;
    png_image_free(&png);
    throw std::runtime_error("cannot read PNG '" + path + "': " + message);
  }
  png.format = PNG_FORMAT_RGBA;
  Image image;
  image.width = int(png.width);
  image.height = int(png.height);
  image.rgba.resize(PNG_IMAGE_SIZE(png));
  if (!png_image_finish_read(&png, /*background=*/nullptr, image.rgba.data(), /*row_stride=*/0,
                             /*colormap=*/nullptr)) {
    const std::string message = png.message;
    png_image_free(&png);
    throw std::runtime_error("cannot read PNG '" + path + "': " + message);
  }
  return image;
}

}  // namespace mil::heatmap
