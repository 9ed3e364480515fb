// The status page in a real browser: headless Chromium loads "/" from a live StatusServer, runs the
// page's script (which fetches /status.json) and dumps the resulting DOM; the counts of the board
// must be in it. Skips when no Chromium is installed (Debian: apt-get install chromium;
// scripts/deps.sh installs it). ctest label: browser.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "orchestrator/status/board.h"
#include "orchestrator/status/server.h"
#include "tests/support/temp_dir.h"

namespace mil::orch {
namespace {

/// The first Chromium-like browser on PATH, or "".
std::string find_chromium() {
  for (const char* name : {"chromium", "chromium-browser", "google-chrome"}) {
    const std::string probe = std::string("command -v ") + name + " >/dev/null 2>&1";
    if (std::system(probe.c_str()) == 0) return name;
  }
  return "";
}

/// Standard output of `command`.
std::string run(const std::string& command) {
  std::string out;
  if (FILE* pipe = ::popen(command.c_str(), "r")) {
    char chunk[4096];
    std::size_t n;
    while ((n = std::fread(chunk, 1, sizeof chunk, pipe)) > 0) out.append(chunk, n);
    ::pclose(pipe);
  }
  return out;
}

TEST(StatusPageInBrowser, RenderedPageShowsTheBoardsCounts) {
  const std::string chromium = find_chromium();
  if (chromium.empty())
    GTEST_SKIP()
        << "chromium is not installed (apt-get install chromium); the page was not rendered";
  StatusBoardOptions o;
  o.sweep_name = "browser-demo";
  StatusBoard board(o);
  std::vector<StatusJobInfo> jobs;
  for (int i = 0; i < 23; ++i)
    jobs.push_back({"job" + std::to_string(i), "abmil", "synth", i % 5, 2021});
  std::set<std::string> done_before;
  for (int i = 0; i < 4; ++i) done_before.insert("job" + std::to_string(i));
  board.sweep_started(jobs, done_before);  // 4 skipped
  board.worker_seen(1, "node-a");
  board.worker_seen(2, "node-b");
  for (int i = 4; i < 15; ++i) {  // 9 done, 2 failed
    board.job_assigned("job" + std::to_string(i), 1);
    board.job_finished("job" + std::to_string(i), i < 13 ? "ok" : "failed",
                       "<img src=x onerror=alert(1)> bad bag");
  }
  board.job_assigned("job15", 2);  // 1 running
  board.job_assigned("job16", 1);
  board.job_reported("job16");  // 1 committing, 6 pending
  StatusServer server([&board] { return to_status_json(board.snapshot()); }, StatusServerOptions{});

  testing::TempDir profile;
  const std::string command =
      "timeout 90 " + chromium +
      " --headless --disable-gpu --no-sandbox --no-first-run --disable-dev-shm-usage"
      " --user-data-dir=" +
      profile.path().string() + " --virtual-time-budget=5000 --dump-dom " + server.url() +
      " 2>/dev/null";
  const std::string dom = run(command);
  ASSERT_NE(dom.find("</html>"), std::string::npos)
      << "chromium printed no DOM; command: " << command;
  // Filled in by the page's script from /status.json (the static page says "?").
  EXPECT_NE(dom.find("<span id=\"sweep-name\">browser-demo</span>"), std::string::npos);
  EXPECT_NE(dom.find("<b id=\"count-total\">23</b>"), std::string::npos);
  EXPECT_NE(dom.find("<b id=\"count-done\">9</b>"), std::string::npos);
  EXPECT_NE(dom.find("<b id=\"count-skipped\">4</b>"), std::string::npos);
  EXPECT_NE(dom.find("<b id=\"count-running\">1</b>"), std::string::npos);
  EXPECT_NE(dom.find("<b id=\"count-committing\">1</b>"), std::string::npos);
  EXPECT_NE(dom.find("<b id=\"count-pending\">6</b>"), std::string::npos);
  EXPECT_NE(dom.find("<b id=\"count-failed\">2</b>"), std::string::npos);
  EXPECT_NE(dom.find("<span id=\"progress-text\">13/23 done (65% finished)</span>"),
            std::string::npos);
  EXPECT_NE(dom.find("<td>node-b</td>"), std::string::npos);  // the running job's host
  // A failure's error is shown as text, never as markup.
  EXPECT_NE(dom.find("&lt;img src=x onerror=alert(1)&gt; bad bag"), std::string::npos);
  EXPECT_EQ(dom.find("<img"), std::string::npos);
  EXPECT_NE(dom.find("class=\"ok\""), std::string::npos) << "the page reports no connection";
}

}  // namespace
}  // namespace mil::orch
