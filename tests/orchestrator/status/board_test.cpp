#include "orchestrator/status/board.h"
#include "orchestrator/status/progress_line.h"

#include <gtest/gtest.h>

#include <thread>

namespace mil::orch {
namespace {

using namespace std::chrono_literals;

/// A clock the test moves by hand; starts at 2026-01-02T03:04:05Z.
struct FakeClock {
  std::chrono::system_clock::time_point now = std::chrono::system_clock::from_time_t(1767323045);
  StatusClock fn() {
    return [this] { return now; };
  }
  void advance(std::chrono::seconds s) { now += s; }
};

std::vector<StatusJobInfo> jobs(int count) {
  std::vector<StatusJobInfo> out;
  for (int i = 0; i < count; ++i)
    out.push_back({"job" + std::to_string(i), "abmil", "synth", i % 5, 2021});
  return out;
}

StatusBoard make_board(FakeClock& clock, double stale_after_s = 300, double window_s = 900) {
  StatusBoardOptions o;
  o.sweep_name = "demo";
  o.clock = clock.fn();
  o.stale_after_s = stale_after_s;
  o.recent_window_s = window_s;
  return StatusBoard(o);
}

TEST(StatusBoard, SaysItIsStartingAndNothingIsFinishedUntilTheJobsAreListed) {
  FakeClock clock;
  StatusBoard board = make_board(clock);
  const nlohmann::json before = board.snapshot().json;
  EXPECT_EQ(before.at("sweep").at("phase"), "starting");
  EXPECT_EQ(before.at("counts").at("total"), 0);
  EXPECT_EQ(before.at("progress").at("fraction"), 0.0) << "an empty board is not a finished sweep";
  board.sweep_started(jobs(4), {"job0"});
  const nlohmann::json after = board.snapshot().json;
  EXPECT_EQ(after.at("sweep").at("phase"), "running");
  EXPECT_EQ(after.at("counts").at("total"), 4);
  EXPECT_DOUBLE_EQ(after.at("progress").at("fraction").get<double>(), 0.25);
}

TEST(StatusBoard, CountsEveryJobInExactlyOneState) {
  FakeClock clock;
  StatusBoard board = make_board(clock);
  board.sweep_started(jobs(10), {"job0", "job1"});
  board.job_assigned("job2", 1);
  board.job_assigned("job3", 2);
  board.job_assigned("job4", 3);
  board.job_assigned("job5", 4);
  board.job_finished("job2", "ok", "");
  board.job_finished("job3", "failed", "boom");
  board.job_finished("job4", "quarantined", "crashed 3 times");
  const StatusCounts c = board.summary().counts;
  EXPECT_EQ(c.total, 10u);
  EXPECT_EQ(c.skipped, 2u);
  EXPECT_EQ(c.done, 1u);
  EXPECT_EQ(c.failed, 1u);
  EXPECT_EQ(c.quarantined, 1u);
  EXPECT_EQ(c.running, 1u);
  EXPECT_EQ(c.pending, 4u);
}

TEST(StatusBoard, APrunedJobIsFinishedAndPrunedButNeitherThroughputNorAWorkersJob) {
  FakeClock clock;
  StatusBoard board = make_board(clock);
  board.sweep_started(jobs(4), {});
  board.job_assigned("job0", 1);
  board.job_finished("job0", "ok", "");
  board.job_finished("job1", "pruned", "grid point pruned after rung 1 of 2");
  board.job_finished("job2", "pruned", "grid point pruned after rung 1 of 2");
  const StatusCounts c = board.summary().counts;
  EXPECT_EQ(c.pruned, 2u);
  EXPECT_EQ(c.done, 1u);
  EXPECT_EQ(c.pending, 1u);
  clock.advance(3600s);
  const StatusSnapshot snap = board.snapshot();
  EXPECT_DOUBLE_EQ(*snap.summary.sweep_jobs_per_h, 1.0)
      << "only the job that ran counts as throughput";
  EXPECT_EQ(snap.json.at("counts").at("pruned"), 2);
  EXPECT_DOUBLE_EQ(snap.json.at("progress").at("fraction").get<double>(), 0.75);
  EXPECT_EQ(snap.json.at("workers").at(0).at("jobs_finished"), 1);
  const std::string line = format_progress_line(snap.summary, 4);
  EXPECT_EQ(line.rfind("[###.] 1/4 done \u00b7 0 running \u00b7 2 pruned \u00b7 ", 0), 0u) << line;
}

TEST(StatusBoard, InterruptedJobGoesBackToPendingAndRetryRunsAgain) {
  FakeClock clock;
  StatusBoard board = make_board(clock);
  board.sweep_started(jobs(2), {});
  board.job_assigned("job0", 1);
  board.job_finished("job0", "interrupted", "stop requested");
  EXPECT_EQ(board.summary().counts.pending, 2u);
  board.job_assigned("job1", 1);
  board.job_finished("job1", "retry", "worker crashed");
  StatusCounts c = board.summary().counts;
  EXPECT_EQ(c.pending, 2u);
  EXPECT_EQ(c.failed, 0u);
  board.job_assigned("job1", 2);  // the next attempt
  clock.advance(60s);
  c = board.summary().counts;
  EXPECT_EQ(c.failed, 0u);
  EXPECT_EQ(c.running, 1u);
  EXPECT_FALSE(board.summary().sweep_jobs_per_h.has_value())
      << "neither an interruption nor a retry finishes a job";
}

TEST(StatusBoard, AResultReportedAfterItsWorkerTookTheNextJobCountsForItAndKeepsItBusy) {
  // Group commit: rank 0 reports a result once durable, when its worker may already run its next
  // job.
  FakeClock clock;
  StatusBoard board = make_board(clock);
  board.sweep_started(jobs(3), {});
  board.job_assigned("job0", 1);
  board.job_assigned("job1", 1);  // job0's result is still being synced
  board.job_finished("job0", "ok", "");
  const nlohmann::json status = board.snapshot().json;
  ASSERT_EQ(status.at("workers").size(), 1u);
  EXPECT_EQ(status.at("workers")[0].at("jobs_finished"), 1);
  EXPECT_EQ(status.at("workers")[0].at("job_id"), "job1");
  EXPECT_EQ(status.at("counts").at("done"), 1);
  EXPECT_EQ(status.at("counts").at("running"), 1);
  board.job_finished("job1", "ok", "");
  EXPECT_EQ(board.snapshot().json.at("workers")[0].at("jobs_finished"), 2);
  EXPECT_TRUE(board.snapshot().json.at("workers")[0].at("job_id").is_null());
}

TEST(StatusBoard, AJobGivenBackUnstartedIsPendingAgainAndNotCountedAsFinishedByItsWorker) {
  FakeClock clock;
  StatusBoard board = make_board(clock);
  board.sweep_started(jobs(2), {});
  board.job_assigned("job0", 1);
  board.job_assigned("job1", 1);  // taken ahead while job0 runs
  board.job_finished("job1", "returned", "");
  const nlohmann::json status = board.snapshot().json;
  EXPECT_EQ(status.at("counts").at("pending"), 1);
  EXPECT_EQ(status.at("counts").at("running"), 1);
  EXPECT_EQ(status.at("workers")[0].at("jobs_finished"), 0);
  board.job_finished("job0", "ok", "");
  EXPECT_EQ(board.snapshot().json.at("workers")[0].at("jobs_finished"), 1);
}

TEST(StatusBoard, AReportedJobIsCommittingNotRunningAndItsWorkerIsFreeAndCountsItOnce) {
  FakeClock clock;
  StatusBoard board = make_board(clock);
  board.sweep_started(jobs(3), {});
  board.job_assigned("job0", 1);
  board.job_reported("job0");  // its result is on its way to disk
  board.job_assigned("job1", 1);
  nlohmann::json status = board.snapshot().json;
  EXPECT_EQ(status.at("counts").at("running"), 1);
  EXPECT_EQ(status.at("counts").at("committing"), 1);
  EXPECT_EQ(status.at("counts").at("pending"), 1);
  ASSERT_EQ(status.at("running").size(), 1u);
  EXPECT_EQ(status.at("running")[0].at("job_id"), "job1");
  EXPECT_EQ(status.at("jobs")[0].at("state"), "committing");
  EXPECT_EQ(status.at("workers")[0].at("job_id"), "job1");
  EXPECT_EQ(status.at("workers")[0].at("jobs_finished"), 1);
  EXPECT_EQ(status.at("progress").at("finished"), 0);
  board.job_finished("job0", "ok", "");
  status = board.snapshot().json;
  EXPECT_EQ(status.at("counts").at("committing"), 0);
  EXPECT_EQ(status.at("counts").at("done"), 1);
  EXPECT_EQ(status.at("workers")[0].at("job_id"), "job1")
      << "the durable result does not free the next job's worker";
  EXPECT_EQ(status.at("workers")[0].at("jobs_finished"), 1);
}

TEST(StatusBoard, ThroughputAndEtaFollowTheInjectedClock) {
  FakeClock clock;
  StatusBoard board = make_board(clock, 300, /*window_s=*/900);
  board.sweep_started(jobs(12), {"job0", "job1"});
  // Before anything finishes there is no rate and so no ETA.
  EXPECT_FALSE(board.summary().eta_s.has_value());
  // 4 jobs finish in the first hour (one every 15 min), then 30 min pass with 2 more.
  for (int i = 2; i < 6; ++i) {
    board.job_assigned("job" + std::to_string(i), 1);
    clock.advance(900s);
    board.job_finished("job" + std::to_string(i), "ok", "");
  }
  StatusSummary s = board.summary();
  EXPECT_DOUBLE_EQ(s.uptime_s, 3600.0);
  EXPECT_DOUBLE_EQ(*s.sweep_jobs_per_h, 4.0);
  // The last 900 s hold one finish (at t = 3600 exactly; the one at 2700 is on the window's edge).
  EXPECT_DOUBLE_EQ(*s.recent_jobs_per_h, 4.0);
  EXPECT_DOUBLE_EQ(*s.eta_s, 6 * 3600.0 / 4.0);  // 6 pending at 4 jobs/h
  board.job_assigned("job6", 1);
  board.job_assigned("job7", 2);
  clock.advance(600s);
  board.job_finished("job6", "ok", "");
  board.job_finished("job7", "failed", "e");  // failures also use up the queue
  clock.advance(300s);
  s = board.summary();
  EXPECT_DOUBLE_EQ(s.uptime_s, 4500.0);
  EXPECT_DOUBLE_EQ(*s.sweep_jobs_per_h, 6 * 3600.0 / 4500.0);
  EXPECT_DOUBLE_EQ(*s.recent_jobs_per_h, 2 * 3600.0 / 900.0);  // job6 and job7 in the last 900 s
  EXPECT_DOUBLE_EQ(*s.eta_s, 4 * 3600.0 / 8.0);                // 4 pending at the recent 8 jobs/h
}

TEST(StatusBoard, EtaFallsBackToSweepRateWhenRecentWindowIsEmpty) {
  FakeClock clock;
  StatusBoard board = make_board(clock, 300, /*window_s=*/600);
  board.sweep_started(jobs(3), {});
  board.job_assigned("job0", 1);
  clock.advance(600s);
  board.job_finished("job0", "ok", "");
  clock.advance(1200s);  // nothing finished in the last 600 s
  const StatusSummary s = board.summary();
  EXPECT_FALSE(s.recent_jobs_per_h.has_value());
  EXPECT_DOUBLE_EQ(*s.sweep_jobs_per_h, 2.0);
  EXPECT_DOUBLE_EQ(*s.eta_s, 3600.0);  // 2 pending at 2 jobs/h
}

TEST(StatusBoard, EtaIsZeroWhenNothingRemains) {
  FakeClock clock;
  StatusBoard board = make_board(clock);
  board.sweep_started(jobs(2), {"job0", "job1"});
  EXPECT_DOUBLE_EQ(*board.summary().eta_s, 0.0);
}

TEST(StatusBoard, WorkerIsStaleAfterThresholdUnlessStopped) {
  FakeClock clock;
  StatusBoardOptions o;
  o.clock = clock.fn();
  o.stale_after_s = 60;
  o.expect_heartbeats = true;
  StatusBoard board(o);
  board.sweep_started(jobs(3), {});
  board.worker_seen(1, "nodeA");
  board.worker_seen(2, "nodeB");
  board.job_assigned("job0", 1);
  clock.advance(30s);
  board.worker_seen(2, "");  // an empty host keeps the one known
  clock.advance(40s);        // rank 1 last seen 70 s ago, rank 2 40 s ago
  nlohmann::json w = board.snapshot().json.at("workers");
  ASSERT_EQ(w.size(), 2u);
  EXPECT_EQ(w[0].at("rank"), 1);
  EXPECT_EQ(w[0].at("state"), "stale");
  EXPECT_DOUBLE_EQ(w[0].at("last_seen_age_s").get<double>(), 70.0);
  EXPECT_EQ(w[0].at("job_id"), "job0");
  EXPECT_EQ(w[1].at("state"), "idle");
  EXPECT_EQ(w[1].at("host"), "nodeB");
  EXPECT_TRUE(w[1].at("job_id").is_null());
  // A heartbeat of rank 1's job revives it; a stopped worker is never stale.
  board.job_progress("job0", 3, 10, 120.0);
  board.worker_stopped(2);
  clock.advance(100s);
  board.job_progress("job0", 4, 10, 90.0);
  w = board.snapshot().json.at("workers");
  EXPECT_EQ(w[0].at("state"), "busy");
  EXPECT_EQ(w[1].at("state"), "stopped");
}

TEST(StatusBoard, BusyWorkerWithoutHeartbeatsIsNotJudgedStaleUntilItReportsProgress) {
  FakeClock clock;
  StatusBoard board = make_board(clock, /*stale_after_s=*/60);  // expect_heartbeats false
  board.sweep_started(jobs(2), {});
  board.worker_seen(1, "a");
  board.worker_seen(2, "b");
  board.job_assigned("job0", 1);
  clock.advance(3600s);  // a long job, silent as workers are without heartbeats
  nlohmann::json w = board.snapshot().json.at("workers");
  EXPECT_EQ(w[0].at("state"), "busy");
  EXPECT_EQ(w[1].at("state"), "stale") << "an idle worker asks for work every 200 ms";
  board.job_progress("job0", 1, 5, 100.0);  // this worker sends heartbeats after all
  clock.advance(61s);
  w = board.snapshot().json.at("workers");
  EXPECT_EQ(w[0].at("state"), "stale");
}

TEST(StatusBoard, RunningJobShowsRankHostElapsedAndHeartbeatProgress) {
  FakeClock clock;
  StatusBoard board = make_board(clock);
  board.sweep_started(jobs(2), {});
  board.worker_seen(3, "gpu7");
  board.job_assigned("job1", 3);
  clock.advance(125s);
  nlohmann::json r = board.snapshot().json.at("running");
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0].at("job_id"), "job1");
  EXPECT_EQ(r[0].at("rank"), 3);
  EXPECT_EQ(r[0].at("host"), "gpu7");
  EXPECT_EQ(r[0].at("fold"), 1);
  EXPECT_EQ(r[0].at("method"), "abmil");
  EXPECT_EQ(r[0].at("started_at"), "2026-01-02T03:04:05Z");
  EXPECT_DOUBLE_EQ(r[0].at("elapsed_s").get<double>(), 125.0);
  EXPECT_TRUE(r[0].at("epoch").is_null());
  EXPECT_TRUE(r[0].at("eta_s").is_null());
  board.job_progress("job1", 7, 20, 260.5);
  r = board.snapshot().json.at("running");
  EXPECT_EQ(r[0].at("epoch"), 7);
  EXPECT_EQ(r[0].at("epochs"), 20);
  EXPECT_DOUBLE_EQ(r[0].at("eta_s").get<double>(), 260.5);
}

