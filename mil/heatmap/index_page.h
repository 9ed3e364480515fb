#pragma once
// The page that opens a folder of heatmaps: every slide's picture with its bag probability, the
// predicted class and, where the truth is known, the slide's label and how well its instance
// scores single out the witnesses. One HTML file beside the pictures, no scripts, no other files.
#include <string>
#include <vector>

namespace mil::heatmap {

/// One slide on the page.
struct IndexEntry {
  std::string slide_id;
  std::string png;  ///< File name of its PNG, relative to the page.
  std::string svg;  ///< File name of its SVG, relative to the page.
  long long instances = 0;
  double probability = 0;                              ///< P(class shown) of the bag.
  int predicted = 0;                                   ///< Argmax class.
  int label = -1;                                      ///< Known slide label, or -1.
  long long hard_witnesses = -1, easy_witnesses = -1;  ///< From the instance truth; -1 unknown.
  double instance_auc = -1;  ///< Within-slide instance AUC of the witnesses; < 0 when undefined.
};

/// What the page says about how the pictures were made.
struct IndexInfo {
  std::string title = "Heatmaps";
  std::string model;      ///< e.g. "abmil".
  std::string weights;    ///< The weights file.
  std::string scores;     ///< "attention", "class-aware" or "logit".
  int target_class = 1;   ///< The class whose probability is shown.
  std::string normalize;  ///< How scores map to colours.
  std::string colormap;
  std::string summary;  ///< Extra lines (e.g. instance-truth metrics over the slides); may be "".
};

/// The HTML page (UTF-8), every text escaped.
std::string render_index_html(const IndexInfo& info, const std::vector<IndexEntry>& entries);

}  // namespace mil::heatmap
