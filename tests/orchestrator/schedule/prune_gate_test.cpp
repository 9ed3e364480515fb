#include "orchestrator/schedule/prune_gate.h"

#include <cmath>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/halving_sweep.h"

namespace mil::orch {
namespace {

using testing::halving::expected_pruned;
using testing::halving::job_spec;
using testing::halving::kFolds;
using testing::halving::kPoints;
using testing::halving::prune_spec;
using testing::halving::result_of;

/// The sweep of halving_sweep.h as the scheduler takes it.
std::vector<ScheduledJob> grid() {
  std::vector<ScheduledJob> jobs;
  for (const JobSpec& spec : testing::halving::sweep_jobs())
    jobs.push_back(ScheduledJob{spec, spec.id()});
  return jobs;
}

std::string id_of(int point, int fold) { return job_spec(point, fold).id(); }

/// What survives a kill -9: the committed results and the journal's (job id, status) lines.
struct Disk {
  std::vector<JobResult> results;
  std::vector<std::pair<std::string, std::string>> journal;
};

/// Plays rank 0 (orchestrator_loop.cpp) over the sweep with one worker, from what `disk` holds:
/// each durable write and each decision is one step, and the run is killed (returns false) just
/// before step `kill_at` (never when it is negative): while a job runs, between a result and its
/// decision, between deciding and acting, or between two "pruned" lines.
bool play_rank_zero(Disk& disk, int kill_at) {
  std::vector<ScheduledJob> jobs = grid();
  std::set<std::string> done, journaled_pruned;
  for (const JobResult& r : disk.results) done.insert(r.job_id);
  std::map<std::string, std::string> last_status;
  for (const auto& [id, status] : disk.journal) last_status[id] = status;
  for (const auto& [id, status] : last_status) {
    if (status == "pruned") journaled_pruned.insert(id);
  }
  PruneGate gate(prune_spec(), jobs, disk.results, {}, journaled_pruned);
  Scheduler scheduler(jobs, done);
  int step = 0;
  const auto killed = [&] { return step++ == kill_at; };
  const auto journal = [&](const GateStep& gate_step) {
    for (const PrunedJob& job : gate_step.to_journal) {
      if (killed()) return false;
      disk.journal.emplace_back(job.job_id, "pruned");
    }
    return true;
  };
  if (!journal(gate.start(scheduler))) return false;
  for (;;) {
    const Assignment assignment = scheduler.next(/*worker=*/0);
    if (assignment.kind == Assignment::Kind::kStop) return true;
    EXPECT_EQ(assignment.kind, Assignment::Kind::kJob) << "a lone worker waits for ever";
    if (assignment.kind != Assignment::Kind::kJob) return true;
    const JobResult result = result_of(assignment.job->spec);
    if (killed()) return false;  // while it runs
    disk.results.push_back(result);
    disk.journal.emplace_back(result.job_id, "ok");
    if (killed()) return false;  // its result is durable, its decision not taken
    scheduler.complete(0, result.job_id, /*ok=*/true);
    const PruneChanges changes = gate.decide(result.job_id, gate.outcome_of(result));
    if (killed()) return false;  // decided, not acted on
    if (!journal(gate.apply(scheduler, changes))) return false;
  }
}

/// Checks that every job has exactly one ok result or exactly one "pruned" line, never both, and
/// returns the pruned ones.
std::set<std::string> expect_each_job_run_or_pruned_once(const Disk& disk) {
  std::map<std::string, int> results, pruned_lines;
  for (const JobResult& r : disk.results) ++results[r.job_id];
  for (const auto& [id, status] : disk.journal) {
    if (status == "pruned") ++pruned_lines[id];
  }
  std::set<std::string> pruned;
  for (const ScheduledJob& job : grid()) {
    const int ran = results.count(job.id) ? results.at(job.id) : 0;
    const int lines = pruned_lines.count(job.id) ? pruned_lines.at(job.id) : 0;
    EXPECT_EQ(ran + lines, 1) << job.id << ": " << ran << " result(s), " << lines
                              << " pruned line(s)";
    if (lines > 0) pruned.insert(job.id);
  }
  return pruned;
}

TEST(PruneGate, HoldsBackEachRungUntilTheOneBeforeIsDecidedAndPrunesOnValidationNotTest) {
  std::vector<ScheduledJob> jobs = grid();
  PruneGate gate(prune_spec(), jobs, {}, {}, {});
  for (const ScheduledJob& job : jobs) EXPECT_EQ(job.gated, job.spec.split.fold_index > 0);
  Scheduler scheduler(jobs, {});
  EXPECT_TRUE(gate.start(scheduler).pruned.empty());
  std::set<std::string> opened, pruned;
  for (int p = 0; p < kPoints; ++p) {
    const Assignment a = scheduler.next(p);
    ASSERT_EQ(a.kind, Assignment::Kind::kJob);
    EXPECT_EQ(a.job->spec.split.fold_index, 0);
  }
  EXPECT_EQ(scheduler.next(9).kind, Assignment::Kind::kWait);  // fold 1 waits for the decision
  for (int p = 0; p < kPoints; ++p) {
    const JobResult result = result_of(jobs[p * kFolds].spec);
    scheduler.complete(p, result.job_id, /*ok=*/true);
    const GateStep step =
        gate.apply(scheduler, gate.decide(result.job_id, gate.outcome_of(result)));
    opened.insert(step.opened.begin(), step.opened.end());
    for (const PrunedJob& job : step.to_journal) pruned.insert(job.job_id);
  }
  // Validation keeps points 1 and 3; the test metric (1 - validation) would have kept 0 and 2.
  EXPECT_EQ(opened, (std::set<std::string>{id_of(1, 1), id_of(3, 1)}));
  EXPECT_EQ(pruned, (std::set<std::string>{id_of(0, 1), id_of(0, 2), id_of(2, 1), id_of(2, 2)}));
  EXPECT_EQ(scheduler.pruned_count(), 4u);
  EXPECT_EQ(scheduler.next(0).job->id, id_of(1, 1));
}

TEST(PruneGate, AnUninterruptedRunRunsSevenJobsAndJournalsFivePrunedOnce) {
  Disk disk;
  ASSERT_TRUE(play_rank_zero(disk, /*kill_at=*/-1));
  EXPECT_EQ(disk.results.size(), 7u);
  EXPECT_EQ(expect_each_job_run_or_pruned_once(disk), expected_pruned());
  // A rerun over the finished sweep runs nothing and journals nothing.
  const Disk before = disk;
  ASSERT_TRUE(play_rank_zero(disk, -1));
  EXPECT_EQ(disk.results.size(), before.results.size());
  EXPECT_EQ(disk.journal, before.journal);
}

TEST(PruneGate, AKillAtAnyPointThenAnotherThenARerunRunsOrPrunesEveryJobExactlyOnce) {
  Disk whole;
  ASSERT_TRUE(play_rank_zero(whole, -1));
  const int steps = static_cast<int>(whole.results.size() * 3 + 5);  // kill points of one run
  for (int first = 0; first <= steps; ++first) {
    for (int second = 0; second <= steps; ++second) {
      Disk disk;
      if (play_rank_zero(disk, first) && second > 0) continue;  // no kill: once is enough
      play_rank_zero(disk, second);
      ASSERT_TRUE(play_rank_zero(disk, -1));
      EXPECT_EQ(expect_each_job_run_or_pruned_once(disk), expected_pruned())
          << "killed at step " << first << ", then at step " << second;
      if (HasFailure()) return;
    }
  }
}

TEST(PruneGate, AJobThatFailedForGoodStaysFailedAndIsNeverJournaledPruned) {
  // Point 0 fold 2 was quarantined by an earlier run; halving prunes point 0 after fold 0.
  std::vector<ScheduledJob> jobs = grid();
  std::vector<JobResult> results;
  for (int p = 0; p < kPoints; ++p) results.push_back(result_of(jobs[p * kFolds].spec));
  const std::set<std::string> quarantined{id_of(0, 2)};
  std::set<std::string> done;
  for (const JobResult& r : results) done.insert(r.job_id);
  PruneGate gate(prune_spec(), jobs, results, quarantined, {});
  Scheduler scheduler(jobs, done, /*max_attempts=*/1, quarantined);
  const GateStep step = gate.start(scheduler);
  std::set<std::string> journaled;
  for (const PrunedJob& job : step.to_journal) journaled.insert(job.job_id);
  EXPECT_EQ(journaled, (std::set<std::string>{id_of(0, 1), id_of(2, 1), id_of(2, 2)}));
  EXPECT_EQ(scheduler.failed_count(), 1u);
  EXPECT_EQ(scheduler.pruned_count(), 3u);
}

TEST(PruneGate, ASweepWithoutPruningGatesNothing) {
  std::vector<ScheduledJob> jobs = grid();
  PruneGate gate(PruneSpec{}, jobs, {}, {}, {});
  EXPECT_FALSE(gate.active());
  for (const ScheduledJob& job : jobs) EXPECT_FALSE(job.gated);
  Scheduler scheduler(jobs, {});
  EXPECT_TRUE(gate.start(scheduler).pruned.empty());
  const JobResult result = result_of(jobs[0].spec);
  const PruneChanges changes = gate.decide(result.job_id, gate.outcome_of(result));
  EXPECT_TRUE(changes.opened.empty() && changes.pruned.empty());
}

}  // namespace
}  // namespace mil::orch
