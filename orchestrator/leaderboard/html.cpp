// The leaderboard as one self-contained HTML page: tables, and plots drawn as inline SVG. Nothing
// is loaded from elsewhere (no scripts, stylesheets, fonts or images), so the file can be mailed or
// archived and still shows the same thing.
#include "orchestrator/leaderboard/html.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "mil/core/markup.h"
#include "orchestrator/leaderboard/format.h"
#include "orchestrator/leaderboard/report.h"

namespace mil::orch {
namespace {

/// Colour-blind-safe categorical palette (Tableau 10); a method keeps its colour on every plot.
const char* const kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
/// Width of every plot, in SVG user units (CSS pixels at 100%).
constexpr double kPlotWidth = 760;

std::string num(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f", v);
  return text;
}

std::string text_at(double x, double y, const std::string& text,
                    const std::string& anchor = "middle", const std::string& extra = "") {
  return "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" text-anchor=\"" + anchor + "\"" +
         (extra.empty() ? "" : " " + extra) + ">" + escape_markup(text) + "</text>";
}

std::string line(double x1, double y1, double x2, double y2, const std::string& style) {
  return "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" + num(x2) + "\" y2=\"" +
         num(y2) + "\" " + style + "/>";
}

/// A tick step giving 4-10 ticks over `range`.
double tick_step(double range) {
  for (double step : {0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0}) {
    if (range / step <= 10) return step;
  }
  return 1.0;
}

/// [low, high] rounded out to ticks, with some headroom, clamped to [0, 1] (every metric is a
/// rate).
std::pair<double, double> axis_range(double low, double high) {
  if (!(high > low)) low -= 0.05, high += 0.05;
  const double pad = std::max(0.01, 0.08 * (high - low));
  const double step = tick_step(high - low + 2 * pad);
  double lo = std::floor((low - pad) / step) * step, hi = std::ceil((high + pad) / step) * step;
  lo = std::max(0.0, lo);
  hi = std::min(1.0, hi);
  if (hi <= lo) hi = lo + step;
  return {lo, hi};
}

/// Horizontal grid lines and y labels between `lo` and `hi`.
std::string y_axis(double lo, double hi, double left, double right, double top, double bottom) {
  std::string svg;
  const double step = tick_step(hi - lo);
  // Ticks on multiples of the step (the range's ends need not be).
  for (double v = std::ceil(lo / step - 1e-9) * step; v <= hi + 1e-9; v += step) {
    const double y = bottom - (v - lo) / (hi - lo) * (bottom - top);
    svg += line(left, y, right, y, "class=\"grid\"");
    svg += text_at(left - 6, y + 4, format::fixed(v, step < 0.1 ? 2 : 1), "end", "class=\"tick\"");
  }
  return svg + line(left, top, left, bottom, "class=\"axis\"") +
         line(left, bottom, right, bottom, "class=\"axis\"");
}

class Colours {
 public:
  explicit Colours(const Leaderboard& board) {
    std::set<std::string> methods;
    for (const auto& row : board.rows) methods.insert(row.method);
    for (const auto& m : methods) index_.emplace(m, index_.size());
  }
  std::string of(const std::string& method) const {
    const auto it = index_.find(method);
    return kPalette[(it == index_.end() ? 0 : it->second) % (sizeof kPalette / sizeof kPalette[0])];
  }

