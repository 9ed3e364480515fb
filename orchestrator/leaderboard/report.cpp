#include "orchestrator/leaderboard/report.h"

#include <algorithm>

#include "orchestrator/leaderboard/format.h"

namespace mil::orch {
namespace {

/// Longest error text shown in a Markdown cell; leaderboard.json keeps the whole message.
constexpr std::size_t kMaxErrorChars = 160;

/// Text safe inside a Markdown table cell.
std::string escape(std::string text, std::size_t max_chars = std::string::npos) {
  if (text.size() > max_chars) text = text.substr(0, max_chars) + "...";
  std::string out;
  for (char c : text) {
    if (c == '|') {
      out += "\\|";
    } else {
      out += (c == '\n' || c == '\r') ? ' ' : c;
    }
  }
  return out;
}

std::string row_notes(const LeaderboardRow& row) {
  return format::join_notes(
      {row.selection, row.selectable ? "" : row.not_selectable, format::flags(row.protocol_flags)});
}

/// The benchmark's instance-truth metrics with their paired tests against the baseline.
void truth_section(const Leaderboard& board, const BenchmarkResult& b,
                   const std::vector<std::string>& keys, std::string& md) {
  md += "\n### Instance truth on " + escape(b.dataset) + "\n\n";
  md +=
      "Where the test slides carry instance truth: the slide AUC on the positive slides whose "
      "witnesses are all hard against every negative (Hard-only AUC), and the within-slide AUC of "
      "the model's instance scores for all, hard and easy witnesses against the slide's other "
      "instances, averaged over slides (Inst. AUC). Δ and p-values: the paired tests above, on "
      "each metric.\n\n| Method |";
  for (const auto& k : keys) md += " " + metric_name(k) + " | Δ | t-test p | Wilcoxon p |";
  md += "\n|---|";
  for (std::size_t i = 0; i < keys.size(); ++i) md += "---:|---:|---:|---:|";
  md += "\n";
  for (const MethodResult& mr : b.methods) {
    if (mr.row < 0) continue;
    const LeaderboardRow& row = board.rows[mr.row];
    md += "| " + escape(mr.method) + " |";
    for (const auto& k : keys) {
      md += " " + format::mean_std(format::find(row.truth, k)) + " |";
      const auto c = mr.truth_comparisons.find(k);
      if (c != mr.truth_comparisons.end()) {
        md += " " + format::signed_fixed(c->second.mean_difference) + " | " +
              format::p_value(c->second.t_p) + " | " + format::p_value(c->second.wilcoxon_p) + " |";
      } else {
        md += mr.is_baseline ? " baseline | | |" : " – | – | – |";
      }
    }
    md += "\n";
  }
}

void benchmark_section(const Leaderboard& board, const BenchmarkResult& b, std::string& md) {
  const std::string m = metric_name(b.metric);
  md += "## " + escape(b.dataset) + "\n\n";
  md += "Selected on validation " + m + " (never on test); headline metric: test " + m + ". ";
  md += b.baseline.empty() ? "No baseline row here, so no paired tests.\n\n"
                           : "Paired tests against **" + escape(b.baseline) + "**.\n\n";
  const std::vector<std::string> others = format::other_metrics(b.metric);
  md += "| Method | Config | Runs | Test " + m + " | 95% CI of mean | Val " + m + " |";
  for (const auto& o : others) md += " Test " + metric_name(o) + " |";
  const std::vector<std::string> truth = format::truth_columns(board, b);
  for (const auto& k : truth) md += " " + metric_name(k) + " |";
  md +=
      " Δ vs baseline | Pairs | t-test p (corr.) | Wilcoxon p | Notes "
      "|\n|---|---|---:|---:|---:|---:|";
  for (std::size_t i = 0; i < others.size() + truth.size(); ++i) md += "---:|";
  md += "---:|---:|---:|---:|---|\n";
  for (const MethodResult& mr : b.methods) {
    if (mr.row < 0) {
      md += "| " + escape(mr.method) + " | – | – | – | – | – |";
      for (std::size_t i = 0; i < others.size() + truth.size(); ++i) md += " – |";
      md += " – | – | – | – | " + escape(mr.note) + " |\n";
      continue;
    }
    const LeaderboardRow& row = board.rows[mr.row];
    md += "| " + escape(mr.method) + " | " +
          (row.config_label.empty() ? "–" : escape(row.config_label)) + " | " + format::runs(row) +
          " | " + format::mean_std(format::find(row.test, b.metric)) + " | " +
          format::interval(format::find(row.test, b.metric)) + " | " +
          format::mean_std(row.val_selection.count ? &row.val_selection : nullptr) + " |";
    for (const auto& o : others) md += " " + format::mean_std(format::find(row.test, o)) + " |";
    for (const auto& k : truth) md += " " + format::mean_std(format::find(row.truth, k)) + " |";
    if (mr.compared) {
      const Comparison& c = mr.comparison;
      md += " " + format::signed_fixed(c.mean_difference) + " | " + std::to_string(c.pairs) +
            " | " + format::p_value(c.t_p) + " | " + format::p_value(c.wilcoxon_p) +
            (c.wilcoxon_method == "none" ? "" : " (" + c.wilcoxon_method + ")") + " |";
    } else {
      md += mr.is_baseline ? " baseline | | | |" : " – | – | – | – |";
    }
    md += " " + escape(row_notes(row)) + " |\n";
  }
  if (!truth.empty()) truth_section(board, b, truth, md);

  std::vector<const LeaderboardRow*> points;
  bool replicated = false;
  for (const auto& row : board.rows) {
    if (row.dataset != b.dataset) continue;
    points.push_back(&row);
    replicated |= row.replicates > 1;
  }
  md += "\n### Every grid point of " + escape(b.dataset) + "\n\n";
  md += "| Method | Config | Runs | Val " + m + " (selects) | Test " + m + " |";
  md += replicated ? " Reps | Test " + m + " over reps |" : "";
  md += " Selected | Note |\n|---|---|---:|---:|---:|";
  md += replicated ? "---:|---:|" : "";
  md += "---|---|\n";
  for (const LeaderboardRow* row : points) {
    md += "| " + escape(row->method) + " | " +
          (row->config_label.empty() ? "–" : escape(row->config_label)) + " | " +
          format::runs(*row) + " | " +
          format::mean_std(row->val_selection.count ? &row->val_selection : nullptr) + " | " +
          format::mean_std(format::find(row->test, b.metric)) + " |";
    if (replicated) {
      md += " " + std::to_string(row->replicates) + " | " +
            format::mean_std(format::find(row->test_replicate_means, b.metric)) + " |";
    }
    md += std::string(row->selected ? " ✔ |" : " |") + " " +
          escape(format::join_notes(
              {row->selectable ? "" : row->not_selectable, format::flags(row->protocol_flags)})) +
          " |\n";
  }
  md += "\n";
}

void ranks_section(const Leaderboard& board, std::string& md) {
  const RankSummary& r = board.ranks;
  md += "## Across benchmarks\n\n";
  if (r.benchmarks.empty()) {
    md += "No benchmark has a selected grid point for every method, so there are no ranks.\n";
  } else {
    md +=
        "Average rank of each method's selected grid point by its test metric (1 = best; ties "
        "share the "
        "average rank) over " +
        std::to_string(r.benchmarks.size()) + " benchmark(s): ";
    for (std::size_t i = 0; i < r.benchmarks.size(); ++i)
      md += (i ? ", " : "") + escape(r.benchmarks[i]);
    md += ".\n\n| Method | Average rank |\n|---|---:|\n";
    for (std::size_t i = 0; i < r.methods.size(); ++i) {
      md += "| " + escape(r.methods[i]) + " | " + format::fixed(r.average_ranks[i], 2) + " |\n";
    }
    if (r.critical_difference > 0) {
      md +=
          "\nNemenyi critical difference (α = 0.05, k = " + std::to_string(r.methods.size()) +
          " methods, N = " + std::to_string(r.benchmarks.size()) +
          " benchmarks): CD = " + format::fixed(r.critical_difference) +
          ". Methods whose average ranks differ by less than CD are not significantly different.\n";
    }
  }
  for (const auto& s : r.skipped) md += "\n- skipped " + escape(s);
  md += r.skipped.empty() ? "\n" : "\n\n";
}

std::string csv_field(const std::string& text) {
  if (text.find_first_of(",\"\n\r") == std::string::npos) return text;
  std::string out = "\"";
  for (char c : text) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

std::string csv_number(double value) {
  if (!std::isfinite(value)) return "";
  char text[40];
  std::snprintf(text, sizeof text, "%.10g", value);
  return text;
}

}  // namespace

std::string metric_name(const std::string& key) {
  if (key == "auc") return "AUC";
  if (key == "c_index") return "C-index";
  if (key == "balanced_accuracy") return "Bal.Acc";
  if (key == "accuracy") return "Acc";
  if (key == "auc_hard_only") return "Hard-only AUC";
  if (key == "instance_auc") return "Inst. AUC";
  if (key == "instance_auc_hard") return "Inst. AUC (hard)";
  if (key == "instance_auc_easy") return "Inst. AUC (easy)";
  return key;
}

std::string to_markdown(const Leaderboard& board, const std::string& title) {
  std::string md = "# " + title + "\n\n";
  int failed = 0, quarantined = 0, not_run = 0;
  for (const auto& m : board.missing)
    (m.status == "failed" ? failed : m.status == "quarantined" ? quarantined : not_run)++;
  md += std::to_string(board.ok_results) + " ok results; " + std::to_string(board.missing.size()) +
        " missing (" + std::to_string(failed) + " failed, " + std::to_string(quarantined) +
        " quarantined, " + std::to_string(not_run) + " not run)" +
        (board.pruned_jobs > 0
             ? "; " + std::to_string(board.pruned_jobs) +
                   " pruned (never run: successive halving stopped their grid points on validation)"
             : "") +
        ".\n\n";
  if (board.rows.empty()) md += "No ok results yet.\n\n";
  for (const BenchmarkResult& b : board.benchmarks) benchmark_section(board, b, md);
  if (!board.rows.empty()) ranks_section(board, md);

  md += "## Missing\n\n";
  if (board.missing.empty()) {
    md += "none\n";
  } else {
    md +=
        "| Job | Dataset | Method | Fold | Seed | Status | Error "
        "|\n|---|---|---|---:|---:|---|---|\n";
    for (const auto& m : board.missing) {
      md += "| " + escape(m.job_id) + " | " + escape(m.dataset) + " | " + escape(m.model) + " | " +
            std::to_string(m.fold_index) + " | " + std::to_string(m.seed) + " | " + m.status +
            " | " + (m.error.empty() ? "" : escape(m.error, kMaxErrorChars)) + " |\n";
    }
  }
  if (!board.rows.empty()) {
    md +=
        "\n## How to read this\n\n"
        "- A cell is the mean ± population std (ddof 0) over fold-runs (folds × seeds/replicates); "
        "the "
        "95% CI is a percentile bootstrap of that mean (2,000 resamples, seeded by the config "
        "id).\n"
        "- Selection: per benchmark and method, the grid point with the best mean validation "
        "metric "
        "(AUC for two classes, balanced accuracy for more, C-index for survival). Without "
        "validation "
        "(val_ratio 0) several grid points cannot be told apart and none is picked.\n"
        "- Δ: mean over the (replicate, fold) pairs both methods ran of method − baseline. t-test: "
        "corrected resampled t (Nadeau & Bengio 2003), variance × (1/n + n_test/n_train) with the "
        "split "
        "sizes the results record (else 1/(k−1)), n − 1 df. Wilcoxon: signed-rank, zero "
        "differences "
        "dropped, exact for n ≤ 25 without ties, else normal approximation with tie correction.\n"
        "- ⚑ marks rows from flagged protocols (e.g. val_equals_test: validation is the test "
        "set).\n";
    if (board.pruned_jobs > 0) {
      md +=
          "- Pruned rows: successive halving stopped these grid points after a rung because their "
          "mean "
          "validation metric ranked below the best 1/eta of their siblings (test metrics are never "
          "read "
          "to decide). Their runs are partial, so their test metrics are not shown and they are "
          "never "
          "selected, compared or ranked.\n";
    }
  }
  return md;
}

std::string to_csv(const Leaderboard& board) {
  // Instance-truth columns only when some result has them: other leaderboards read as before.
  std::vector<std::string> truth;
  for (const std::string& key : truth_metric_keys()) {
    for (const LeaderboardRow& row : board.rows) {
      if (format::find(row.truth, key) != nullptr) {
        truth.push_back(key);
        break;
      }
    }
  }
  std::string csv =
      "benchmark,method,model,config_id,config_label,runs,expected_runs,replicates,metric,val_mean,"
      "val_std,"
      "test_mean,test_std,test_ci_low,test_ci_high,selectable,selected,selection,not_selectable,"
      "protocol_flags,"
      "baseline,delta_vs_baseline,pairs,t_p,wilcoxon_p,wilcoxon_method";
  for (const auto& k : truth) csv += "," + k + "_mean," + k + "_std," + k + "_delta," + k + "_t_p";
  csv += "\n";
  for (std::size_t i = 0; i < board.rows.size(); ++i) {
    const LeaderboardRow& row = board.rows[i];
    const MetricSummary* test = format::find(row.test, row.metric);
    std::string baseline;
    const MethodResult* result = nullptr;
    for (const auto& b : board.benchmarks) {
      if (b.dataset != row.dataset) continue;
      baseline = b.baseline;
      for (const auto& m : b.methods) {
        if (m.row == int(i) && m.compared) result = &m;
      }
    }
    std::string flags;
    for (const auto& f : row.protocol_flags) flags += (flags.empty() ? "" : ";") + f;
    const auto value = [](const MetricSummary* s, double MetricSummary::*field) {
      return s == nullptr ? std::string() : csv_number(s->*field);
    };
    const MetricSummary* val = row.val_selection.count ? &row.val_selection : nullptr;
    csv += csv_field(row.dataset) + "," + csv_field(row.method) + "," + csv_field(row.model) + "," +
           row.config_id + "," + csv_field(row.config_label) + "," + std::to_string(row.runs) +
           "," + std::to_string(row.expected_runs) + "," + std::to_string(row.replicates) + "," +
           row.metric + "," + value(val, &MetricSummary::mean) + "," +
           value(val, &MetricSummary::std) + "," + value(test, &MetricSummary::mean) + "," +
           value(test, &MetricSummary::std) + "," + value(test, &MetricSummary::ci_low) + "," +
           value(test, &MetricSummary::ci_high) + "," + (row.selectable ? "true" : "false") + "," +
           (row.selected ? "true" : "false") + "," + csv_field(row.selection) + "," +
           csv_field(row.not_selectable) + "," + csv_field(flags) + "," + csv_field(baseline) + ",";
    if (result != nullptr) {
      const Comparison& c = result->comparison;
      csv += csv_number(c.mean_difference) + "," + std::to_string(c.pairs) + "," +
             csv_number(c.t_p) + "," + csv_number(c.wilcoxon_p) + "," + c.wilcoxon_method;
    } else {
      csv += ",,,,";
    }
    for (const auto& k : truth) {
      const MetricSummary* s = format::find(row.truth, k);
      csv += "," + value(s, &MetricSummary::mean) + "," + value(s, &MetricSummary::std) + ",";
      const auto c = result != nullptr ? result->truth_comparisons.find(k)
                                       : std::map<std::string, Comparison>::const_iterator();
      if (result != nullptr && c != result->truth_comparisons.end())
        csv += csv_number(c->second.mean_difference) + "," + csv_number(c->second.t_p);
      else
        csv += ",";
    }
    csv += "\n";
  }
  return csv;
}

}  // namespace mil::orch
