#pragma once
// Perceptually uniform colour maps for instance scores: viridis (the default) and magma, the
// published 256-entry tables of matplotlib's _cm_listed.py (by Nathaniel J. Smith, Stefan van der
// Walt and Eric Firing; CC0), rounded to 8-bit sRGB. Both rise monotonically in lightness, so
// "brighter = higher" reads the same for everyone, in greyscale print and for colour-blind readers.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace mil::heatmap {

/// An 8-bit sRGB colour.
struct Rgb {
  std::uint8_t r = 0, g = 0, b = 0;
};

/// The colour map names colour_at accepts.
std::vector<std::string> colormap_names();

/// Colour of `t` in [0, 1] (clamped; NaN gives the lowest colour) on map `name`; throws
/// std::invalid_argument listing the names for an unknown one.
Rgb colour_at(const std::string& name, double t);

/// "#rrggbb".
std::string hex(Rgb c);

}  // namespace mil::heatmap
