#include "orchestrator/schedule/plan.h"

#include <gtest/gtest.h>

#include "orchestrator/schedule/priority.h"

namespace mil::orch {
namespace {

/// Jobs "j0".. with costs = their seconds (longest first) or all 1 (file order).
std::vector<ScheduledJob> jobs_of(const std::vector<double>& seconds, bool longest_first) {
  std::vector<ScheduledJob> jobs;
  for (std::size_t i = 0; i < seconds.size(); ++i) {
    jobs.push_back(
        ScheduledJob{JobSpec{}, "j" + std::to_string(i), longest_first ? seconds[i] : 1.0});
  }
  return jobs;
}

PlanCluster cpu_workers(int workers) {
  PlanCluster c;
  c.cpu_workers_per_node = workers;
  return c;
}

TEST(Plan, LongestFirstFinishesSoonerThanFileOrder) {
  const std::vector<double> seconds = {1, 2, 3, 4};
  // File order on 2 workers: 1 | 2, then 3 at t=1 (ends 4) and 4 at t=2 (ends 6).
  const PlanResult file = simulate_plan(jobs_of(seconds, false), seconds, {}, cpu_workers(2));
  EXPECT_DOUBLE_EQ(file.makespan_s, 6);
  EXPECT_NEAR(file.utilisation, 10.0 / 12, 1e-12);
  // Longest first: 4 | 3, then 2 at t=3 and 1 at t=4: both end at 5.
  const PlanResult lpt = simulate_plan(jobs_of(seconds, true), seconds, {}, cpu_workers(2));
  EXPECT_DOUBLE_EQ(lpt.makespan_s, 5);
  EXPECT_DOUBLE_EQ(lpt.utilisation, 1.0);
  EXPECT_DOUBLE_EQ(lpt.work_s, 10);
  EXPECT_DOUBLE_EQ(lpt.lower_bound_s, 5);
  ASSERT_EQ(lpt.runs.size(), 4u);
  EXPECT_EQ(lpt.runs.front().job, 3u);
}

TEST(Plan, CpuJobsOnANodeShareItsCores) {
  PlanCluster c = cpu_workers(2);
  c.cpus_per_node = 1;
  const std::vector<double> seconds = {2, 2};
  EXPECT_DOUBLE_EQ(simulate_plan(jobs_of(seconds, true), seconds, {}, c).makespan_s, 4);
  c.cpus_per_node = 2;
  EXPECT_DOUBLE_EQ(simulate_plan(jobs_of(seconds, true), seconds, {}, c).makespan_s, 2);
}

TEST(Plan, JobsSharingAGpuSlowEachOtherDownByHowBusyOneKeepsIt) {
  PlanCluster c;
  c.gpus_per_node = 1;
  c.jobs_per_gpu = 2;
  c.gpu_busy = 0.5;  // two fit without slowing down
  const std::vector<double> seconds = {2, 2};
  EXPECT_DOUBLE_EQ(simulate_plan(jobs_of(seconds, true), seconds, {}, c).makespan_s, 2);
  c.gpu_busy = 1;  // one job saturates the GPU: sharing gains nothing
  EXPECT_DOUBLE_EQ(simulate_plan(jobs_of(seconds, true), seconds, {}, c).makespan_s, 4);
}

TEST(Plan, AJobWhoseMemoryDoesNotFitBesideTheRunningOneWaits) {
  PlanCluster c;
  c.gpus_per_node = 1;
  c.jobs_per_gpu = 2;
  c.gpu_busy = 0.5;
  c.gpu_memory_bytes = 10;  // 9 usable: two 6-byte jobs cannot share it
  const std::vector<double> seconds = {2, 2};
  const PlanResult r = simulate_plan(jobs_of(seconds, true), seconds, {6, 6}, c);
  EXPECT_DOUBLE_EQ(r.makespan_s, 4);
  EXPECT_DOUBLE_EQ(simulate_plan(jobs_of(seconds, true), seconds, {4, 4}, c).makespan_s, 2);
}

TEST(Plan, DependentsStartWhenTheirBaselineEndsAndTheCriticalPathIsReported) {
  std::vector<ScheduledJob> jobs = jobs_of({1, 2, 2}, true);
  jobs[0].id = "base";
  jobs[1].depends_on = {"base"};
  jobs[2].depends_on = {"base"};
  const std::vector<double> seconds = {1, 2, 2};
  prioritize(jobs, seconds);
  const PlanResult r = simulate_plan(jobs, seconds, {}, cpu_workers(2));
  EXPECT_DOUBLE_EQ(r.makespan_s, 3);  // base 0-1, then both dependents 1-3
  EXPECT_DOUBLE_EQ(r.critical_path_s, 3);
  ASSERT_EQ(r.critical_path.size(), 2u);
  EXPECT_EQ(r.critical_path.front(), 0u);
  EXPECT_DOUBLE_EQ(r.lower_bound_s, 3);
  EXPECT_NEAR(r.utilisation, 5.0 / 6, 1e-12);
}

TEST(Plan, AGroupJobRunsOnAllItsWorkersAtOnce) {
  std::vector<ScheduledJob> jobs = jobs_of({3, 1}, true);
  jobs[0].ranks = 2;
  const PlanResult r = simulate_plan(jobs, {3, 1}, {}, cpu_workers(2));
  EXPECT_DOUBLE_EQ(r.makespan_s, 4);
  EXPECT_DOUBLE_EQ(r.work_s, 7);
  EXPECT_THROW(simulate_plan(jobs, {3, 1}, {}, cpu_workers(1)), std::runtime_error);
}

/// `points` grid points (train.lr) x `folds` folds of one dataset and method.
std::vector<ScheduledJob> grid(int points, int folds) {
  std::vector<ScheduledJob> jobs;
  for (int p = 0; p < points; ++p) {
    for (int f = 0; f < folds; ++f) {
      JobSpec spec;
      spec.dataset.name = "d";
      spec.train.lr = 1e-4 * (p + 1);
      spec.split.fold_count = folds;
      spec.split.fold_index = f;
      jobs.push_back(ScheduledJob{spec, spec.id()});
    }
  }
  return jobs;
}

TEST(Plan, HalvingKeepsTheBestOneOverEtaOfEachRungAndWaitsForTheRungBefore) {
  const std::vector<ScheduledJob> jobs = grid(/*points=*/4, /*folds=*/3);
  std::vector<ScheduledJob> kept;
  const std::vector<std::size_t> index = halving_survivors(jobs, HalvingSettings{2, {}}, kept);
  // Rungs of one fold each: 4 points run fold 0, 2 run fold 1, 1 runs fold 2: 7 of 12 jobs.
  EXPECT_EQ(index.size(), 7u);
  // Jobs are point-major: point p's fold f is job 3p + f.
  EXPECT_EQ(index, (std::vector<std::size_t>{0, 1, 2, 3, 4, 6, 9}));
  int rung1 = 0;
  for (const ScheduledJob& job : kept) {
    if (job.spec.split.fold_index == 1) {
      ++rung1;
      EXPECT_EQ(job.depends_on.size(), 4u) << "waits for the four fold-0 jobs";
    }
    if (job.spec.split.fold_index == 2) {
      EXPECT_EQ(job.depends_on.size(), 2u);
    }
  }
  EXPECT_EQ(rung1, 2);
}

TEST(Plan, HalvingNeverPrunesAPointThatAnotherJobDependsOn) {
  std::vector<ScheduledJob> jobs = grid(3, 2);
  ScheduledJob dependent = jobs.front();
  dependent.id = "mhim";
  dependent.spec.dataset.name = "elsewhere";
  dependent.depends_on = {jobs[4].id};  // point 2, fold 0
  jobs.push_back(dependent);
  std::vector<ScheduledJob> kept;
  const auto index = halving_survivors(jobs, HalvingSettings{3, {}}, kept);
  // Points 0 and 1 form the bracket (point 2 is exempt): both run fold 0, one runs fold 1; point 2
  // and the dependent run whole: 2 + 1 + 2 + 1.
  EXPECT_EQ(index.size(), 6u);
}

}  // namespace
}  // namespace mil::orch
