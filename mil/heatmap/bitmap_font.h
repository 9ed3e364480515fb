#pragma once
// Text in PNG heatmaps (titles, legend ticks) without a font library: a 5x7 pixel capital-letter
// font, drawn at an integer scale. Lower case is drawn as upper case; characters it lacks as '?'.
#include <string>

#include "mil/heatmap/image.h"

namespace mil::heatmap {

/// Width in pixels of `text` at `scale` (6 columns per character: 5 of glyph and 1 of space).
int text_width(const std::string& text, int scale);
/// Height in pixels of one line at `scale`.
inline int text_height(int scale) { return 7 * scale; }

/// Draws `text` with its top-left corner at (x, y), each glyph pixel a scale x scale square.
void draw_text(Image& image, int x, int y, const std::string& text, int scale, Rgb colour);

}  // namespace mil::heatmap
