// Renders the leaderboard page in headless Chromium, the way a person opens it. Chromium is not a
// build dependency (it is large), so the test skips with a message where it is not installed.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "orchestrator/leaderboard/html.h"
#include "orchestrator/leaderboard/leaderboard.h"
#include "orchestrator/leaderboard/report.h"
#include "tests/support/temp_dir.h"

namespace mil::orch {
namespace {

namespace fs = std::filesystem;

/// The first of `names` found on PATH, or "".
std::string find_on_path(const std::vector<std::string>& names) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return "";
  for (const auto& name : names) {
    std::string dirs = path;
    for (std::size_t start = 0; start <= dirs.size();) {
      const std::size_t end = std::min(dirs.find(':', start), dirs.size());
      const fs::path candidate = fs::path(dirs.substr(start, end - start)) / name;
      if (!candidate.parent_path().empty() && ::access(candidate.c_str(), X_OK) == 0)
        return candidate.string();
      start = end + 1;
    }
  }
  return "";
}

Leaderboard sample_board() {
  std::vector<JobResult> results;
  for (const char* dataset : {"camelyon16", "tcga-nsclc"}) {
    for (const char* model : {"abmil", "gabmil", "transmil"}) {
      for (int fold = 0; fold < 5; ++fold) {
        JobSpec spec;
        spec.dataset.name = dataset;
        spec.dataset.root = "/data";
        spec.model.name = model;
        spec.split.fold_index = fold;
        JobResult r;
        r.spec = spec;
        r.job_id = spec.id();
        r.config_id = spec.config_id();
        r.status = "ok";
        const double shift = (std::string(model) == "gabmil"     ? 0.02
                              : std::string(model) == "transmil" ? -0.03
                                                                 : 0.0);
        r.metrics = {
            {"test", {{"auc", 0.85 + shift + 0.01 * fold}, {"accuracy", 0.8}, {"bags", 40}}},
            {"train", {{"bags", 130}}},
            {"val", {{"auc", 0.8 + 0.01 * fold}}}};
        for (int e = 0; e < 20; ++e)
          r.history.push_back({{"val", {{"auc", 0.6 + shift + 0.01 * e}}}});
        results.push_back(r);
      }
    }
  }
  return build_leaderboard(results, {}, {"abmil", {}});
}

TEST(LeaderboardHtml, RendersInHeadlessChromium) {
  const std::string chromium = find_on_path({"chromium", "chromium-browser", "google-chrome"});
  if (chromium.empty()) {
    GTEST_SKIP() << "chromium is not installed; `apt-get install chromium` to render "
                    "leaderboard.html in this test";
  }
  testing::TempDir dir;
  const std::string page = dir / "leaderboard.html";
  std::ofstream(page) << to_html(sample_board(), "Leaderboard: chromium check");
  const std::string png = dir / "leaderboard.png";
  const std::string command =
      "timeout 90 '" + chromium +
      "' --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1200,2400 "
      "--screenshot='" +
      png + "' 'file://" + page + "' > '" + (dir / "chromium.log") + "' 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << "chromium failed; see its log: " << command;
  std::ifstream in(png, std::ios::binary);
  ASSERT_TRUE(in) << "no screenshot written";
  char signature[8] = {};
  in.read(signature, sizeof signature);
  EXPECT_EQ(std::string(signature + 1, 3), "PNG");
  EXPECT_GT(fs::file_size(png), 20000u) << "a blank page compresses to far less";
}

}  // namespace
}  // namespace mil::orch
