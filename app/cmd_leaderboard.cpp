#include <cstdio>
#include <fstream>
#include <iostream>

#include "app/args.h"
#include "app/commands.h"
#include "orchestrator/leaderboard.h"

namespace mil::app {
namespace {
constexpr const char* kHelp = R"(usage: mhim leaderboard RESULTS_DIR [--print]

Rebuilds RESULTS_DIR/leaderboard.md and leaderboard.json from the per-job result files:
mean ± population std over folds x seeds per configuration, and the jobs that are missing
(failed or not run) against the sweep's manifest.

options:
  --print     also print the Markdown table

example:
  mhim leaderboard results/quickstart --print
)";
}  // namespace

int cmd_leaderboard(const Tokens& tokens) {
  if (!tokens.empty() && tokens[0] == "--help") return std::fputs(kHelp, stdout), 0;
  std::string dir;
  bool print = false;
  try {
    const Args args(tokens, {}, {"print"});
    if (args.positional().size() != 1) throw UsageError("expected exactly one results directory");
    dir = args.positional()[0];
    print = args.has("print");
  } catch (const UsageError& e) {
    return usage_failure("leaderboard", e.what());
  }
  const std::string path = orch::write_leaderboard(dir);
  if (print) std::cout << std::ifstream(path).rdbuf();
  std::printf("leaderboard: %s\n", path.c_str());
  return 0;
}

}  // namespace mil::app
