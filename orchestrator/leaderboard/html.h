#pragma once
// The leaderboard as one self-contained HTML page with inline SVG plots (no scripts, fonts or
// images from elsewhere).
#include <string>

#include "orchestrator/leaderboard/leaderboard.h"

namespace mil::orch {

/// One HTML page: the Markdown's tables, per-benchmark bars with 95% intervals, the
/// critical-difference diagram and the per-epoch validation curves of the selected configs, all
/// inline.
std::string to_html(const Leaderboard& board, const std::string& title);

}  // namespace mil::orch
