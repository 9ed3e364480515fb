#include "orchestrator/schedule/sweep_costs.h"

#include <cmath>

#include <gtest/gtest.h>

namespace mil::orch {
namespace {

/// Jobs on datasets "small" (10 bags) and "large" (100 bags) of 10 instances, one epoch, no
/// validation, 2 folds: a job trains on half the instances and evaluates all of them once.
CostModel toy_model() {
  InstanceCost abmil{"abmil", "", "cpu", "fp32", 0.01, 0.0};
  InstanceCost transmil{"transmil", "", "cpu", "fp32", 0.1, 0.0};
  RunContext context;
  context.overhead_s = 0;
  return CostModel({abmil, transmil}, context, [](const DatasetSpec& spec) {
    DatasetSize size;
    size.bags = spec.name == "large" ? 100 : 10;
    size.instances_per_bag = 10;
    return size;
  });
}

ScheduledJob job(const std::string& model, const std::string& dataset, int fold) {
  JobSpec spec;
  spec.model.name = model;
  spec.dataset.name = dataset;
  spec.train.epochs = 1;
  spec.split.fold_count = 2;
  spec.split.fold_index = fold;
  return ScheduledJob{spec, spec.id()};
}

TEST(SweepCosts, PredictsFromTheTableUntilJobsFinish) {
  const std::vector<ScheduledJob> jobs = {job("abmil", "small", 0), job("transmil", "large", 0)};
  const SweepCosts costs(jobs, toy_model());
  EXPECT_NEAR(costs.seconds(0), 50 * 0.01, 1e-12);  // half of 100 instances train
  EXPECT_NEAR(costs.seconds(1), 500 * 0.1, 1e-12);
  EXPECT_NEAR(costs.seconds_of(jobs[1].id), 50, 1e-12);
  EXPECT_EQ(costs.seconds_of("nope"), 0);
}

TEST(SweepCosts, ResultsOnDiskCalibrateTheirGroupSoAResumedSweepKeepsWhatItLearnt) {
  const std::vector<ScheduledJob> jobs = {job("abmil", "small", 0), job("abmil", "small", 1)};
  JobResult done;
  done.status = "ok";
  done.spec = jobs[0].spec;
  done.runtime["seconds"] = 4 * 0.5;  // four times the prediction
  const SweepCosts costs(jobs, toy_model(), {done});
  // One observation of ratio 4, prior weight 2: the group's factor is 4^(19/27).
  EXPECT_NEAR(costs.seconds(1), 0.5 * std::pow(4.0, 19.0 / 27), 1e-12);
  EXPECT_EQ(costs.calibrator().count(), 1);
}

TEST(SweepCosts, ABaselinesPriorityIncludesTheJobItGates) {
  std::vector<ScheduledJob> jobs = {job("abmil", "small", 0), job("transmil", "small", 0)};
  jobs[1].depends_on = {jobs[0].id};
  const SweepCosts costs(jobs, toy_model());
  const auto p = costs.prioritized(jobs);
  EXPECT_NEAR(p[0].cost, 0.5 + 5, 1e-12);
  EXPECT_NEAR(p[1].cost, 5, 1e-12);
}

TEST(SweepCosts, AsksForARefreshWhenAGroupsCountReachesAPowerOfTwo) {
  std::vector<ScheduledJob> jobs;
  for (int f = 0; f < 2; ++f) {
    for (int seed = 0; seed < 3; ++seed) {
      jobs.push_back(job("abmil", "small", f));
      jobs.back().spec.seed = std::uint64_t(seed);
      jobs.back().id = jobs.back().spec.id();
    }
  }
  SweepCosts costs(jobs, toy_model());
  std::vector<bool> due;
  for (const auto& j : jobs) {
    costs.observe(j.id, 1.0);
    due.push_back(costs.refresh_due());
  }
  EXPECT_EQ(due, (std::vector<bool>{true, true, false, true, false, false}));
  EXPECT_FALSE(costs.refresh_due()) << "asked once";
}

}  // namespace
}  // namespace mil::orch
