#pragma once
// One job in a supervised child process: the worker rank writes <work_dir>/job.json, starts
// `mhim train --job job.json --out result.json --work-dir <work_dir> --heartbeat heartbeat.json` in
// its own process group and watches it. The child checkpoints into the same work dir, so a retry
// resumes.
#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "mil/core/specs.h"
#include "worker/supervise/fork_server.h"
#include "worker/supervise/heartbeat.h"

namespace mil::worker {

/// How a worker rank runs jobs in child processes. Plain data; the defaults suit real sweeps.
struct SupervisionOptions {
  std::string executable =
      "/proc/self/exe";        ///< The mhim binary (its `train` command runs the job).
  int threads = 1;             ///< LibTorch threads of the child (--threads).
  std::string device = "cpu";  ///< Where the child trains (--device): "cpu" or "cuda:N".
  /// No new heartbeat for this long = hung: the child's process group is killed. Loading a large
  /// dataset beats only once, at its start, so keep this above the longest load.
  std::chrono::milliseconds heartbeat_timeout{std::chrono::minutes(10)};
  std::chrono::milliseconds report_interval{2000};  ///< Between heartbeat reports to rank 0.
  /// How children start: forked by the rank's zygote (`fork_server`), or exec'd. run_worker starts
  /// a zygote for kFork when `fork_server` is null; without one, children are exec'd.
  ChildStart child_start = ChildStart::kFork;
  ForkServer* fork_server = nullptr;  ///< The rank's zygote (not owned); null = exec every child.
};

/// Runs `spec` in a child process with its files in `work_dir` (created) and returns its result;
/// never throws. The result is the child's result.json (any exit status), else "failed" naming how
/// the child ended: its exit status, "killed (signal 9; out of memory?)", or "hung: no heartbeat
/// for N s". runtime.rank is set to `rank`; runtime.log names the child's output file and
/// runtime.last_output holds its last lines when it left no result. Once `stop_requested` is set
/// the child gets SIGTERM (it checkpoints and reports "interrupted"; one that dies of it before
/// writing a result, e.g. while still starting, is reported "interrupted" too). `on_heartbeat` gets
/// the child's latest beat every report_interval while it runs (may be empty); `while_waiting`, if
/// set, is called between waits on the child, at least every 100 ms.
JobResult run_supervised_job(const JobSpec& spec, const std::string& work_dir, int rank,
                             const SupervisionOptions& options,
                             const std::atomic<bool>* stop_requested,
                             const std::function<void(const Heartbeat&)>& on_heartbeat,
                             const std::function<void()>& while_waiting = {});

}  // namespace mil::worker
