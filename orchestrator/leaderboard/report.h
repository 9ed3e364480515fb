#pragma once
// The leaderboard as text files: Markdown (leaderboard.md) and CSV (one line per grid point). The
// HTML page is html.h.
#include <string>

#include "orchestrator/leaderboard/leaderboard.h"

namespace mil::orch {

/// Markdown: `title`, per benchmark the selected rows with intervals and paired tests plus every
/// grid point, the ranks across benchmarks, the missing jobs and a note on the statistics.
std::string to_markdown(const Leaderboard& board, const std::string& title);

/// CSV with a header line, one line per grid point (the comparison columns filled for selected
/// rows).
std::string to_csv(const Leaderboard& board);

/// Display name of a metric key: "auc" -> "AUC", "c_index" -> "C-index", "balanced_accuracy" ->
/// "Bal.Acc".
std::string metric_name(const std::string& key);

}  // namespace mil::orch
