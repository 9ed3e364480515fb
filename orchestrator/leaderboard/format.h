#pragma once
// Number and cell formatting shared by the leaderboard's Markdown, CSV and HTML writers.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "orchestrator/leaderboard/leaderboard.h"

namespace mil::orch::format {

/// "0.912", or "–" for a missing value.
inline std::string fixed(double value, int digits = 3) {
  if (!std::isfinite(value)) return "–";
  char text[48];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

/// "+0.012" / "-0.004": a difference with its sign.
inline std::string signed_fixed(double value, int digits = 3) {
  if (!std::isfinite(value)) return "–";
  char text[48];
  std::snprintf(text, sizeof text, "%+.*f", digits, value);
  return text;
}

/// A p-value: "0.043", "<0.001", or "–".
inline std::string p_value(double p) {
  if (!std::isfinite(p)) return "–";
  if (p < 0.001) return "<0.001";
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", p);
  return text;
}

/// "0.900 ± 0.100" for a summary with runs, else "–".
inline std::string mean_std(const MetricSummary* s) {
  if (s == nullptr || s->count == 0) return "–";
  return fixed(s->mean) + " ± " + fixed(s->std);
}

/// "[0.871, 0.933]" for a summary with runs, else "–".
inline std::string interval(const MetricSummary* s) {
  if (s == nullptr || s->count == 0) return "–";
  return "[" + fixed(s->ci_low) + ", " + fixed(s->ci_high) + "]";
}

/// The summary of `key` in `metrics`, or null.
inline const MetricSummary* find(const std::map<std::string, MetricSummary>& metrics,
                                 const std::string& key) {
  const auto it = metrics.find(key);
  return it == metrics.end() || it->second.count == 0 ? nullptr : &it->second;
}

/// "5", or "3/5" when the manifest expected more runs.
inline std::string runs(const LeaderboardRow& row) {
  if (row.expected_runs > 0 && row.expected_runs != row.runs) {
    return std::to_string(row.runs) + "/" + std::to_string(row.expected_runs);
  }
  return std::to_string(row.runs);
}

/// The test metrics shown beside the headline one: the classification metrics other than it.
inline std::vector<std::string> other_metrics(const std::string& metric) {
  if (metric == "c_index") return {};
  std::vector<std::string> out;
  for (const char* key : {"auc", "accuracy", "balanced_accuracy"}) {
    if (key != metric) out.push_back(key);
  }
  return out;
}

/// The instance-truth metrics (truth_metric_keys) that some selected row of `b` reports, in display
/// order; empty for benchmarks without instance truth.
inline std::vector<std::string> truth_columns(const Leaderboard& board, const BenchmarkResult& b) {
  std::vector<std::string> keys;
  for (const std::string& key : truth_metric_keys()) {
    for (const MethodResult& mr : b.methods) {
      if (mr.row >= 0 && find(board.rows[std::size_t(mr.row)].truth, key) != nullptr) {
        keys.push_back(key);
        break;
      }
    }
  }
  return keys;
}

/// "⚑ val_equals_test, x" or "".
inline std::string flags(const std::vector<std::string>& protocol_flags) {
  if (protocol_flags.empty()) return "";
  std::string out = "⚑ ";
  for (std::size_t i = 0; i < protocol_flags.size(); ++i)
    out += (i ? ", " : "") + protocol_flags[i];
  return out;
}

/// Joins non-empty parts with "; ".
inline std::string join_notes(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) {
    if (!p.empty()) out += (out.empty() ? "" : "; ") + p;
  }
  return out;
}

}  // namespace mil::orch::format
