#include "orchestrator/schedule/scheduler.h"

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <tuple>
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
  EXPECT_EQ(s.complete(1, "j0", false, "loading data: /tmp/a/x.pt: truncated at byte 7"),
            Fate::kRetry);
  EXPECT_EQ(take(s, 2), "j0");
  EXPECT_EQ(s.complete(2, "j0", false, "loading data: /scratch/b/x.pt: truncated at byte 9"),
            Fate::kRetry);
  EXPECT_EQ(take(s, 1), "j0");
  EXPECT_EQ(s.complete(1, "j0", false, "loading data: /tmp/c/x.pt: truncated at byte 12"),
            Fate::kQuarantined);
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
  // Linear: ~0.1 s. The former scan from the first job on every next() took ~5e9 steps (many
  // seconds).
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
  EXPECT_EQ(error_signature("killed (signal 9; out of memory?)"),
            "killed (signal #; out of memory?)");
  EXPECT_NE(error_signature("killed (signal 6, Aborted)"),
            error_signature("hung: no heartbeat for 600 s"));
}

}  // namespace mil::orch

namespace mil::orch {
namespace {

/// Jobs named by `names` with the given ranks and costs (default specs).
std::vector<ScheduledJob> group_jobs(
    const std::vector<std::tuple<std::string, int, double>>& jobs) {
  std::vector<ScheduledJob> out;
  for (const auto& [id, ranks, cost] : jobs)
    out.push_back(ScheduledJob{JobSpec{}, id, cost, {}, ranks});
  return out;
}

TEST(SchedulerGroups, AGroupJobHoldsIdleWorkersUntilItHasEnoughThenRunsOnAllOfThem) {
  Scheduler scheduler(group_jobs({{"g", 3, 5.0}, {"a", 1, 1.0}}), {});
  EXPECT_EQ(scheduler.next(4).kind, Assignment::Kind::kHold);
  EXPECT_EQ(scheduler.next(2).kind, Assignment::Kind::kHold);
  EXPECT_EQ(scheduler.held(), (std::vector<int>{4, 2}));
  EXPECT_EQ(scheduler.running_count(), 0u);
  const Assignment a = scheduler.next(3);
  ASSERT_EQ(a.kind, Assignment::Kind::kJob);
  EXPECT_EQ(a.job->id, "g");
  EXPECT_EQ(a.group, (std::vector<int>{2, 3, 4}));  // ascending: rank 2 leads
  EXPECT_TRUE(scheduler.held().empty());
  EXPECT_EQ(scheduler.attempts("g"), 1);
  EXPECT_EQ(scheduler.running_ids(), (std::map<int, std::string>{{2, "g"}, {3, "g"}, {4, "g"}}));
  const Assignment b = scheduler.next(1);
  ASSERT_EQ(b.kind, Assignment::Kind::kJob);
  EXPECT_EQ(b.job->id, "a");
  EXPECT_EQ(b.group, (std::vector<int>{1}));
}

TEST(SchedulerGroups, HeldWorkersAreNotGivenSmallerJobsWhileTheGroupJobWaits) {
  // Worker 1 runs the longest job; a 3-rank job comes next, then 1-rank jobs. Workers 2 and 3 free
  // up first: were they handed the 1-rank jobs, the group job would wait for as long as they keep
  // coming.
  Scheduler scheduler(
      group_jobs({{"long", 1, 10.0}, {"g", 3, 5.0}, {"s1", 1, 1.0}, {"s2", 1, 1.0}}), {});
  EXPECT_EQ(take(scheduler, 1), "long");
  EXPECT_EQ(scheduler.next(2).kind, Assignment::Kind::kHold);
  EXPECT_EQ(scheduler.next(3).kind, Assignment::Kind::kHold);
  EXPECT_EQ(scheduler.pending_count(), 3u);  // s1 and s2 were not handed out
  EXPECT_EQ(scheduler.complete(1, "long", true), Fate::kDone);
  const Assignment g = scheduler.next(1);
  ASSERT_EQ(g.kind, Assignment::Kind::kJob);
  EXPECT_EQ(g.job->id, "g");
  EXPECT_EQ(g.group, (std::vector<int>{1, 2, 3}));
}

TEST(SchedulerGroups, AJobAheadOfTheGroupJobGoesToTheAskingWorkerAndTheHeldOneStaysHeld) {
  // "r" fails once and comes back ahead of the 2-rank job in cost order while worker 2 is held.
  Scheduler scheduler(group_jobs({{"r", 1, 10.0}, {"g", 2, 5.0}}), {}, /*max_attempts=*/2);
  EXPECT_EQ(take(scheduler, 1), "r");
  EXPECT_EQ(scheduler.next(2).kind, Assignment::Kind::kHold);
  EXPECT_EQ(scheduler.complete(1, "r", false, "transient"), Fate::kRetry);
  EXPECT_EQ(take(scheduler, 1), "r");
  EXPECT_EQ(scheduler.held(), (std::vector<int>{2}));
  EXPECT_EQ(scheduler.complete(1, "r", true), Fate::kDone);
  const Assignment g = scheduler.next(1);
  ASSERT_EQ(g.kind, Assignment::Kind::kJob);
  EXPECT_EQ(g.group, (std::vector<int>{1, 2}));
}

TEST(SchedulerGroups, OnlyTheLeadersOkReportRecordsTheJobAndEveryMemberIsFreedByItsOwnReport) {
  Scheduler scheduler(group_jobs({{"g", 2, 1.0}, {"h", 2, 1.0}}), {});
  EXPECT_EQ(scheduler.next(2).kind, Assignment::Kind::kHold);
  ASSERT_EQ(scheduler.next(1).group, (std::vector<int>{1, 2}));
  EXPECT_EQ(scheduler.complete(2, "g", true), Fate::kMember);  // a member before its leader
  EXPECT_EQ(scheduler.done_count(), 0u);
  EXPECT_EQ(scheduler.running_count(), 1u);
  EXPECT_EQ(scheduler.complete(1, "g", true), Fate::kDone);
  EXPECT_EQ(scheduler.done_count(), 1u);
  // The leader first this time; the member's later report records nothing.
  EXPECT_EQ(scheduler.next(1).kind, Assignment::Kind::kHold);
  ASSERT_EQ(scheduler.next(2).group, (std::vector<int>{1, 2}));
  EXPECT_EQ(scheduler.complete(1, "h", true), Fate::kDone);
  EXPECT_EQ(scheduler.complete(2, "h", true), Fate::kMember);
  EXPECT_EQ(scheduler.done_count(), 2u);
  EXPECT_TRUE(scheduler.finished());
  EXPECT_EQ(scheduler.next(1).kind, Assignment::Kind::kStop);
  EXPECT_EQ(scheduler.next(2).kind, Assignment::Kind::kStop);
}

TEST(SchedulerGroups, AFailedMemberRetriesTheJobOnANewGroupAndTheSameFailureTwiceQuarantinesIt) {
  Scheduler scheduler(group_jobs({{"g", 2, 1.0}}), {}, /*max_attempts=*/2);
  EXPECT_EQ(scheduler.next(1).kind, Assignment::Kind::kHold);
  ASSERT_EQ(scheduler.next(2).kind, Assignment::Kind::kJob);
  // A member (not the leader) fails: the attempt ends at once, whatever its leader reports later.
  EXPECT_EQ(scheduler.complete(2, "g", false, "rank 2: out of memory at /tmp/a"), Fate::kRetry);
  EXPECT_EQ(scheduler.pending_count(), 1u);
  EXPECT_EQ(scheduler.complete(1, "g", true), Fate::kMember);
  EXPECT_EQ(scheduler.done_count(), 0u);
  EXPECT_EQ(scheduler.next(2).kind, Assignment::Kind::kHold);
  const Assignment again = scheduler.next(1);
  ASSERT_EQ(again.kind, Assignment::Kind::kJob);
  EXPECT_EQ(again.group, (std::vector<int>{1, 2}));
  EXPECT_EQ(scheduler.attempts("g"), 2);
  EXPECT_EQ(scheduler.complete(1, "g", false, "rank 1: out of memory at /tmp/b"),
            Fate::kQuarantined);
  EXPECT_EQ(scheduler.complete(2, "g", false, "rank 2: out of memory at /tmp/c"), Fate::kMember);
  EXPECT_EQ(scheduler.failed_ids(), (std::vector<std::string>{"g"}));
  EXPECT_EQ(scheduler.attempt_errors("g").size(), 2u);
  EXPECT_TRUE(scheduler.finished());
}

TEST(SchedulerGroups, ALostMemberEndsTheAttemptAndTheOthersStayBusyUntilTheyReport) {
  Scheduler scheduler(group_jobs({{"g", 2, 1.0}}), {}, /*max_attempts=*/2);
  EXPECT_EQ(scheduler.next(1).kind, Assignment::Kind::kHold);
  ASSERT_EQ(scheduler.next(2).kind, Assignment::Kind::kJob);
  scheduler.worker_lost(2);
  EXPECT_EQ(scheduler.pending_count(), 1u);
  ASSERT_EQ(scheduler.attempt_errors("g").size(), 1u);
  EXPECT_NE(scheduler.attempt_errors("g")[0].find("worker 2 was lost"), std::string::npos);
  EXPECT_THROW(scheduler.next(1), std::runtime_error);  // still busy with the ended attempt
  EXPECT_EQ(scheduler.complete(1, "g", false, "peer vanished"), Fate::kMember);
  EXPECT_EQ(scheduler.attempt_errors("g").size(), 1u);  // its report is not a second failure
  // The retry forms a new group from the workers left.
  EXPECT_EQ(scheduler.next(1).kind, Assignment::Kind::kHold);
  const Assignment retry = scheduler.next(3);
  ASSERT_EQ(retry.kind, Assignment::Kind::kJob);
  EXPECT_EQ(retry.group, (std::vector<int>{1, 3}));
  scheduler.worker_lost(1);  // the last attempt: now the job fails for good
  EXPECT_EQ(scheduler.failed_ids(), (std::vector<std::string>{"g"}));
  EXPECT_EQ(scheduler.complete(3, "g", true), Fate::kMember);
  EXPECT_TRUE(scheduler.finished());
}

TEST(SchedulerGroups, AHeldWorkerThatIsLostIsNoLongerCountedTowardsTheGroup) {
  Scheduler scheduler(group_jobs({{"g", 3, 1.0}}), {});
  EXPECT_EQ(scheduler.next(1).kind, Assignment::Kind::kHold);
  EXPECT_EQ(scheduler.next(2).kind, Assignment::Kind::kHold);
  scheduler.worker_lost(1);
  EXPECT_EQ(scheduler.held(), (std::vector<int>{2}));
  EXPECT_EQ(scheduler.next(3).kind, Assignment::Kind::kHold);
  const Assignment g = scheduler.next(4);
  ASSERT_EQ(g.kind, Assignment::Kind::kJob);
  EXPECT_EQ(g.group, (std::vector<int>{2, 3, 4}));
}

TEST(SchedulerGroups, AStoppedGroupJobIsRequeuedOnceWithoutUsingAnAttempt) {
  Scheduler scheduler(group_jobs({{"g", 2, 1.0}}), {});
  EXPECT_EQ(scheduler.next(1).kind, Assignment::Kind::kHold);
  ASSERT_EQ(scheduler.next(2).kind, Assignment::Kind::kJob);
  EXPECT_TRUE(scheduler.requeue(2, "g"));
  EXPECT_FALSE(scheduler.requeue(1, "g"));
  EXPECT_EQ(scheduler.attempts("g"), 0);
  EXPECT_EQ(scheduler.pending_count(), 1u);
  EXPECT_EQ(scheduler.running_count(), 0u);
}

TEST(SchedulerAhead,
     AnAheadRequestGetsTheHeadOfTheLineAndAReturnedJobIsHandedOutAgainWithoutUsingAnAttempt) {
  Scheduler scheduler(make_jobs(3, {3.0, 2.0, 1.0}), {}, /*max_attempts=*/1);
  EXPECT_EQ(take(scheduler, 10), "j0");
  // Holder 11 is the same worker asking ahead while it runs j0: it gets the next job in cost order.
  const Assignment ahead = scheduler.next_ahead(11);
  ASSERT_EQ(ahead.kind, Kind::kJob);
  EXPECT_EQ(ahead.job->id, "j1");
  EXPECT_EQ(ahead.group, (std::vector<int>{11}));
  EXPECT_EQ(scheduler.running_count(), 2u);
  // j0 runs long, so the worker hands j1 back unstarted: pending again, first in line, no attempt
  // used (with max_attempts 1, a counted attempt would leave it none).
  EXPECT_TRUE(scheduler.requeue(11, "j1"));
  EXPECT_EQ(scheduler.attempts("j1"), 0);
  EXPECT_EQ(take(scheduler, 12), "j1");
  EXPECT_EQ(scheduler.complete(12, "j1", true), Fate::kDone);
  EXPECT_EQ(scheduler.complete(10, "j0", true), Fate::kDone);
}

TEST(SchedulerAhead, AnAheadRequestNeverHoldsNeverStopsAndNeverOvertakesAGroupJob) {
  // The head of the line needs two workers: an ahead request must not take the 1-rank job behind
  // it.
  Scheduler scheduler(group_jobs({{"long", 1, 10.0}, {"g", 2, 5.0}, {"s", 1, 1.0}}), {});
  EXPECT_EQ(take(scheduler, 1), "long");
  EXPECT_EQ(scheduler.next_ahead(2).kind, Kind::kWait);
  EXPECT_TRUE(scheduler.held().empty());
  // A worker held for the group: still no job ahead for anyone, even one that needs a single rank.
  EXPECT_EQ(scheduler.next(3).kind, Kind::kHold);
  EXPECT_EQ(scheduler.next_ahead(4).kind, Kind::kWait);
  EXPECT_EQ(scheduler.pending_count(), 2u);
  EXPECT_EQ(scheduler.complete(1, "long", true), Fate::kDone);
  const Assignment g = scheduler.next(5);
  ASSERT_EQ(g.kind, Kind::kJob);
  EXPECT_EQ(g.job->id, "g");
  EXPECT_EQ(g.group, (std::vector<int>{3, 5}));
  EXPECT_EQ(scheduler.next_ahead(6).job->id, "s");
  EXPECT_EQ(scheduler.complete(6, "s", true), Fate::kDone);
  // Nothing left to hand out while "g" runs: next() would answer kWait, and so does an ahead
  // request; once everything is done, next() says stop but an ahead request still only waits.
  EXPECT_EQ(scheduler.next_ahead(7).kind, Kind::kWait);
  EXPECT_EQ(scheduler.complete(3, "g", true), Fate::kDone);
  EXPECT_EQ(scheduler.complete(5, "g", true), Fate::kMember);
  EXPECT_EQ(scheduler.next_ahead(8).kind, Kind::kWait);
  EXPECT_EQ(scheduler.next(9).kind, Kind::kStop);
}

TEST(SchedulerGroups, ReleaseHeldHandsBackHeldWorkersLongestHeldFirst) {
  Scheduler scheduler(group_jobs({{"g", 4, 1.0}}), {});
  for (int worker : {3, 1, 2}) EXPECT_EQ(scheduler.next(worker).kind, Assignment::Kind::kHold);
  EXPECT_THROW(scheduler.next(1), std::runtime_error);  // held workers are not asking
  EXPECT_EQ(scheduler.release_held(), (std::vector<int>{3, 1, 2}));
  EXPECT_TRUE(scheduler.held().empty());
  EXPECT_EQ(scheduler.next(1).kind, Assignment::Kind::kHold);  // free to ask again
}

TEST(SchedulerGroups, RejectsAJobOfFewerThanOneRankAndCopiesRanksFromTheSpec) {
  EXPECT_THROW(Scheduler(group_jobs({{"g", 0, 1.0}}), {}), std::runtime_error);
  JobSpec spec;
  spec.train.ranks = 3;
  EXPECT_EQ(scheduled_jobs({spec}).at(0).ranks, 3);
}

TEST(SchedulerGroups, FourWorkersFinishAMixOfOneAndTwoRankJobsEachExactlyOnce) {
  // Workers ask in a fixed rotation; a held worker waits for the kJob that names it.
  std::vector<std::tuple<std::string, int, double>> specs;
  for (int i = 0; i < 12; ++i)
    specs.emplace_back("j" + std::to_string(i), i % 3 == 0 ? 2 : 1, double(i % 4));
  Scheduler scheduler(group_jobs(specs), {});
  std::map<int, std::string> busy;  // worker -> job
  std::set<int> held, stopped;
  std::map<std::string, int> runs, leaders_done;
  for (int round = 0; stopped.size() < 4 && round < 1000; ++round) {
    const int worker = 1 + round % 4;
    if (stopped.count(worker) > 0 || held.count(worker) > 0) continue;
    if (busy.count(worker) > 0) {
      if (scheduler.complete(worker, busy[worker], true) == Fate::kDone)
        ++leaders_done[busy[worker]];
      busy.erase(worker);
    }
    const Assignment a = scheduler.next(worker);
    if (a.kind == Assignment::Kind::kStop) {
      stopped.insert(worker);
    } else if (a.kind == Assignment::Kind::kHold) {
      held.insert(worker);
    } else if (a.kind == Assignment::Kind::kJob) {
      ASSERT_EQ(a.group.size(), static_cast<std::size_t>(a.job->ranks));
      ++runs[a.job->id];
      for (int member : a.group) {
        busy[member] = a.job->id;
        held.erase(member);
      }
    }
  }
  ASSERT_EQ(stopped.size(), 4u);
  EXPECT_TRUE(held.empty());
  EXPECT_EQ(runs.size(), 12u);
  for (const auto& [id, count] : runs) EXPECT_EQ(count, 1) << id;
  for (const auto& [id, count] : leaders_done) EXPECT_EQ(count, 1) << id;
  EXPECT_EQ(leaders_done.size(), 12u);
  EXPECT_EQ(scheduler.done_count(), 12u);
}

TEST(Scheduler, AJobThatDoesNotFitWaitsWhileASmallerOneThatFitsGoesOut) {
  Scheduler scheduler(make_jobs(3, {3, 2, 1}), /*already_done=*/{});
  // Worker 1's device has room for jobs of cost <= 2 only.
  const auto small = [](const ScheduledJob& job) { return job.cost <= 2; };
  EXPECT_EQ(scheduler.next(1, small).job->id, "j1");
  EXPECT_EQ(scheduler.next(2).job->id, "j0") << "the passed-over job keeps its place";
  const auto none = [](const ScheduledJob&) { return false; };
  EXPECT_EQ(scheduler.next(3, none).kind, Kind::kWait);
  EXPECT_EQ(scheduler.pending_count(), 1u);
}

TEST(Scheduler, NewCostsReorderThePendingJobs) {
  Scheduler scheduler(make_jobs(3, {3, 2, 1}), /*already_done=*/{});
  EXPECT_EQ(take(scheduler, 1), "j0");
  scheduler.set_costs({3, 1, 5});
  EXPECT_EQ(take(scheduler, 2), "j2");
  EXPECT_EQ(take(scheduler, 3), "j1");
  EXPECT_DOUBLE_EQ(scheduler.jobs()[2].cost, 5);
  EXPECT_THROW(scheduler.set_costs({1, 2}), std::runtime_error);
}

}  // namespace
}  // namespace mil::orch
