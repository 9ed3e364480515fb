#include "orchestrator/schedule/prune_gate.h"

#include <cmath>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

namespace mil::orch {
namespace {

/// Successive halving with `eta`, one fold per rung.
PruneSpec halving(int eta) {
  PruneSpec spec;
  spec.enabled = true;
  spec.eta = eta;
  return spec;
}

/// Grid point `point` of one (dataset, method) (its learning rate is 1e-4 * (point + 1)) on fold
/// `fold` of `folds`, with a validation split.
JobSpec job_spec(int point, int fold, int folds) {
  JobSpec spec;
  spec.dataset.name = "d";
  spec.dataset.root = "/data/d";
  spec.model.method = "abmil";
  spec.train.lr = 1e-4 * (point + 1);
  spec.split.fold_count = folds;
  spec.split.fold_index = fold;
  spec.split.val_ratio = 0.15;
  spec.seed = 2021;
  return spec;
}

/// `points` x `folds` jobs, points outermost (sweep order).
std::vector<ScheduledJob> grid(int points, int folds) {
  std::vector<ScheduledJob> jobs;
  for (int p = 0; p < points; ++p) {
    for (int f = 0; f < folds; ++f) {
      const JobSpec spec = job_spec(p, f, folds);
      jobs.push_back(ScheduledJob{spec, spec.id()});
    }
  }
  return jobs;
}

std::string id_of(int point, int fold, int folds) { return job_spec(point, fold, folds).id(); }

/// An ok result of `job_id` with validation AUC `val` and test AUC `test`.
JobResult ok_result(const std::string& job_id, double val, double test) {
  JobResult result;
  result.job_id = job_id;
  result.status = "ok";
  result.metrics = {{"val", {{"auc", val}}}, {"test", {{"auc", test}}}};
  return result;
}

/// The sweep the tests play: four points x three folds, eta 2. Validation AUC of point p on fold f
/// below; test AUC the other way round (1 - validation), so a decision that read the test metric
/// would keep the other points. Fold 0: points 1 and 3 go on; their mean over folds 0-1 is 0.75
/// and 0.85, so point 3 alone runs fold 2: 4 + 2 + 1 = 7 jobs run, 5 are pruned.
constexpr int kPoints = 4;
constexpr int kFolds = 3;
constexpr double kValidation[kPoints][kFolds] = {
    {0.60, 0.95, 0.95}, {0.90, 0.60, 0.50}, {0.70, 0.95, 0.95}, {0.80, 0.90, 0.50}};

JobResult result_of(const ScheduledJob& job) {
  const int point = static_cast<int>(std::lround(job.spec.train.lr * 1e4)) - 1;
  const double val = kValidation[point][job.spec.split.fold_index];
  return ok_result(job.id, val, 1.0 - val);
}

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
  std::vector<ScheduledJob> jobs = grid(kPoints, kFolds);
  std::set<std::string> done, journaled_pruned;
  for (const JobResult& r : disk.results) done.insert(r.job_id);
  std::map<std::string, std::string> last_status;
  for (const auto& [id, status] : disk.journal) last_status[id] = status;
  for (const auto& [id, status] : last_status) {
    if (status == "pruned") journaled_pruned.insert(id);
  }
  PruneGate gate(halving(2), jobs, disk.results, {}, journaled_pruned);
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
    const JobResult result = result_of(*assignment.job);
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
  for (const ScheduledJob& job : grid(kPoints, kFolds)) {
    const int ran = results.count(job.id) ? results.at(job.id) : 0;
    const int lines = pruned_lines.count(job.id) ? pruned_lines.at(job.id) : 0;
    EXPECT_EQ(ran + lines, 1) << job.id << ": " << ran << " result(s), " << lines
                              << " pruned line(s)";
    if (lines > 0) pruned.insert(job.id);
  }
  return pruned;
}

/// The jobs the sweep must prune (see kValidation): points 0 and 2 after fold 0, point 1 after 1.
std::set<std::string> expected_pruned() {
  return {id_of(0, 1, kFolds), id_of(0, 2, kFolds), id_of(2, 1, kFolds), id_of(2, 2, kFolds),
          id_of(1, 2, kFolds)};
}

TEST(PruneGate, HoldsBackEachRungUntilTheOneBeforeIsDecidedAndPrunesOnValidationNotTest) {
  std::vector<ScheduledJob> jobs = grid(kPoints, kFolds);
  PruneGate gate(halving(2), jobs, {}, {}, {});
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
    const JobResult result = result_of(jobs[p * kFolds]);
    scheduler.complete(p, result.job_id, /*ok=*/true);
    const GateStep step =
        gate.apply(scheduler, gate.decide(result.job_id, gate.outcome_of(result)));
    opened.insert(step.opened.begin(), step.opened.end());
    for (const PrunedJob& job : step.to_journal) pruned.insert(job.job_id);
  }
  // Validation keeps points 1 and 3; the test metric (1 - validation) would have kept 0 and 2.
  EXPECT_EQ(opened, (std::set<std::string>{id_of(1, 1, kFolds), id_of(3, 1, kFolds)}));
  EXPECT_EQ(pruned, (std::set<std::string>{id_of(0, 1, kFolds), id_of(0, 2, kFolds),
                                           id_of(2, 1, kFolds), id_of(2, 2, kFolds)}));
  EXPECT_EQ(scheduler.pruned_count(), 4u);
  EXPECT_EQ(scheduler.next(0).job->id, id_of(1, 1, kFolds));
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
  std::vector<ScheduledJob> jobs = grid(kPoints, kFolds);
  std::vector<JobResult> results;
  for (int p = 0; p < kPoints; ++p) results.push_back(result_of(jobs[p * kFolds]));
  const std::set<std::string> quarantined{id_of(0, 2, kFolds)};
  std::set<std::string> done;
  for (const JobResult& r : results) done.insert(r.job_id);
  PruneGate gate(halving(2), jobs, results, quarantined, {});
  Scheduler scheduler(jobs, done, /*max_attempts=*/1, quarantined);
  const GateStep step = gate.start(scheduler);
  std::set<std::string> journaled;
  for (const PrunedJob& job : step.to_journal) journaled.insert(job.job_id);
  EXPECT_EQ(journaled,
            (std::set<std::string>{id_of(0, 1, kFolds), id_of(2, 1, kFolds), id_of(2, 2, kFolds)}));
  EXPECT_EQ(scheduler.failed_count(), 1u);
  EXPECT_EQ(scheduler.pruned_count(), 3u);
}

TEST(PruneGate, ASweepWithoutPruningGatesNothing) {
  std::vector<ScheduledJob> jobs = grid(kPoints, kFolds);
  PruneGate gate(PruneSpec{}, jobs, {}, {}, {});
  EXPECT_FALSE(gate.active());
  for (const ScheduledJob& job : jobs) EXPECT_FALSE(job.gated);
  Scheduler scheduler(jobs, {});
  EXPECT_TRUE(gate.start(scheduler).pruned.empty());
  const JobResult result = result_of(jobs[0]);
  const PruneChanges changes = gate.decide(result.job_id, gate.outcome_of(result));
  EXPECT_TRUE(changes.opened.empty() && changes.pruned.empty());
}

}  // namespace
}  // namespace mil::orch
