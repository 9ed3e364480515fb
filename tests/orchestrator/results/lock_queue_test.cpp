#include "orchestrator/results/lock_queue.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "mil/core/runtime_info.h"
#include "tests/support/temp_dir.h"

namespace mil::orch {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

JobSpec make_spec(std::uint64_t seed) {
  JobSpec spec;
  spec.dataset.name = "synth";
  spec.dataset.root = "/data/synth";
  spec.seed = seed;
  return spec;
}

JobResult make_result(const JobSpec& spec, const std::string& status, double auc = 0.5) {
  JobResult r;
  r.spec = spec;
  r.job_id = spec.id();
  r.config_id = spec.config_id();
  r.status = status;
  if (status == "failed") r.error = "training: boom";
  r.metrics = {{"test", {{"auc", auc}}}};
  return r;
}

std::vector<ScheduledJob> independent_jobs(int n) {
  std::vector<ScheduledJob> jobs;
  for (int i = 0; i < n; ++i) {
    const JobSpec spec = make_spec(static_cast<std::uint64_t>(100 + i));
    jobs.push_back(ScheduledJob{spec, spec.id(), /*cost=*/1.0, {}});
  }
  return jobs;
}

/// Job 0 (a teacher baseline) and job 1 that depends on it.
std::vector<ScheduledJob> dependent_pair() {
  auto jobs = independent_jobs(2);
  jobs[1].depends_on = {jobs[0].id};
  return jobs;
}

std::vector<json> journal(const std::string& dir) {
  std::ifstream in(dir + "/journal.jsonl");
  std::vector<json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  return lines;
}

LockOwner owner_named(const std::string& token) {
  LockOwner o = this_process_owner();
  o.token = token;
  return o;
}

/// A clock the test moves by hand.
struct ManualClock {
  std::shared_ptr<double> seconds = std::make_shared<double>(1000.0);
  std::function<double()> fn() const {
    auto s = seconds;
    return [s] { return *s; };
  }
};

LockQueueOptions fast_options(const std::string& run_id = "run-1") {
  LockQueueOptions o;
  o.lock_timeout_s = 300;
  o.heartbeat_interval_s = 0.05;
  o.poll_interval = std::chrono::milliseconds(5);
  o.run_id = run_id;
  return o;
}

TEST(ResultsStoreExclusive, TwoStoresRacingOnOneDirectoryWriteEachResultExactlyOnce) {
  testing::TempDir dir;
  ResultsStore first(dir / "r");
  ResultsStore second(dir / "r");
  constexpr int kJobs = 40;
  std::vector<JobSpec> specs;
  for (int i = 0; i < kJobs; ++i) specs.push_back(make_spec(static_cast<std::uint64_t>(i)));
  std::atomic<int> ready{0};
  std::vector<int> wins(2, 0);
  std::map<std::string, double> winner_auc;
  std::mutex winners_mutex;
  const auto racer = [&](ResultsStore& store, int who) {
    ++ready;
    while (ready.load() < 2) {
    }
    for (const auto& spec : specs) {
      const double auc = who == 0 ? 0.25 : 0.75;
      if (store.write_exclusive(make_result(spec, "ok", auc))) {
        ++wins[who];
        std::lock_guard<std::mutex> lock(winners_mutex);
        EXPECT_TRUE(winner_auc.emplace(spec.id(), auc).second) << spec.id() << " written twice";
      }
    }
  };
  std::thread a(racer, std::ref(first), 0);
  std::thread b(racer, std::ref(second), 1);
  a.join();
  b.join();
  EXPECT_EQ(wins[0] + wins[1], kJobs);
  const auto results = first.load_all();
  ASSERT_EQ(results.size(), static_cast<std::size_t>(kJobs));
  for (const auto& r : results) {
    EXPECT_EQ(r.metrics.at("test").at("auc").get<double>(), winner_auc.at(r.job_id))
        << "the loser overwrote it";
  }
  EXPECT_EQ(journal(dir / "r").size(), static_cast<std::size_t>(kJobs))
      << "one journal line per written result";
  std::size_t leftovers = 0;
  for (const auto& e : fs::directory_iterator(dir.path() / "r" / "results"))
    leftovers += e.path().filename().string()[0] == '.';
  EXPECT_EQ(leftovers, 0u) << "temporary files must be removed";
}

TEST(ResultsStoreExclusive, ReplacesAFailedResultButNeverAnOkOne) {
  testing::TempDir dir;
  ResultsStore store(dir / "r");
  const JobSpec spec = make_spec(1);
  EXPECT_TRUE(store.write_exclusive(make_result(spec, "failed")));
  EXPECT_TRUE(store.write_exclusive(make_result(spec, "ok", 0.9)));
  EXPECT_FALSE(store.write_exclusive(make_result(spec, "ok", 0.1)));
  EXPECT_FALSE(store.write_exclusive(make_result(spec, "failed")));
  const auto results = store.load_all();
  ASSERT_EQ(results.size(), 1u);
  EXPECT_TRUE(results[0].ok());
  EXPECT_EQ(results[0].metrics.at("test").at("auc").get<double>(), 0.9);
  const auto lines = journal(dir / "r");
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].at("status"), "failed");
  EXPECT_EQ(lines[1].at("status"), "ok");
}

