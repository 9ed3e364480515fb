#include "orchestrator/scheduler.h"

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace mil::orch {
namespace {

using Kind = Assignment::Kind;

/// Jobs "j0".."j{n-1}" with the given costs (all 1 when omitted); specs are defaults.
std::vector<ScheduledJob> make_jobs(std::size_t n, const std::vector<double>& costs = {}) {
  std::vector<ScheduledJob> jobs;
  for (std::size_t i = 0; i < n; ++i) {
    jobs.push_back(
        ScheduledJob{JobSpec{}, "j" + std::to_string(i), costs.empty() ? 1.0 : costs[i]});
  }
  return jobs;
}

std::string take(Scheduler& scheduler, int worker) {
  const Assignment a = scheduler.next(worker);
  EXPECT_EQ(a.kind, Kind::kJob);
  return a.job == nullptr ? "" : a.job->id;
}

TEST(Scheduler, HandsEveryJobExactlyOnceToConcurrentWorkersThenStops) {
  Scheduler scheduler(make_jobs(10), /*already_done=*/{});
  std::map<int, std::string> held;
  std::multiset<std::string> handed_out;
  std::set<int> stopped;
  // Three workers take turns: each finishes what it holds, then asks again, until told to stop.
  while (stopped.size() < 3) {
    for (int worker = 1; worker <= 3; ++worker) {
      if (stopped.count(worker) > 0) continue;
      if (held.count(worker) > 0) {
        scheduler.complete(worker, held[worker], /*ok=*/true);
        held.erase(worker);
      }
      const Assignment a = scheduler.next(worker);
      if (a.kind == Kind::kStop) {
        stopped.insert(worker);
      } else {
        ASSERT_EQ(a.kind, Kind::kJob);  // max_attempts 1: nothing can come back, so never kWait
        held[worker] = a.job->id;
        handed_out.insert(a.job->id);
      }
    }
  }
  EXPECT_EQ(handed_out.size(), 10u);
  EXPECT_EQ(std::set<std::string>(handed_out.begin(), handed_out.end()).size(), 10u);
  EXPECT_TRUE(scheduler.finished());
  EXPECT_EQ(scheduler.done_count(), 10u);
  EXPECT_EQ(scheduler.failed_count(), 0u);
}

TEST(Scheduler, HandsOutHighestCostFirstWithTiesInOriginalOrder) {
  Scheduler scheduler(make_jobs(5, {1.0, 5.0, 2.0, 5.0, 0.5}), {});
  std::vector<std::string> order;
  for (int worker = 0; worker < 5; ++worker) order.push_back(take(scheduler, worker));
  EXPECT_EQ(order, (std::vector<std::string>{"j1", "j3", "j2", "j0", "j4"}));
  EXPECT_EQ(scheduler.running_count(), 5u);
  EXPECT_EQ(scheduler.next(/*worker=*/9).kind, Kind::kStop);
}

TEST(Scheduler, SkipsJobsAlreadyDone) {
  Scheduler scheduler(make_jobs(3), /*already_done=*/{"j0", "j2", "unrelated"});
  EXPECT_EQ(scheduler.done_count(), 2u);
  EXPECT_EQ(scheduler.pending_count(), 1u);
  EXPECT_EQ(take(scheduler, 1), "j1");
  EXPECT_EQ(scheduler.next(2).kind, Kind::kStop);
  scheduler.complete(1, "j1", true);
  EXPECT_TRUE(scheduler.finished());
}

TEST(Scheduler, RetriesFailedJobThenFailsAfterMaxAttempts) {
  Scheduler scheduler(make_jobs(1), {}, /*max_attempts=*/2);
  EXPECT_EQ(take(scheduler, 1), "j0");
  EXPECT_EQ(scheduler.next(2).kind, Kind::kWait);  // j0 may still fail and come back
  scheduler.complete(1, "j0", /*ok=*/false);
  EXPECT_EQ(scheduler.pending_count(), 1u);  // attempt 1 of 2: requeued
  EXPECT_EQ(take(scheduler, 2), "j0");
  EXPECT_EQ(scheduler.next(1).kind, Kind::kStop);  // last attempt running: nothing can come back
  scheduler.complete(2, "j0", /*ok=*/false);
  EXPECT_TRUE(scheduler.finished());
  EXPECT_EQ(scheduler.failed_ids(), std::vector<std::string>{"j0"});
  EXPECT_EQ(scheduler.done_count(), 0u);
}

TEST(Scheduler, WorkerLostRequeuesItsJobWhileAttemptsRemain) {
  Scheduler scheduler(make_jobs(2), {}, /*max_attempts=*/2);
  EXPECT_EQ(take(scheduler, 1), "j0");
  EXPECT_EQ(take(scheduler, 2), "j1");
  scheduler.worker_lost(1);
  scheduler.worker_lost(7);  // holds nothing: no effect
  EXPECT_EQ(scheduler.pending_count(), 1u);
  EXPECT_EQ(scheduler.running_ids(), (std::map<int, std::string>{{2, "j1"}}));
  EXPECT_EQ(take(scheduler, 3), "j0");
  scheduler.worker_lost(3);  // second attempt lost: failed
  EXPECT_EQ(scheduler.failed_ids(), std::vector<std::string>{"j0"});
  scheduler.complete(2, "j1", true);
  EXPECT_TRUE(scheduler.finished());
  EXPECT_EQ(scheduler.done_count(), 1u);
}

TEST(Scheduler, RejectsProtocolViolations) {
  Scheduler scheduler(make_jobs(2), {});
  EXPECT_EQ(take(scheduler, 1), "j0");
  EXPECT_THROW(scheduler.complete(2, "j0", true), std::runtime_error);  // wrong worker
  EXPECT_THROW(scheduler.complete(1, "j1", true), std::runtime_error);  // not the job it holds
  EXPECT_THROW(scheduler.next(1), std::runtime_error);                  // asks while holding j0
  EXPECT_EQ(scheduler.running_count(), 1u);                             // state unchanged
  EXPECT_THROW(Scheduler(make_jobs(2), {}, /*max_attempts=*/0), std::runtime_error);
  std::vector<ScheduledJob> twins = make_jobs(2);
  twins[1].id = "j0";
  EXPECT_THROW(Scheduler(twins, {}), std::runtime_error);
}

TEST(Scheduler, ScheduledJobsUseSpecIds) {
  JobSpec a, b;
  b.seed = 99;
  const std::vector<ScheduledJob> jobs = scheduled_jobs({a, b});
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].id, a.id());
  EXPECT_EQ(jobs[1].id, b.id());
  EXPECT_NE(jobs[0].id, jobs[1].id);
  EXPECT_EQ(jobs[1].cost, 1.0);
}

}  // namespace
}  // namespace mil::orch

