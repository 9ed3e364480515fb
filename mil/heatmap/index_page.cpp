#include "mil/heatmap/index_page.h"

#include <cstdio>

#include "mil/heatmap/heatmap.h"

namespace mil::heatmap {
namespace {

std::string fixed(double v, int digits = 3) {
  char text[32];
  std::snprintf(text, sizeof text, "%.*f", digits, v);
  return text;
}

constexpr const char* kStyle =
    "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:24px;color:#222;"
    "background:#fafafa}h1{font-size:22px;margin:0 0 4px}p.meta{color:#555;margin:0 0 16px}"
    "h2{font-size:18px;margin:24px 0 8px}table{border-collapse:collapse;margin:0 0 "
    "24px;background:#fff}th,td{border:1px solid #ddd;"
    "padding:4px 10px;text-align:right}th{background:#f0f0f0}td.id,th.id{text-align:left}"
    ".bar{display:inline-block;height:10px;background:#3b528b;vertical-align:middle;"
    "margin-right:6px}.grid{display:flex;flex-wrap:wrap;gap:16px}figure{margin:0;background:#fff;"
    "border:1px solid #ddd;padding:8px;max-width:520px}figure img{max-width:100%;height:auto;"
    "display:block}figcaption{font-size:14px;margin-top:6px}.pos{color:#a11}.neg{color:#155}"
    "pre{background:#fff;border:1px solid #ddd;padding:8px;display:inline-block}";

/// One slide's picture, linked to its SVG, with its probability, label and instance AUC.
std::string figure_html(const IndexInfo& info, const IndexEntry& e, const std::string& p) {
  const bool positive = e.predicted == info.target_class;
  return "<figure id=\"" + escape_markup(e.slide_id) + "\"><a href=\"" + escape_markup(e.svg) +
         "\"><img src=\"" + escape_markup(e.png) + "\" alt=\"" + escape_markup(info.scores) +
         " heatmap of slide " + escape_markup(e.slide_id) + "\"></a><figcaption><b>" +
         escape_markup(e.slide_id) + "</b> — " + escape_markup(p) + " = <span class=\"" +
         (positive ? "pos" : "neg") + "\">" + fixed(e.probability) + "</span>" +
         (e.label >= 0 ? ", label " + std::to_string(e.label) : "") +
         (e.instance_auc >= 0 ? ", instance AUC " + fixed(e.instance_auc) : "") + " · <a href=\"" +
         escape_markup(e.svg) + "\">SVG</a></figcaption></figure>\n";
}

/// The table of every slide: instances, probability (with a bar), prediction and the truth.
std::string table_html(const std::vector<IndexEntry>& entries, const std::string& p) {
  bool truth = false;
  for (const IndexEntry& e : entries) truth |= e.label >= 0 || e.hard_witnesses >= 0;
  std::string out = "<table><thead><tr><th class=\"id\">Slide</th><th>Instances</th><th>" +
                    escape_markup(p) + "</th><th>Predicted</th>";
  if (truth) out += "<th>Label</th><th>Hard / easy witnesses</th><th>Instance AUC</th>";
  out += "</tr></thead><tbody>\n";
  for (const IndexEntry& e : entries) {
    out += "<tr><td class=\"id\"><a href=\"#" + escape_markup(e.slide_id) + "\">" +
           escape_markup(e.slide_id) + "</a></td><td>" + std::to_string(e.instances) +
           "</td><td><span class=\"bar\" style=\"" +
           "width:" + std::to_string(int(e.probability * 60)) + "px\"></span>" +
           fixed(e.probability) + "</td><td>" + std::to_string(e.predicted) + "</td>";
    if (truth) {
      out += "<td>" + (e.label >= 0 ? std::to_string(e.label) : std::string("–")) + "</td><td>" +
             (e.hard_witnesses >= 0
                  ? std::to_string(e.hard_witnesses) + " / " + std::to_string(e.easy_witnesses)
                  : std::string("–")) +
             "</td><td>" + (e.instance_auc >= 0 ? fixed(e.instance_auc) : std::string("–")) +
             "</td>";
    }
    out += "</tr>\n";
  }
  return out + "</tbody></table>\n";
}

}  // namespace

std::string render_index_html(const IndexInfo& info, const std::vector<IndexEntry>& entries) {
  const std::string p = "P(class " + std::to_string(info.target_class) + ")";
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" +
                    escape_markup(info.title) + "</title><style>" + kStyle +
                    "</style></head><body>\n<h1>" + escape_markup(info.title) +
                    "</h1>\n<p class=\"meta\">Model <b>" + escape_markup(info.model) +
                    "</b>, weights <code>" + escape_markup(info.weights) +
                    "</code>; colour = " + escape_markup(info.scores) + " score of each patch (" +
                    escape_markup(info.normalize) + ", " + escape_markup(info.colormap) +
                    "; brighter = higher). " + std::to_string(entries.size()) +
                    " slide(s); <a href=\"#slides\">table of all slides</a> below the pictures."
                    "</p>\n";
  if (!info.summary.empty()) out += "<pre>" + escape_markup(info.summary) + "</pre>\n";
  // The pictures come first: they are what the page is opened for, and a table of many slides
  // above them would fill the first screen (see tests/e2e/heatmap_e2e_test.cpp).
  out += "<div class=\"grid\">\n";
  for (const IndexEntry& e : entries) out += figure_html(info, e, p);
  out += "</div>\n<h2 id=\"slides\">All slides</h2>\n" + table_html(entries, p);
  return out + "</body></html>\n";
}

}  // namespace mil::heatmap