TEST(StatusBoard, SnapshotJsonHasDocumentedShape) {
  FakeClock clock;
  StatusBoard board = make_board(clock);
  board.sweep_started(jobs(4), {"job0"});
  board.job_assigned("job1", 1);
  clock.advance(1800s);
  board.job_finished("job1", "failed", "loading fold 1: missing file x.pt");
  const nlohmann::json j = board.snapshot().json;
  for (const char* key : {"sweep", "counts", "progress", "throughput", "eta_s", "running",
                          "workers", "failures", "jobs"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j.at("sweep").at("name"), "demo");
  EXPECT_EQ(j.at("sweep").at("started_at"), "2026-01-02T03:04:05Z");
  EXPECT_EQ(j.at("sweep").at("now"), "2026-01-02T03:34:05Z");
  EXPECT_DOUBLE_EQ(j.at("sweep").at("uptime_s").get<double>(), 1800.0);
  EXPECT_EQ(j.at("counts"), (nlohmann::json{{"total", 4},
                                            {"pending", 2},
                                            {"running", 0},
                                            {"committing", 0},
                                            {"done", 0},
                                            {"failed", 1},
                                            {"pruned", 0},
                                            {"quarantined", 0},
                                            {"skipped", 1}}));
  EXPECT_EQ(j.at("progress").at("finished"), 2);
  EXPECT_DOUBLE_EQ(j.at("progress").at("fraction").get<double>(), 0.5);
  EXPECT_DOUBLE_EQ(j.at("throughput").at("sweep_jobs_per_h").get<double>(), 2.0);
  EXPECT_DOUBLE_EQ(j.at("throughput").at("recent_jobs_per_h").get<double>(),
                   4.0);                                  // 1 in min(900, 1800) s
  EXPECT_DOUBLE_EQ(j.at("eta_s").get<double>(), 1800.0);  // 2 left at 4 jobs/h
  ASSERT_EQ(j.at("failures").size(), 1u);
  EXPECT_EQ(j.at("failures")[0].at("job_id"), "job1");
  EXPECT_EQ(j.at("failures")[0].at("error"), "loading fold 1: missing file x.pt");
  ASSERT_EQ(j.at("jobs").size(), 4u);
  EXPECT_EQ(j.at("jobs")[0].at("state"), "skipped");
  EXPECT_EQ(j.at("jobs")[1].at("state"), "failed");
  EXPECT_EQ(j.at("jobs")[2].at("state"), "pending");
  EXPECT_EQ(j.at("jobs")[3].at("seed"), 2021);
  EXPECT_TRUE(j.at("running").empty());
}

TEST(StatusBoard, StatusJsonTextReplacesInvalidUtf8InErrors) {
  FakeClock clock;
  StatusBoard board = make_board(clock);
  board.sweep_started(jobs(1), {});
  board.job_finished("job0", "failed", "cannot open caf\xe9.pt");  // Latin-1, not UTF-8
  const nlohmann::json parsed = nlohmann::json::parse(to_status_json(board.snapshot()));
  EXPECT_EQ(parsed.at("failures")[0].at("error"), "cannot open caf\uFFFD.pt");
}

TEST(StatusBoard, UnknownJobIdsAreAddedInsteadOfThrowing) {
  FakeClock clock;
  StatusBoard board = make_board(clock);
  board.sweep_started(jobs(1), {});
  EXPECT_NO_THROW(board.job_progress("ghost", 1, 2, 3.0));
  EXPECT_NO_THROW(board.job_finished("ghost2", "ok", ""));
  EXPECT_EQ(board.summary().counts.total, 3u);
  EXPECT_EQ(board.summary().counts.done, 1u);
}

TEST(StatusBoard, ConcurrentWritersAndReadersKeepCountsConsistent) {
  StatusBoard board;  // the real clock
  const int n = 400;
  board.sweep_started(jobs(n), {});
  std::thread writer([&] {
    for (int i = 0; i < n; ++i) {
      board.job_assigned("job" + std::to_string(i), 1 + i % 3);
      board.job_finished("job" + std::to_string(i), i % 4 == 0 ? "failed" : "ok", "e");
    }
  });
  for (int k = 0; k < 200; ++k) {
    const StatusCounts c = board.snapshot().summary.counts;
    ASSERT_EQ(c.pending + c.running + c.done + c.failed + c.quarantined + c.skipped, c.total);
  }
  writer.join();
  const StatusCounts c = board.summary().counts;
  EXPECT_EQ(c.done, 300u);
  EXPECT_EQ(c.failed, 100u);
}

TEST(ProgressLine, ShowsBarCountsRateAndEta) {
  StatusSummary s;
  s.counts = {/*total=*/40, /*pending=*/25,    /*running=*/2, /*done=*/10,
              /*failed=*/1, /*quarantined=*/0, /*skipped=*/2};
  s.recent_jobs_per_h = 30.0;
  s.eta_s = 330.0;
  EXPECT_EQ(
      format_progress_line(s),
      "[###.......] 12/40 done \u00b7 2 running \u00b7 1 failed \u00b7 30 jobs/h \u00b7 ETA 5m");
}

TEST(ProgressLine, OmitsZeroFailuresShowsQuarantineAndUnknowns) {
  StatusSummary s;
  s.counts = {/*total=*/4,  /*pending=*/1,     /*running=*/0, /*done=*/2,
              /*failed=*/0, /*quarantined=*/1, /*skipped=*/0};
  EXPECT_EQ(format_progress_line(s, 4),
            "[###.] 2/4 done \u00b7 0 running \u00b7 1 quarantined \u00b7 ? jobs/h \u00b7 ETA ?");
  s.sweep_jobs_per_h =
      2.54;  // below 10 jobs/h one decimal; the sweep rate stands in for a missing recent one
  s.eta_s = 2 * 3600 + 5 * 60 + 59;
  EXPECT_EQ(
      format_progress_line(s, 4),
      "[###.] 2/4 done \u00b7 0 running \u00b7 1 quarantined \u00b7 2.5 jobs/h \u00b7 ETA 2h 05m");
}

TEST(ProgressLine, EmptySweepShowsFullBar) {
  StatusSummary s;
  s.eta_s = 0.0;
  EXPECT_EQ(format_progress_line(s, 3),
            "[###] 0/0 done \u00b7 0 running \u00b7 ? jobs/h \u00b7 ETA 0s");
}

TEST(FormatDuration, PicksUnitsByMagnitude) {
  EXPECT_EQ(format_duration(45.9), "45s");
  EXPECT_EQ(format_duration(60), "1m");
  EXPECT_EQ(format_duration(3599), "59m");
  EXPECT_EQ(format_duration(3600 + 7 * 60), "1h 07m");
  EXPECT_EQ(format_duration(2 * 86400 + 3 * 3600 + 59), "2d 03h");
  EXPECT_EQ(format_duration(-1), "?");
  EXPECT_EQ(format_duration(std::numeric_limits<double>::infinity()), "?");
}

}  // namespace
}  // namespace mil::orch