namespace mil::orch {

TEST(SchedulerDependencies, HoldsADependentJobUntilItsDependencyIsDone) {
  auto jobs = make_jobs(2, {1.0, 5.0});
  jobs[1].depends_on = {"j0"};  // the costlier job must still wait
  Scheduler s(jobs, {});
  EXPECT_EQ(take(s, 1), "j0");
  EXPECT_EQ(s.next(2).kind, Assignment::Kind::kWait) << "j1 is not ready while j0 runs";
  s.complete(1, "j0", true);
  EXPECT_EQ(take(s, 2), "j1");
  s.complete(2, "j1", true);
  EXPECT_TRUE(s.finished());
}

TEST(SchedulerDependencies, FailsDependentsTransitivelyWhenADependencyFailsForGood) {
  auto jobs = make_jobs(4);
  jobs[1].depends_on = {"j0"};
  jobs[2].depends_on = {"j1"};
  Scheduler s(jobs, {});
  EXPECT_EQ(take(s, 1), "j0");
  EXPECT_EQ(take(s, 2), "j3");
  s.complete(1, "j0", false);
  const auto blocked = s.take_blocked();
  ASSERT_EQ(blocked.size(), 2u);
  EXPECT_EQ(blocked[0].first->id, "j1");
  EXPECT_EQ(blocked[0].second, "j0");
  EXPECT_EQ(blocked[1].first->id, "j2");
  EXPECT_EQ(blocked[1].second, "j1");
  EXPECT_TRUE(s.take_blocked().empty());
  s.complete(2, "j3", true);
  EXPECT_TRUE(s.finished());
  EXPECT_EQ(s.failed_count(), 3u);
  EXPECT_EQ(s.next(1).kind, Assignment::Kind::kStop);
}

TEST(SchedulerDependencies, TreatsDependenciesDoneBeforeARestartAsDone) {
  auto jobs = make_jobs(2);
  jobs[1].depends_on = {"old"};
  Scheduler s(jobs, {"old"});
  EXPECT_EQ(take(s, 1), "j0");
  EXPECT_EQ(take(s, 2), "j1");
  jobs[1].depends_on = {"nowhere"};
  EXPECT_THROW(Scheduler(jobs, {}), std::runtime_error);
}

TEST(SchedulerRetries, ASuccessfulRetryEndsDoneWithTheFirstErrorKept) {
  Scheduler s(make_jobs(1), {}, /*max_attempts=*/2);
  EXPECT_EQ(take(s, 1), "j0");
  EXPECT_EQ(s.complete(1, "j0", false, "killed (signal 9; out of memory?)"), Fate::kRetry);
  EXPECT_EQ(take(s, 1), "j0");
  EXPECT_EQ(s.attempts("j0"), 2);
  EXPECT_EQ(s.complete(1, "j0", true), Fate::kDone);
  EXPECT_EQ(s.attempt_errors("j0"), std::vector<std::string>{"killed (signal 9; out of memory?)"});
  EXPECT_TRUE(s.finished());
  EXPECT_EQ(s.done_count(), 1u);
  EXPECT_EQ(s.failed_count(), 0u);
}

TEST(SchedulerRetries, QuarantinesAJobThatFailsEveryAttemptTheSameWayUpToNumbersAndPaths) {
  Scheduler s(make_jobs(1), {}, /*max_attempts=*/3);
  EXPECT_EQ(take(s, 1), "j0");
  EXPECT_EQ(s.complete(1, "j0", false, "loading data: /tmp/a/x.pt: truncated at byte 7"), Fate::kRetry);
  EXPECT_EQ(take(s, 2), "j0");
  EXPECT_EQ(s.complete(2, "j0", false, "loading data: /scratch/b/x.pt: truncated at byte 9"), Fate::kRetry);
  EXPECT_EQ(take(s, 1), "j0");
  EXPECT_EQ(s.complete(1, "j0", false, "loading data: /tmp/c/x.pt: truncated at byte 12"), Fate::kQuarantined);
  EXPECT_EQ(s.attempt_errors("j0").size(), 3u);
  EXPECT_EQ(s.failed_ids(), std::vector<std::string>{"j0"});
  EXPECT_EQ(s.next(1).kind, Kind::kStop);
}

TEST(SchedulerRetries, FailsWithoutQuarantineWhenAttemptsFailDifferently) {
  Scheduler s(make_jobs(1), {}, /*max_attempts=*/2);
  EXPECT_EQ(take(s, 1), "j0");
  EXPECT_EQ(s.complete(1, "j0", false, "killed (signal 9; out of memory?)"), Fate::kRetry);
  EXPECT_EQ(take(s, 1), "j0");
  EXPECT_EQ(s.complete(1, "j0", false, "hung: no heartbeat for 600 s"), Fate::kFailed);
}

TEST(SchedulerRetries, OneAttemptFailsWithoutQuarantine) {
  Scheduler s(make_jobs(1), {}, /*max_attempts=*/1);
  EXPECT_EQ(take(s, 1), "j0");
  EXPECT_EQ(s.complete(1, "j0", false, "boom"), Fate::kFailed);
}

TEST(SchedulerRetries, AJobStoppedOnRequestIsRequeuedWithoutUsingAnAttempt) {
  Scheduler s(make_jobs(1), {}, /*max_attempts=*/1);
  EXPECT_EQ(take(s, 1), "j0");
  s.requeue(1, "j0");
  EXPECT_EQ(s.attempts("j0"), 0);
  EXPECT_EQ(s.pending_count(), 1u);
  EXPECT_EQ(take(s, 2), "j0");  // its one attempt is still there
  EXPECT_EQ(s.complete(2, "j0", true), Fate::kDone);
  EXPECT_THROW(s.requeue(2, "j0"), std::runtime_error);  // holds nothing
}

TEST(SchedulerRetries, JobsHeldBackAsQuarantinedAreNeitherRunNorAwaitedAndFailTheirDependents) {
  auto jobs = make_jobs(3);
  jobs[2].depends_on = {"j0"};
  Scheduler s(jobs, {}, /*max_attempts=*/2, /*held_back=*/{"j0"});
  EXPECT_EQ(s.failed_count(), 2u);  // j0 and its dependent j2
  const auto blocked = s.take_blocked();
  ASSERT_EQ(blocked.size(), 1u);
  EXPECT_EQ(blocked[0].first->id, "j2");
  EXPECT_EQ(take(s, 1), "j1");
  EXPECT_EQ(s.next(2).kind, Kind::kWait) << "only because j1 may still fail and come back";
  s.complete(1, "j1", true);
  EXPECT_TRUE(s.finished());
  EXPECT_EQ(s.next(2).kind, Kind::kStop);
}

TEST(SchedulerRetries, RetriedJobsGoBackToTheFrontOfTheCostOrder) {
  Scheduler s(make_jobs(3, {3.0, 2.0, 1.0}), {}, /*max_attempts=*/2);
  EXPECT_EQ(take(s, 1), "j0");
  EXPECT_EQ(take(s, 2), "j1");
  EXPECT_EQ(s.complete(1, "j0", false, "x"), Fate::kRetry);
  EXPECT_EQ(take(s, 1), "j0") << "the costliest pending job again, ahead of j2";
  EXPECT_EQ(take(s, 3), "j2");
}

TEST(SchedulerRetries, HandsOutAHundredThousandJobsInLinearTime) {
  // Linear: ~0.1 s. The former scan from the first job on every next() took ~5e9 steps (many seconds).
  Scheduler s(make_jobs(100000), {});
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 100000; ++i) {
    const Assignment a = s.next(1);
    ASSERT_EQ(a.kind, Kind::kJob);
    s.complete(1, a.job->id, true);
  }
  EXPECT_EQ(s.done_count(), 100000u);
  EXPECT_EQ(s.next(1).kind, Kind::kStop);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), 3.0);
}

TEST(ErrorSignature, ReplacesPathsAndDigitRunsOnly) {
  EXPECT_EQ(error_signature("loading data: /a/b/slide_0003.pt: truncated (7 bytes)"),
            "loading data: <path> truncated (# bytes)");
  EXPECT_EQ(error_signature("killed (signal 9; out of memory?)"), "killed (signal #; out of memory?)");
  EXPECT_NE(error_signature("killed (signal 6, Aborted)"), error_signature("hung: no heartbeat for 600 s"));
}

}  // namespace mil::orch