TEST(LockQueue, TwoQueuesRacingThroughOneSweepRunEveryJobExactlyOnce) {
  testing::TempDir dir;
  constexpr int kJobs = 30;
  ResultsStore store_a(dir / "r");
  ResultsStore store_b(dir / "r");
  LockQueue queue_a(store_a, independent_jobs(kJobs), owner_named("a"), fast_options());
  LockQueue queue_b(store_b, independent_jobs(kJobs), owner_named("b"), fast_options());
  std::mutex runs_mutex;
  std::map<std::string, int> runs;
  std::map<std::string, int> runs_by_queue;
  const auto runner = [&](const std::string& who) {
    return [&, who](const JobSpec& spec) {
      {
        std::lock_guard<std::mutex> lock(runs_mutex);
        ++runs[spec.id()];
        ++runs_by_queue[who];
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
      return make_result(spec, "ok");
    };
  };
  LockQueueOutcome out_a, out_b;
  std::thread a([&] { out_a = run_lock_queue(queue_a, store_a, runner("a"), nullptr); });
  std::thread b([&] { out_b = run_lock_queue(queue_b, store_b, runner("b"), nullptr); });
  a.join();
  b.join();
  EXPECT_EQ(runs.size(), static_cast<std::size_t>(kJobs));
  for (const auto& [id, count] : runs) EXPECT_EQ(count, 1) << id << " ran more than once";
  EXPECT_EQ(out_a.ran_ok + out_b.ran_ok, static_cast<std::size_t>(kJobs));
  EXPECT_EQ(out_a.lost + out_b.lost, 0u);
  EXPECT_GT(runs_by_queue["a"], 0) << "both queues should have worked";
  EXPECT_GT(runs_by_queue["b"], 0) << "both queues should have worked";
  EXPECT_EQ(store_a.load_all().size(), static_cast<std::size_t>(kJobs));
  EXPECT_EQ(journal(dir / "r").size(), static_cast<std::size_t>(kJobs));
  std::size_t locks = 0;
  for (const auto& e : fs::directory_iterator(dir.path() / "r" / "locks"))
    locks += e.path().extension() == ".lock";
  EXPECT_EQ(locks, 0u) << "every lock is released";
}

/// `points` grid points (learning rates) x `folds` folds, validation split on, in sweep order.
std::vector<ScheduledJob> grid_jobs(int points, int folds) {
  std::vector<ScheduledJob> jobs;
  for (int p = 0; p < points; ++p) {
    for (int f = 0; f < folds; ++f) {
      JobSpec spec = make_spec(2021);
      spec.train.lr = 1e-4 * (p + 1);
      spec.split.fold_count = folds;
      spec.split.fold_index = f;
      spec.split.val_ratio = 0.2;
      jobs.push_back(ScheduledJob{spec, spec.id(), /*cost=*/1.0, {}});
    }
  }
  return jobs;
}

/// An ok result whose validation AUC grows with the learning rate and whose test AUC falls with it.
JobResult graded_result(const JobSpec& spec) {
  JobResult r = make_result(spec, "ok");
  r.metrics = {{"val", {{"auc", 0.5 + spec.train.lr * 100}}},
               {"test", {{"auc", 0.9 - spec.train.lr * 100}}}};
  return r;
}

LockQueueOptions pruning_options(int eta) {
  LockQueueOptions o = fast_options();
  o.prune.enabled = true;
  o.prune.eta = eta;
  return o;
}

/// job id -> the statuses of its journal lines, in order.
std::map<std::string, std::vector<std::string>> journal_statuses(const std::string& dir) {
  std::map<std::string, std::vector<std::string>> out;
  for (const json& line : journal(dir))
    out[line.at("job_id").get<std::string>()].push_back(line.at("status"));
  return out;
}

TEST(LockQueue, TwoQueuesHalvingASweepRunOrPruneEveryJobExactlyOnceOnValidation) {
  // 6 points x 3 folds with eta 3: 6 -> 2 -> 1 points run 6 + 2 + 1 = 9 jobs; the other 9 are
  // pruned.
  testing::TempDir dir;
  ResultsStore store_a(dir / "r");
  ResultsStore store_b(dir / "r");
  const std::vector<ScheduledJob> jobs = grid_jobs(6, 3);
  LockQueue queue_a(store_a, jobs, owner_named("a"), pruning_options(3));
  LockQueue queue_b(store_b, jobs, owner_named("b"), pruning_options(3));
  std::mutex runs_mutex;
  std::map<std::string, int> runs;
  const auto run = [&](const JobSpec& spec) {
    {
      std::lock_guard<std::mutex> lock(runs_mutex);
      ++runs[spec.id()];
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return graded_result(spec);
  };
  LockQueueOutcome out_a, out_b;
  std::thread a([&] { out_a = run_lock_queue(queue_a, store_a, run, nullptr); });
  std::thread b([&] { out_b = run_lock_queue(queue_b, store_b, run, nullptr); });
  a.join();
  b.join();
  EXPECT_EQ(runs.size(), 9u);
  for (const auto& [id, count] : runs) EXPECT_EQ(count, 1) << id;
  EXPECT_EQ(out_a.pruned_total, 9u);
  EXPECT_EQ(out_b.pruned_total, 9u);
  // Validation ranks the last point (largest learning rate) best: it ran every fold.
  for (int f = 0; f < 3; ++f) EXPECT_EQ(runs.count(jobs[5 * 3 + f].id), 1u);
  const auto statuses = journal_statuses(dir / "r");
  for (const ScheduledJob& job : jobs) {
    const std::vector<std::string> expected{runs.count(job.id) ? "ok" : "pruned"};
    EXPECT_EQ(statuses.count(job.id) ? statuses.at(job.id) : std::vector<std::string>{}, expected)
        << job.id;
  }
}

TEST(LockQueue, AQueueStartedAfterARungsResultsButBeforeItsDecisionJournalsThePrunedOnce) {
  // A process died right after writing the first rung's last result: nobody journaled a decision.
  testing::TempDir dir;
  ResultsStore store(dir / "r");
  const std::vector<ScheduledJob> jobs = grid_jobs(3, 2);
  for (int p = 0; p < 3; ++p) ASSERT_TRUE(store.write_exclusive(graded_result(jobs[p * 2].spec)));
  std::vector<std::string> ran;
  const auto run = [&](const JobSpec& spec) {
    ran.push_back(spec.id());
    return graded_result(spec);
  };
  LockQueue first(store, jobs, owner_named("first"), pruning_options(3));
  run_lock_queue(first, store, run, nullptr);
  EXPECT_EQ(ran, (std::vector<std::string>{jobs[2 * 2 + 1].id}));  // only the best point's fold 1
  LockQueue again(store, jobs, owner_named("again"), pruning_options(3));
  EXPECT_EQ(again.try_claim().kind, Assignment::Kind::kStop);
  const auto statuses = journal_statuses(dir / "r");
  EXPECT_EQ(statuses.at(jobs[0 * 2 + 1].id), std::vector<std::string>{"pruned"});
  EXPECT_EQ(statuses.at(jobs[1 * 2 + 1].id), std::vector<std::string>{"pruned"});
  EXPECT_EQ(statuses.at(jobs[2 * 2 + 1].id), std::vector<std::string>{"ok"});
}

TEST(LockQueue, LockHoldsHostPidSlurmIdsAndAHeartbeatThatRefreshMoves) {
  testing::TempDir dir;
  ResultsStore store(dir / "r");
  ManualClock clock;
  auto options = fast_options();
  options.clock = clock.fn();
  LockOwner owner = owner_named("a");
  owner.slurm_job_id = "41";
  owner.slurm_array_job_id = "40";
  owner.slurm_array_task_id = "1";
  LockQueue queue(store, independent_jobs(1), owner, options);
  const Claim claim = queue.try_claim();
  ASSERT_EQ(claim.kind, Assignment::Kind::kJob);
  const json lock = json::parse(std::ifstream(queue.lock_path(claim.job->id)));
  EXPECT_EQ(lock.at("owner").at("host"), mil::host_name());
  EXPECT_EQ(lock.at("owner").at("pid"), static_cast<int>(::getpid()));
  EXPECT_EQ(lock.at("owner").at("slurm_job_id"), "41");
  EXPECT_EQ(lock.at("owner").at("slurm_array_job_id"), "40");
  EXPECT_EQ(lock.at("owner").at("slurm_array_task_id"), "1");
  EXPECT_EQ(lock.at("heartbeat").get<double>(), 1000.0);
  *clock.seconds = 1042.0;
  ASSERT_TRUE(queue.refresh(claim.job->id));
  EXPECT_EQ(queue.read_lock(claim.job->id)->heartbeat, 1042.0);
  EXPECT_EQ(queue.read_lock(claim.job->id)->acquired, 1000.0);
}

TEST(LockQueue, TakesOverALockOnlyOnceItsHeartbeatIsOlderThanTheTimeout) {
  testing::TempDir dir;
  ResultsStore store(dir / "r");
  ManualClock clock;
  auto options = fast_options();
  options.clock = clock.fn();
  options.lock_timeout_s = 300;
  LockQueue holder(store, independent_jobs(1), owner_named("holder"), options);
  LockQueue other(store, independent_jobs(1), owner_named("other"), options);
  const Claim held = holder.try_claim();
  ASSERT_EQ(held.kind, Assignment::Kind::kJob);

  *clock.seconds = 1000.0 + 299.0;
  EXPECT_EQ(other.try_claim().kind, Assignment::Kind::kWait) << "a live lock is not taken";
  *clock.seconds = 1000.0 + 301.0;
  EXPECT_EQ(other.stale_reason(*other.read_lock(held.job->id)),
            "heartbeat 301 s old (timeout 300 s)");
  const Claim taken = other.try_claim();
  ASSERT_EQ(taken.kind, Assignment::Kind::kJob);
  EXPECT_TRUE(taken.taken_over);
  EXPECT_EQ(taken.job->id, held.job->id);
  EXPECT_EQ(other.read_lock(held.job->id)->owner.token, "other");
  EXPECT_FALSE(holder.refresh(held.job->id)) << "the old holder learns it lost the lock";
  holder.release(held.job->id);
  EXPECT_EQ(other.read_lock(held.job->id)->owner.token, "other")
      << "release must not remove another's lock";
}

TEST(LockQueue, ARefreshedLockIsNotStale) {
  testing::TempDir dir;
  ResultsStore store(dir / "r");
  ManualClock clock;
  auto options = fast_options();
  options.clock = clock.fn();
  LockQueue holder(store, independent_jobs(1), owner_named("holder"), options);
  LockQueue other(store, independent_jobs(1), owner_named("other"), options);
  const Claim held = holder.try_claim();
  ASSERT_EQ(held.kind, Assignment::Kind::kJob);
  *clock.seconds = 1250.0;
  ASSERT_TRUE(holder.refresh(held.job->id));
  *clock.seconds = 1500.0;  // 500 s after the claim, 250 s after the heartbeat
  EXPECT_EQ(other.try_claim().kind, Assignment::Kind::kWait);
}

TEST(LockQueue, TakesOverTheLockOfADeadProcessOnThisHostAtOnce) {
  testing::TempDir dir;
  ResultsStore store(dir / "r");
  const pid_t child = fork();
  if (child == 0) _exit(0);
  ASSERT_GT(child, 0);
  waitpid(child, nullptr, 0);  // reaped: its pid is dead
  LockOwner dead = owner_named("dead");
  dead.pid = static_cast<int>(child);
  LockQueue ghost(store, independent_jobs(1), dead, fast_options());
  ASSERT_EQ(ghost.try_claim().kind, Assignment::Kind::kJob);  // writes a lock naming the dead pid

  LockQueue alive(store, independent_jobs(1), owner_named("alive"), fast_options());
  const Claim claim = alive.try_claim();
  ASSERT_EQ(claim.kind, Assignment::Kind::kJob);
  EXPECT_TRUE(claim.taken_over);
}

TEST(LockQueue, TakesOverTheLockOfAnEarlierRunOfTheSameSlurmJob) {
  testing::TempDir dir;
  ResultsStore store(dir / "r");
  LockOwner before = owner_named("before-requeue");
  before.slurm_job_id = "77";
  before.host = "some-other-node";  // the pid cannot be checked there
  LockQueue first(store, independent_jobs(1), before, fast_options());
  ASSERT_EQ(first.try_claim().kind, Assignment::Kind::kJob);

  LockOwner after = owner_named("after-requeue");
  after.slurm_job_id = "77";
  LockQueue requeued(store, independent_jobs(1), after, fast_options());
  const Claim claim = requeued.try_claim();
  ASSERT_EQ(claim.kind, Assignment::Kind::kJob);
  EXPECT_TRUE(claim.taken_over);

  LockOwner stranger = owner_named("stranger");
  stranger.slurm_job_id = "78";
  LockQueue other(store, independent_jobs(1), stranger, fast_options());
  EXPECT_EQ(other.try_claim().kind, Assignment::Kind::kWait)
      << "another Slurm job's live lock stays";
}

TEST(LockQueue, ADependentJobIsClaimedOnlyAfterItsDependencyHasAnOkResult) {
  testing::TempDir dir;
  ResultsStore store(dir / "r");
  const auto jobs = dependent_pair();
  LockQueue first(store, jobs, owner_named("a"), fast_options());
  LockQueue second(store, jobs, owner_named("b"), fast_options());
  const Claim baseline = first.try_claim();
  ASSERT_EQ(baseline.kind, Assignment::Kind::kJob);
  EXPECT_EQ(baseline.job->id, jobs[0].id) << "only the baseline is ready";
  EXPECT_EQ(second.try_claim().kind, Assignment::Kind::kWait)
      << "the dependent waits for its baseline";
  ASSERT_TRUE(first.publish(make_result(jobs[0].spec, "ok")));
  first.release(jobs[0].id);
  const Claim dependent = second.try_claim();
  ASSERT_EQ(dependent.kind, Assignment::Kind::kJob);
  EXPECT_EQ(dependent.job->id, jobs[1].id);
  ASSERT_TRUE(second.publish(make_result(jobs[1].spec, "ok")));
  second.release(jobs[1].id);
  EXPECT_EQ(first.try_claim().kind, Assignment::Kind::kStop);
  EXPECT_EQ(second.try_claim().kind, Assignment::Kind::kStop);
}

TEST(LockQueue, AFailedDependencyFailsItsDependentOnceWithoutRunningIt) {
  testing::TempDir dir;
  ResultsStore store(dir / "r");
  const auto jobs = dependent_pair();
  LockQueue first(store, jobs, owner_named("a"), fast_options());
  ASSERT_EQ(first.try_claim().kind, Assignment::Kind::kJob);
  ASSERT_TRUE(first.publish(make_result(jobs[0].spec, "failed")));
  first.release(jobs[0].id);

  LockQueue second(store, jobs, owner_named("b"), fast_options());  // same submission (run id)
  EXPECT_EQ(second.try_claim().kind, Assignment::Kind::kStop);
  EXPECT_EQ(second.failed_count(), 2u);
  EXPECT_EQ(first.try_claim().kind, Assignment::Kind::kStop);
  const auto results = store.load_all();
  ASSERT_EQ(results.size(), 2u);
  for (const auto& r : results) EXPECT_FALSE(r.ok());
  const auto dependent = std::find_if(results.begin(), results.end(),
                                      [&](const JobResult& r) { return r.job_id == jobs[1].id; });
  ASSERT_NE(dependent, results.end());
  EXPECT_NE(dependent->error.find("not run: the job it depends on (" + jobs[0].id),
            std::string::npos)
      << dependent->error;
  EXPECT_EQ(journal(dir / "r").size(), 2u) << "scans must not rewrite the dependent's failure";
}

TEST(LockQueue, ALaterSubmissionRetriesAFailedJobOnce) {
  testing::TempDir dir;
  ResultsStore store(dir / "r");
  ManualClock clock;
  auto options = fast_options("array-1");
  options.clock = clock.fn();
  const auto jobs = independent_jobs(1);
  LockQueue first(store, jobs, owner_named("a"), options);
  ASSERT_EQ(first.try_claim().kind, Assignment::Kind::kJob);
  ASSERT_TRUE(first.publish(make_result(jobs[0].spec, "failed")));
  first.release(jobs[0].id);
  EXPECT_EQ(first.try_claim().kind, Assignment::Kind::kStop) << "final within its submission";

  *clock.seconds = 2000.0;
  options.run_id = "array-2";
  LockQueue resubmitted(store, jobs, owner_named("b"), options);
  const Claim retry = resubmitted.try_claim();
  ASSERT_EQ(retry.kind, Assignment::Kind::kJob);
  ASSERT_TRUE(resubmitted.publish(make_result(jobs[0].spec, "failed")));
  resubmitted.release(jobs[0].id);
  EXPECT_EQ(resubmitted.try_claim().kind, Assignment::Kind::kStop) << "retried once, not forever";
}

TEST(LockQueue, SeesAResultRewrittenWithItsMtimeOneTickEarlierAndItsSize31BytesLarger) {
  // The scan once keyed a file on mtime * 31 + size, which these two changes leave equal (and
  // which overflowed for every real mtime); a result that became ok must still be seen as ok.
  testing::TempDir dir;
  ResultsStore store(dir / "r");
  ManualClock clock;
  auto options = fast_options("array-1");
  options.clock = clock.fn();
  options.lock_timeout_s = 1e9;  // the first queue's lock stays live throughout
  const auto jobs = independent_jobs(1);
  LockQueue first(store, jobs, owner_named("a"), options);
  ASSERT_EQ(first.try_claim().kind, Assignment::Kind::kJob);
  ASSERT_TRUE(first.publish(make_result(jobs[0].spec, "failed")));

  *clock.seconds = 2000.0;
  options.run_id = "array-2";
  LockQueue later(store, jobs, owner_named("b"), options);
  EXPECT_EQ(later.try_claim().kind, Assignment::Kind::kWait)
      << "an earlier submission's failure is retried, but the job is still locked";

  const fs::path path = fs::path(dir / "r") / "results" / (jobs[0].id + ".json");
  const auto old_size = fs::file_size(path);
  const auto old_mtime = fs::last_write_time(path);
  json ok = json::parse(std::ifstream(path));
  ok["status"] = "ok";
  ok["error"] = "";
  std::string text = ok.dump(2);
  ASSERT_LE(text.size(), old_size + 31);
  text.resize(old_size + 31, ' ');
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
  fs::last_write_time(path, old_mtime - std::chrono::nanoseconds(1));

  EXPECT_EQ(later.try_claim().kind, Assignment::Kind::kStop) << "the job has an ok result now";
  EXPECT_EQ(later.failed_count(), 0u);
}

TEST(LockQueue, AnInterruptedJobIsJournaledAndItsLockReleasedForAnyProcess) {
  testing::TempDir dir;
  ResultsStore store(dir / "r");
  const auto jobs = independent_jobs(2);
  LockQueue queue(store, jobs, owner_named("a"), fast_options());
  const auto interrupted = [](const JobSpec& spec) {
    JobResult r;
    r.job_id = spec.id();
    r.status = "interrupted";
    r.error = "stopped at epoch 3";
    return r;
  };
  const LockQueueOutcome out = run_lock_queue(queue, store, interrupted, nullptr);
  EXPECT_TRUE(out.stopped);
  EXPECT_EQ(out.interrupted, 1u);
  EXPECT_TRUE(store.load_all().empty());
  const auto lines = journal(dir / "r");
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].at("status"), "interrupted");
  LockQueue other(store, jobs, owner_named("b"), fast_options());
  const Claim claim = other.try_claim();
  ASSERT_EQ(claim.kind, Assignment::Kind::kJob);
  EXPECT_FALSE(claim.taken_over) << "the lock was released, not left to go stale";
}

}  // namespace
}  // namespace mil::orch
