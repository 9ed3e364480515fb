#include "orchestrator/schedule/cost_calibrator.h"

#include <cmath>

#include <gtest/gtest.h>

namespace mil::orch {
namespace {

CostObservation seen(const std::string& model, const std::string& dataset, double predicted,
                     double actual) {
  return CostObservation{model, dataset, predicted, actual};
}

TEST(CostCalibrator, LeavesPredictionsAloneBeforeAnyJobFinished) {
  const CostCalibrator calibrator;
  EXPECT_DOUBLE_EQ(calibrator.factor("abmil", "d"), 1.0);
  EXPECT_DOUBLE_EQ(calibrator.calibrated("abmil", "d", 42), 42);
}

TEST(CostCalibrator, OneJobMovesItsGroupItsModelAndOtherModelsByShrinkingAmounts) {
  CostCalibrator calibrator;
  calibrator.observe(seen("abmil", "d", 10, 20));  // twice as slow as predicted
  // With prior weight 2: global ln2/3; model (ln2 + 2 ln2/3)/3 = 5/9 ln2; group (ln2 + 10/9 ln2)/3.
  EXPECT_NEAR(calibrator.factor("abmil", "d"), std::pow(2.0, 19.0 / 27), 1e-12);
  EXPECT_NEAR(calibrator.factor("abmil", "other"), std::pow(2.0, 5.0 / 9), 1e-12);
  EXPECT_NEAR(calibrator.factor("transmil", "d"), std::pow(2.0, 1.0 / 3), 1e-12);
  EXPECT_EQ(calibrator.count("abmil", "d"), 1);
  EXPECT_EQ(calibrator.count("transmil", "d"), 0);
}

TEST(CostCalibrator, ManyJobsOfAGroupOutweighThePrior) {
  CostCalibrator calibrator;
  for (int i = 0; i < 200; ++i) calibrator.observe(seen("mhim:attn", "d", 5, 15));
  EXPECT_NEAR(calibrator.factor("mhim:attn", "d"), 3.0, 0.03);
}

TEST(CostCalibrator, TheFactorDoesNotDependOnTheOrderOfTheJobs) {
  const std::vector<CostObservation> jobs = {seen("a", "x", 1, 3), seen("a", "y", 2, 1),
                                             seen("b", "x", 4, 5), seen("a", "x", 1, 2)};
  CostCalibrator forward, backward;
  for (const auto& o : jobs) forward.observe(o);
  for (auto it = jobs.rbegin(); it != jobs.rend(); ++it) backward.observe(*it);
  for (const auto& [m, d] : {std::pair{"a", "x"}, {"a", "y"}, {"b", "x"}, {"c", "z"}}) {
    EXPECT_NEAR(forward.factor(m, d), backward.factor(m, d), 1e-12);
  }
}

TEST(CostCalibrator, IgnoresJobsWithoutAPositiveTime) {
  CostCalibrator calibrator;
  calibrator.observe(seen("a", "x", 0, 3));
  calibrator.observe(seen("a", "x", 2, 0));
  calibrator.observe(seen("a", "x", 2, NAN));
  EXPECT_EQ(calibrator.count(), 0);
  EXPECT_DOUBLE_EQ(calibrator.factor("a", "x"), 1.0);
}

TEST(CostCalibrator, ActualSecondsOfAResumedJobAddTheEpochsOfEarlierRuns) {
  JobResult fresh;
  fresh.runtime["seconds"] = 12.5;
  EXPECT_DOUBLE_EQ(actual_seconds(fresh), 12.5);

  JobResult resumed;
  resumed.runtime["seconds"] = 7.0;  // this run: epochs 2 and 3 (3 + 3 s) and 1 s outside them
  resumed.metrics["selection"] = {{"resumed_from_epoch", 2}};
  resumed.history = nlohmann::json::array();
  for (int e = 0; e < 4; ++e) resumed.history.push_back({{"epoch", e}, {"seconds", 3.0}});
  EXPECT_DOUBLE_EQ(actual_seconds(resumed), 12 + 1);
  EXPECT_DOUBLE_EQ(actual_seconds(JobResult{}), 0);
}

}  // namespace
}  // namespace mil::orch
