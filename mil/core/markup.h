// Escaping text for HTML and SVG: one function for the leaderboard's pages and the heatmaps'.
#pragma once

#include <string>

namespace mil {

/// `text` with &, <, >, " and ' escaped: safe as XML (SVG) and HTML text and as single- or
/// double-quoted attribute values.
inline std::string escape_markup(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

}  // namespace mil