namespace mil::orch {
namespace {

/// Everything written to `file` so far.
std::string contents(std::FILE* file) {
  std::fflush(file);
  std::rewind(file);
  std::string text;
  char chunk[512];
  for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, file)) > 0;) text.append(chunk, n);
  return text;
}

TEST(ProgressLine, PrintsLogLinesAboveTheLineAndLeavesTheFinalLineOnExit) {
  FakeClock clock;
  StatusBoard board = make_board(clock);
  std::vector<StatusJobInfo> list;
  for (int i = 0; i < 4; ++i) list.push_back({"job" + std::to_string(i), "abmil", "synth", i, 1});
  board.sweep_started(list, {"job0"});
  std::FILE* out = std::tmpfile();
  ASSERT_NE(out, nullptr);
  {
    ProgressLine line(board, out,
                      std::chrono::hours(1));  // draws once at start, then only when asked
    line.print("12:00:00 [rank 0] hello");
    board.job_assigned("job1", 1);
    clock.advance(60s);
    board.job_finished("job1", "ok", "");
  }
  const std::string text = contents(out);
  std::fclose(out);
  const std::string first = "\r\033[K" + format_progress_line(StatusSummary{{4, 3, 0, 0, 0, 0, 1}});
  // The first draw, the log line on a cleared line, the line again, then the final state and a
  // newline.
  EXPECT_EQ(text.rfind(first, 0), 0u) << text;
  const std::size_t log = text.find("\r\033[K12:00:00 [rank 0] hello\n");
  ASSERT_NE(log, std::string::npos) << text;
  EXPECT_NE(text.find("\r\033[K[##.......", log), std::string::npos) << text;  // redrawn under it
  const std::string last =
      "\r\033[K[#####.....] 2/4 done \u00b7 0 running \u00b7 60 jobs/h \u00b7 ETA 2m\n";
  ASSERT_GE(text.size(), last.size());
  EXPECT_EQ(text.substr(text.size() - last.size()), last) << text;
}

}  // namespace
}  // namespace mil::orch