 private:
  std::map<std::string, std::size_t> index_;
};

/// Bars of the selected configs' test metric with their bootstrap 95% intervals.
std::string bar_chart(const Leaderboard& board, const BenchmarkResult& b, const Colours& colours) {
  std::vector<const MethodResult*> shown;
  double low = INFINITY, high = -INFINITY;
  for (const auto& m : b.methods) {
    if (m.row < 0) continue;
    const MetricSummary* s = format::find(board.rows[m.row].test, b.metric);
    if (s == nullptr) continue;
    shown.push_back(&m);
    low = std::min({low, s->mean, s->ci_low});
    high = std::max({high, s->mean, s->ci_high});
  }
  if (shown.empty()) return "<p class=\"note\">No selected grid point to plot.</p>";
  const auto [lo, hi] = axis_range(low, high);
  const double left = 64, right = kPlotWidth - 16, top = 46, bottom = 262,
               height = 322;  // room for a value over the top
  const double slot = (right - left) / double(shown.size());
  const double bar = std::min(90.0, slot * 0.6);
  const auto y_of = [&](double v) {
    return bottom - (std::clamp(v, lo, hi) - lo) / (hi - lo) * (bottom - top);
  };
  std::string svg = "<svg class=\"plot\" viewBox=\"0 0 " + num(kPlotWidth) + " " + num(height) +
                    "\" width=\"" + num(kPlotWidth) + "\" height=\"" + num(height) +
                    "\" role=\"img\" aria-label=\"" +
                    escape_markup("Test " + metric_name(b.metric) + " of " + b.dataset) + "\">";
  svg += text_at(left, 18,
                 "Test " + metric_name(b.metric) +
                     " of the selected config: mean over fold-runs, bar = 95% bootstrap interval",
                 "start", "class=\"title\"");
  svg += y_axis(lo, hi, left, right, top, bottom);
  for (std::size_t i = 0; i < shown.size(); ++i) {
    const LeaderboardRow& row = board.rows[shown[i]->row];
    const MetricSummary& s = *format::find(row.test, b.metric);
    const double cx = left + slot * (double(i) + 0.5);
    svg += "<rect x=\"" + num(cx - bar / 2) + "\" y=\"" + num(y_of(s.mean)) + "\" width=\"" +
           num(bar) + "\" height=\"" + num(bottom - y_of(s.mean)) + "\" fill=\"" +
           colours.of(row.method) + "\"" +
           (shown[i]->is_baseline ? " stroke=\"#222\" stroke-width=\"1.5\"" : "") + "><title>" +
           escape_markup(row.method + ": " + format::mean_std(&s) + ", 95% CI " +
                         format::interval(&s)) +
           "</title></rect>";
    const double y_low = y_of(s.ci_low), y_high = y_of(s.ci_high);
    svg += line(cx, y_low, cx, y_high, "class=\"whisker\"");
    svg += line(cx - 8, y_low, cx + 8, y_low, "class=\"whisker\"") +
           line(cx - 8, y_high, cx + 8, y_high, "class=\"whisker\"");
    svg += text_at(cx, y_high - 6, format::fixed(s.mean), "middle", "class=\"value\"");
    std::string label = row.method;
    const std::size_t max_chars = std::size_t(std::max(6.0, slot / 7.5));
    if (label.size() > max_chars) label = label.substr(0, max_chars - 1) + "…";
    svg += text_at(cx, bottom + 18, label, "middle", "class=\"label\"");
    if (shown[i]->is_baseline)
      svg += text_at(cx, bottom + 34, "(baseline)", "middle", "class=\"tick\"");
  }
  if (lo > 0)
    svg += text_at(right, height - 8, "the axis starts at " + format::fixed(lo, 2) + ", not 0",
                   "end", "class=\"tick\"");
  return svg + "</svg>";
}

/// Per-epoch validation metric of each method's selected config (mean over the runs that reached
/// the epoch).
std::string curves_chart(const Leaderboard& board, const BenchmarkResult& b,
                         const Colours& colours) {
  std::vector<const LeaderboardRow*> rows;
  std::size_t epochs = 0;
  double low = INFINITY, high = -INFINITY;
  for (const auto& m : b.methods) {
    if (m.row < 0) continue;
    const LeaderboardRow& row = board.rows[m.row];
    bool any = false;
    for (double v : row.val_curve) {
      if (!std::isfinite(v)) continue;
      any = true;
      low = std::min(low, v);
      high = std::max(high, v);
    }
    if (!any) continue;
    rows.push_back(&row);
    epochs = std::max(epochs, row.val_curve.size());
  }
  if (rows.empty())
    return "<p class=\"note\">No per-epoch validation curves: the selected configs had no "
           "validation set.</p>";
  const auto [lo, hi] = axis_range(low, high);
  const double left = 64, right = kPlotWidth - 170, top = 34, bottom = 230, height = 272;
  const auto x_of = [&](std::size_t e) {
    return epochs < 2 ? (left + right) / 2 : left + double(e) / double(epochs - 1) * (right - left);
  };
  const auto y_of = [&](double v) { return bottom - (v - lo) / (hi - lo) * (bottom - top); };
  std::string svg = "<svg class=\"plot\" viewBox=\"0 0 " + num(kPlotWidth) + " " + num(height) +
                    "\" width=\"" + num(kPlotWidth) + "\" height=\"" + num(height) +
                    "\" role=\"img\" aria-label=\"" +
                    escape_markup("Validation curves of " + b.dataset) + "\">";
  svg += text_at(
      left, 18,
      "Validation " + metric_name(b.metric) + " per epoch of the selected configs (mean over runs)",
      "start", "class=\"title\"");
  svg += y_axis(lo, hi, left, right, top, bottom);
  const std::size_t step = std::max<std::size_t>(1, (epochs + 9) / 10);
  for (std::size_t e = 0; e < epochs; e += step) {
    svg += text_at(x_of(e), bottom + 16, std::to_string(e + 1), "middle", "class=\"tick\"");
  }
  svg += text_at((left + right) / 2, bottom + 34, "epoch", "middle", "class=\"tick\"");
  for (std::size_t r = 0; r < rows.size(); ++r) {
    const LeaderboardRow& row = *rows[r];
    std::string path;
    bool pen_down = false;
    for (std::size_t e = 0; e < row.val_curve.size(); ++e) {
      if (!std::isfinite(row.val_curve[e])) {
        pen_down = false;
        continue;
      }
      path += (pen_down ? " L" : " M") + num(x_of(e)) + " " + num(y_of(row.val_curve[e]));
      pen_down = true;
    }
    svg += "<path d=\"" + path + "\" fill=\"none\" stroke=\"" + colours.of(row.method) +
           "\" stroke-width=\"2\"><title>" + escape_markup(row.method) + "</title></path>";
    const double y = top + 8 + 18 * double(r);
    svg += line(right + 16, y, right + 36, y,
                "stroke=\"" + colours.of(row.method) + "\" stroke-width=\"3\"");
    svg += text_at(right + 42, y + 4, row.method, "start", "class=\"label\"");
  }
  return svg + "</svg>";
}

/// Demšar's critical-difference diagram: methods on their average rank, bars joining the groups
/// whose ranks differ by less than the Nemenyi CD.
std::string cd_diagram(const RankSummary& r, const Colours& colours) {
  const std::size_t k = r.methods.size();
  if (k < 2 || r.critical_difference <= 0) {
    return "<p class=\"note\">A critical-difference diagram needs at least two ranked methods.</p>";
  }
  const double left = 190, right = kPlotWidth - 190, axis = 70;
  const std::size_t half = (k + 1) / 2;
  const double height = axis + 46 + 22 * double(half);
  const auto x_of = [&](double rank) { return left + (rank - 1) / double(k - 1) * (right - left); };
  std::string svg = "<svg class=\"plot\" viewBox=\"0 0 " + num(kPlotWidth) + " " + num(height) +
                    "\" width=\"" + num(kPlotWidth) + "\" height=\"" + num(height) +
                    "\" role=\"img\" aria-label=\"critical difference diagram\">";
  // The CD as a scale bar, from rank 1.
  const double cd_end = x_of(std::min(double(k), 1 + r.critical_difference));
  svg += line(left, 28, cd_end, 28, "class=\"cd\"") + line(left, 22, left, 34, "class=\"cd\"") +
         line(cd_end, 22, cd_end, 34, "class=\"cd\"");
  svg += text_at(left, 16,
                 "CD = " + format::fixed(r.critical_difference) +
                     (1 + r.critical_difference > double(k)
                          ? " (longer than the axis: no pair differs significantly)"
                          : ""),
                 "start", "class=\"label\"");
  svg += line(left, axis, right, axis, "class=\"axis\"");
  for (std::size_t t = 1; t <= k; ++t) {
    svg += line(x_of(double(t)), axis - 6, x_of(double(t)), axis, "class=\"axis\"");
    svg += text_at(x_of(double(t)), axis - 10, std::to_string(t), "middle", "class=\"tick\"");
  }
  svg += text_at(left - 10, axis - 26, "better", "end", "class=\"tick\"");
  // Groups not significantly different: maximal runs of consecutive methods spanning < CD.
  std::size_t last_end = 0, group = 0;
  for (std::size_t i = 0; i < k; ++i) {
    std::size_t j = i;
    while (j + 1 < k && r.average_ranks[j + 1] - r.average_ranks[i] < r.critical_difference) ++j;
    if (j > i && (i == 0 || j > last_end)) {
      const double y = axis + 10 + 6 * double(group++ % 4);
      svg += line(x_of(r.average_ranks[i]) - 4, y, x_of(r.average_ranks[j]) + 4, y,
                  "class=\"clique\"");
      last_end = j;
    }
  }
  for (std::size_t i = 0; i < k; ++i) {
    const bool on_left = i < half;
    const double x = x_of(r.average_ranks[i]);
    const double y = axis + 40 + 22 * double(on_left ? i : k - 1 - i);
    const double end = on_left ? left - 20 : right + 20;
    svg += "<polyline points=\"" + num(x) + "," + num(axis) + " " + num(x) + "," + num(y) + " " +
           num(end) + "," + num(y) + "\" fill=\"none\" stroke=\"" + colours.of(r.methods[i]) +
           "\" stroke-width=\"1.5\"/>";
    svg += "<circle cx=\"" + num(x) + "\" cy=\"" + num(axis) + "\" r=\"4\" fill=\"" +
           colours.of(r.methods[i]) + "\"/>";
    svg += text_at(on_left ? end - 6 : end + 6, y + 4,
                   r.methods[i] + " (" + format::fixed(r.average_ranks[i], 2) + ")",
                   on_left ? "end" : "start", "class=\"label\"");
  }
  return svg + "</svg>";
}

std::string cell(const std::string& text, bool number = false) {
  return std::string(number ? "<td class=\"num\">" : "<td>") + escape_markup(text) + "</td>";
}

std::string benchmark_section(const Leaderboard& board, const BenchmarkResult& b,
                              const Colours& colours) {
  const std::string m = metric_name(b.metric);
  const std::vector<std::string> others = format::other_metrics(b.metric);
  std::string out =
      "<section><h2>" + escape_markup(b.dataset) + "</h2>\n<p>Selected on validation " +
      escape_markup(m) + " (never on test); headline: test " + escape_markup(m) + ". " +
      (b.baseline.empty() ? "No baseline row here, so no paired tests."
                          : "Paired tests against <b>" + escape_markup(b.baseline) + "</b>.") +
      "</p>\n<div "
      "class=\"scroll\"><table><thead><tr><th>Method</th><th>Config</th><th>Runs</th><th>Test " +
      escape_markup(m) + "</th><th>95% CI of mean</th><th>Val " + escape_markup(m) + "</th>";
  // Instance truth, where the results have it: each metric with its paired test on the baseline.
  const std::vector<std::string> truth = format::truth_columns(board, b);
  for (const auto& k : truth) out += "<th>" + escape_markup(metric_name(k)) + "</th>";
  out +=
      "<th>Δ vs baseline</th><th>Pairs</th><th>t-test p (corr.)</th><th>Wilcoxon "
      "p</th><th>Notes</th></tr></thead><tbody>\n";
  for (const MethodResult& mr : b.methods) {
    out += "<tr><td class=\"method\"><span class=\"swatch\" style=\"background:" +
           colours.of(mr.method) + "\"></span>" + escape_markup(mr.method) + "</td>";
    if (mr.row < 0) {
      out += "<td colspan=\"" + std::to_string(10 + truth.size()) + "\" class=\"warn\">" +
             escape_markup(mr.note) + "</td></tr>\n";  // every column after Method
      continue;
    }
    const LeaderboardRow& row = board.rows[mr.row];
    out += cell(row.config_label.empty() ? "–" : row.config_label) + cell(format::runs(row), true) +
           cell(format::mean_std(format::find(row.test, b.metric)), true) +
           cell(format::interval(format::find(row.test, b.metric)), true) +
           cell(format::mean_std(row.val_selection.count ? &row.val_selection : nullptr), true);
    for (const auto& k : truth) {
      const auto c = mr.truth_comparisons.find(k);
      out += cell(format::mean_std(format::find(row.truth, k)) +
                      (c == mr.truth_comparisons.end()
                           ? ""
                           : " (Δ " + format::signed_fixed(c->second.mean_difference) + ", p " +
                                 format::p_value(c->second.t_p) + ")"),
                  true);
    }
    if (mr.compared) {
      const Comparison& c = mr.comparison;
      out += cell(format::signed_fixed(c.mean_difference), true) +
             cell(std::to_string(c.pairs), true) + cell(format::p_value(c.t_p), true) +
             cell(format::p_value(c.wilcoxon_p) +
                      (c.wilcoxon_method == "none" ? "" : " (" + c.wilcoxon_method + ")"),
                  true);
    } else {
      out += mr.is_baseline ? "<td colspan=\"4\" class=\"num\">baseline</td>"
                            : "<td colspan=\"4\" class=\"num\">–</td>";
    }
    const std::string notes =
        format::join_notes({row.selection, row.selectable ? "" : row.not_selectable});
    out += "<td>" + escape_markup(notes) +
           (row.protocol_flags.empty()
                ? ""
                : " <span class=\"flag\">" + escape_markup(format::flags(row.protocol_flags)) +
                      "</span>") +
           "</td></tr>\n";
  }
  out += "</tbody></table></div>\n" + bar_chart(board, b, colours) + "\n" +
         curves_chart(board, b, colours) + "\n";
  out += "<details><summary>Every grid point of " + escape_markup(b.dataset) +
         " (the selection reads the validation column)"
         "</summary><div "
         "class=\"scroll\"><table><thead><tr><th>Method</th><th>Config</th><th>Runs</th><th>Val " +
         escape_markup(m) + " (selects)</th><th>Test " + escape_markup(m) + "</th>";
  for (const auto& o : others) out += "<th>Test " + escape_markup(metric_name(o)) + "</th>";
  out += "<th>Selected</th><th>Note</th></tr></thead><tbody>\n";
  for (const auto& row : board.rows) {
    if (row.dataset != b.dataset) continue;
    out += "<tr" + std::string(row.selected ? " class=\"selected\"" : "") + ">" + cell(row.method) +
           cell(row.config_label.empty() ? "–" : row.config_label) + cell(format::runs(row), true) +
           cell(format::mean_std(row.val_selection.count ? &row.val_selection : nullptr), true) +
           cell(format::mean_std(format::find(row.test, b.metric)), true);
    for (const auto& o : others) out += cell(format::mean_std(format::find(row.test, o)), true);
    out += cell(row.selected ? "✔" : "") +
           cell(format::join_notes(
               {row.selectable ? "" : row.not_selectable, format::flags(row.protocol_flags)})) +
           "</tr>\n";
  }
  return out + "</tbody></table></div></details></section>\n";
}

constexpr const char* kStyle = R"(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:24px auto;max-width:1280px;color:#222;padding:0 16px}
h1{font-size:1.6em;margin-bottom:4px}h2{font-size:1.25em;margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
table{border-collapse:collapse;margin:10px 0;font-size:0.86em}th,td{border:1px solid #ddd;padding:4px 7px;text-align:left;vertical-align:top}
th{background:#f4f5f7}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.selected td{background:#eef6ee}.warn{color:#8a5a00;background:#fff8e6}.flag{color:#b00020;font-weight:600}
.note{color:#555;font-style:italic}td.method{white-space:nowrap}.summary{color:#444}
.swatch{display:inline-block;width:10px;height:10px;margin-right:6px;border-radius:2px;vertical-align:baseline}
svg.plot{display:block;margin:12px 0;max-width:100%;height:auto}
svg text{font-family:inherit;font-size:12px;fill:#222}svg .title{font-size:13px;font-weight:600}
svg .tick{font-size:11px;fill:#555}svg .value{font-size:11px;font-weight:600}svg .label{font-size:12px}
svg .grid{stroke:#e6e6e6;stroke-width:1}svg .axis{stroke:#444;stroke-width:1}
svg .whisker{stroke:#222;stroke-width:1.5}svg .cd{stroke:#222;stroke-width:2}svg .clique{stroke:#222;stroke-width:4;stroke-linecap:round}
details{margin:8px 0}.scroll{overflow-x:auto}summary{cursor:pointer;color:#333}
)";

}  // namespace

std::string to_html(const Leaderboard& board, const std::string& title) {
  const Colours colours(board);
  int failed = 0, quarantined = 0, not_run = 0;
  for (const auto& m : board.missing)
    (m.status == "failed" ? failed : m.status == "quarantined" ? quarantined : not_run)++;
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" +
                    escape_markup(title) + "</title><style>" + kStyle +
                    "</style></head><body>\n<h1>" + escape_markup(title) + "</h1>\n";
  out +=
      "<p class=\"summary\">" + std::to_string(board.ok_results) + " ok results; " +
      std::to_string(board.missing.size()) + " missing (" + std::to_string(failed) + " failed, " +
      std::to_string(quarantined) + " quarantined, " + std::to_string(not_run) + " not run)" +
      (board.pruned_jobs > 0
           ? "; " + std::to_string(board.pruned_jobs) +
                 " pruned (never run: successive halving stopped their grid points on validation)"
           : "") +
      ". Each method's row is its grid point with the best mean validation metric; test metrics "
      "never select.</p>\n";
  if (board.rows.empty()) out += "<p class=\"note\">No ok results yet.</p>\n";
  for (const auto& b : board.benchmarks) out += benchmark_section(board, b, colours);
  if (!board.rows.empty()) {
    const RankSummary& r = board.ranks;
    out += "<section><h2>Across benchmarks</h2>\n";
    if (r.benchmarks.empty()) {
      out +=
          "<p class=\"note\">No benchmark has a selected grid point for every method, so there are "
          "no ranks.</p>\n";
    } else {
      out +=
          "<p>Average rank by test metric of each method's selected grid point (1 = best, ties "
          "share the average) over " +
          std::to_string(r.benchmarks.size()) +
          " benchmark(s). Nemenyi critical difference at α = 0.05: " +
          (r.critical_difference > 0 ? "<b>CD = " + format::fixed(r.critical_difference) + "</b>"
                                     : std::string("undefined")) +
          "; methods joined by a bar are not significantly "
          "different.</p>\n<table><thead><tr><th>Method</th>"
          "<th>Average rank</th></tr></thead><tbody>\n";
      for (std::size_t i = 0; i < r.methods.size(); ++i) {
        out += "<tr><td><span class=\"swatch\" style=\"background:" + colours.of(r.methods[i]) +
               "\"></span>" + escape_markup(r.methods[i]) + "</td>" +
               cell(format::fixed(r.average_ranks[i], 2), true) + "</tr>\n";
      }
      out += "</tbody></table>\n" + cd_diagram(r, colours) + "\n";
    }
    for (const auto& s : r.skipped)
      out += "<p class=\"note\">Skipped " + escape_markup(s) + "</p>\n";
    out += "</section>\n";
  }
  out += "<section><h2>Missing</h2>\n";
  if (board.missing.empty()) {
    out += "<p>none</p>\n";
  } else {
    out += std::string("<details") + (board.missing.size() <= 20 ? " open" : "") + "><summary>" +
           std::to_string(board.missing.size()) + " job(s) without an ok result</summary>";
    out +=
        "<table><thead><tr><th>Job</th><th>Dataset</th><th>Method</th><th>Fold</th><th>Seed</"
        "th><th>Status</th>"
        "<th>Error</th></tr></thead><tbody>\n";
    for (const auto& m : board.missing) {
      out += "<tr>" + cell(m.job_id) + cell(m.dataset) + cell(m.model) +
             cell(std::to_string(m.fold_index), true) + cell(std::to_string(m.seed), true) +
             cell(m.status) + cell(m.error) + "</tr>\n";
    }
    out += "</tbody></table></details>\n";
  }
  out +=
      "</section>\n<section><h2>How to read this</h2><ul>"
      "<li>A cell is the mean ± population std (ddof 0) over fold-runs (folds × seeds/replicates); "
      "the 95% interval "
      "is a percentile bootstrap of that mean (2,000 resamples, seeded by the config id).</li>"
      "<li>Selection: per benchmark and method, the grid point with the best mean validation "
      "metric (AUC for two "
      "classes, balanced accuracy for more, C-index for survival). Without validation several grid "
      "points cannot be "
      "told apart and none is picked.</li>"
      "<li>Δ: mean over the (replicate, fold) pairs both methods ran of method − baseline. t-test: "
      "corrected "
      "resampled t (Nadeau &amp; Bengio 2003), variance × (1/n + "
      "n<sub>test</sub>/n<sub>train</sub>) from the "
      "recorded split sizes (else 1/(k−1)). Wilcoxon: signed-rank, zero differences dropped, exact "
      "for n ≤ 25 "
      "without ties, else normal with tie correction.</li>"
      "<li><span class=\"flag\">⚑</span> marks rows from flagged protocols (e.g. val_equals_test: "
      "validation is "
      "the test set).</li></ul></section>\n</body></html>\n";
  return out;
}

}  // namespace mil::orch
