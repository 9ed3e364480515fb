#include "orchestrator/leaderboard/run_time.h"

#include <gtest/gtest.h>

namespace mil::orch {
namespace {

JobResult finished(const std::string& dataset, const std::string& model, double actual,
                   double predicted) {
  JobResult r;
  r.status = "ok";
  r.spec.dataset.name = dataset;
  r.spec.model.name = model;
  r.runtime["seconds"] = actual;
  if (predicted > 0) r.runtime["predicted_s"] = predicted;
  return r;
}

TEST(RunTime, SumsPredictedAndActualSecondsPerDatasetAndMethod) {
  JobResult failed = finished("d", "abmil", 100, 100);
  failed.status = "failed";
  const std::vector<RunTimeLine> lines =
      run_time_lines({finished("d", "transmil", 30, 20), finished("d", "abmil", 4, 5),
                      finished("d", "abmil", 6, 5), failed, finished("e", "abmil", 9, 0)});
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].method, "abmil");  // by dataset, then method
  EXPECT_EQ(lines[0].jobs, 2);
  EXPECT_DOUBLE_EQ(lines[0].predicted_s, 10);
  EXPECT_DOUBLE_EQ(lines[0].actual_s, 10);
  EXPECT_EQ(lines[1].method, "transmil");
  EXPECT_EQ(lines[2].dataset, "e");
  EXPECT_EQ(lines[2].predicted_jobs, 0)
      << "a job without a prediction counts only as measured time";
  EXPECT_DOUBLE_EQ(lines[2].all_actual_s, 9);
}

TEST(RunTime, TheMarkdownSectionShowsEachRatioAndTheTotal) {
  const std::string md = run_time_markdown(run_time_lines({finished("d", "transmil", 30, 20)}));
  EXPECT_NE(md.find("## Run time: predicted vs actual"), std::string::npos);
  EXPECT_NE(md.find("| d | transmil | 1 | 20 | 30 | 1.50 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| **all** | | 1 | 20 | 30 | 1.50 |"), std::string::npos) << md;
  EXPECT_EQ(run_time_markdown({}), "");
}

}  // namespace
}  // namespace mil::orch
