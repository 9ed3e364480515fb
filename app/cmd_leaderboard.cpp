#include <cstdio>
#include <fstream>
#include <iostream>

#include "app/args.h"
#include "app/commands.h"
#include "orchestrator/leaderboard/leaderboard.h"

namespace mil::app {
namespace {
constexpr const char* kHelp = R"(usage: mhim leaderboard RESULTS_DIR [--baseline METHOD] [--print]

Rebuilds RESULTS_DIR/leaderboard.{md,csv,json,html} from the per-job result files. Per benchmark and
method, the grid point with the best mean *validation* selection metric (AUC, balanced accuracy or
C-index) is chosen and its test metrics shown: mean ± population std over fold-runs and a bootstrap
95% interval of the mean. Every method is compared with the baseline on the fold-runs both ran
(corrected resampled t-test, Wilcoxon signed-rank); average ranks and the Nemenyi critical
difference summarise all benchmarks. Missing, failed and quarantined jobs are listed. The HTML page
is self-contained (inline SVG plots).

options:
  --baseline METHOD  method the others are compared with (default: the first model of the sweep)
  --print            also print the Markdown

example:
  mhim leaderboard results/quickstart --baseline abmil --print
)";
}  // namespace

int cmd_leaderboard(const Tokens& tokens) {
  if (!tokens.empty() && tokens[0] == "--help") return std::fputs(kHelp, stdout), 0;
  std::string dir;
  bool print = false;
  orch::LeaderboardOptions options;
  try {
    const Args args(tokens, {"baseline"}, {"print"});
    if (args.positional().size() != 1) throw UsageError("expected exactly one results directory");
    dir = args.positional()[0];
    print = args.has("print");
    options.baseline = args.get("baseline", "");
  } catch (const UsageError& e) {
    return usage_failure("leaderboard", e.what());
  }
  const std::string path = orch::write_leaderboard(dir, options);
  if (print) std::cout << std::ifstream(path).rdbuf();
  std::printf("leaderboard: %s (also .csv, .json, .html)\n", path.c_str());
  return 0;
}

}  // namespace mil::app
