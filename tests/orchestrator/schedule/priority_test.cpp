#include "orchestrator/schedule/priority.h"

#include <gtest/gtest.h>

namespace mil::orch {
namespace {

ScheduledJob job(const std::string& id, std::vector<std::string> depends_on = {}) {
  ScheduledJob j;
  j.id = id;
  j.depends_on = std::move(depends_on);
  return j;
}

TEST(Priority, WithoutDependenciesAJobsPriorityIsItsOwnSeconds) {
  const std::vector<ScheduledJob> jobs = {job("a"), job("b")};
  EXPECT_EQ(critical_path_priorities(jobs, {3, 7}), (std::vector<double>{3, 7}));
}

TEST(Priority, ABaselineCarriesItsLongestDependentAndGoesOutAheadOfIt) {
  // Baseline b (1 s) gates m1 (5 s) and m2 (3 s); j (5.5 s) is independent.
  std::vector<ScheduledJob> jobs = {job("m1", {"b"}), job("m2", {"b"}), job("j"), job("b")};
  prioritize(jobs, {5, 3, 5.5, 1});
  EXPECT_DOUBLE_EQ(jobs[3].cost, 6);  // 1 + max(5, 3)
  EXPECT_DOUBLE_EQ(jobs[0].cost, 5);
  EXPECT_DOUBLE_EQ(jobs[2].cost, 5.5);
  // The Scheduler hands out b first although j alone is longer.
  Scheduler scheduler(jobs, {});
  EXPECT_EQ(scheduler.next(1).job->id, "b");
  EXPECT_EQ(scheduler.next(2).job->id, "j");
}

TEST(Priority, ChainsAddUpAndDependenciesOutsideTheSweepAreIgnored) {
  const std::vector<ScheduledJob> jobs = {job("c", {"b"}), job("b", {"a"}),
                                          job("a", {"done-earlier"})};
  EXPECT_EQ(critical_path_priorities(jobs, {1, 2, 4}), (std::vector<double>{1, 3, 7}));
  EXPECT_EQ(critical_path(jobs, critical_path_priorities(jobs, {1, 2, 4})),
            (std::vector<std::size_t>{2, 1, 0}));
}

TEST(Priority, ACycleThrowsNamingAJobOnIt) {
  const std::vector<ScheduledJob> jobs = {job("x", {"y"}), job("y", {"x"})};
  try {
    critical_path_priorities(jobs, {1, 1});
    FAIL() << "no throw";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("cycle"), std::string::npos) << e.what();
  }
  EXPECT_THROW(critical_path_priorities(jobs, {1}), std::runtime_error);
}

}  // namespace
}  // namespace mil::orch
