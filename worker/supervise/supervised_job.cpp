#include "worker/supervise/supervised_job.h"

#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "mil/core/durable_file.h"
#include "mil/core/json_reader.h"
#include "mil/core/runtime_info.h"
#include "worker/supervise/child_process.h"

namespace mil::worker {
namespace {

namespace fs = std::filesystem;

/// The last `max_lines` lines of `path` (at most the last 4 KiB), or "" when unreadable.
std::string tail_of(const std::string& path, int max_lines) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return "";
  const std::streamoff size = in.tellg();
  const std::streamoff from = std::max<std::streamoff>(0, size - 4096);
  in.seekg(from);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && text.back() == '\n') text.pop_back();
  std::size_t start = text.size();
  for (int n = 0; n < max_lines && start > 0; ++n) {
    const std::size_t newline = text.rfind('\n', start - 1);
    start = newline == std::string::npos ? 0 : newline + 1;
    if (newline == std::string::npos) break;
  }
  return text.substr(start);
}

}  // namespace

JobResult run_supervised_job(const JobSpec& spec, const std::string& work_dir, int rank,
                             const SupervisionOptions& options,
                             const std::atomic<bool>* stop_requested,
                             const std::function<void(const Heartbeat&)>& on_heartbeat,
                             const std::function<void()>& while_waiting) {
  JobResult failed;
  failed.job_id = spec.id();
  failed.config_id = spec.config_id();
  failed.spec = spec;
  failed.status = "failed";
  failed.runtime = {{"host", host_name()}, {"rank", rank}, {"started_at", utc_timestamp()}};
  const auto start = std::chrono::steady_clock::now();
  const fs::path dir(work_dir);
  const std::string job_path = (dir / "job.json").string();
  const std::string result_path = (dir / "result.json").string();
  const std::string heartbeat_path = (dir / "heartbeat.json").string();
  const std::string log_path = (dir / "train.log").string();
  const auto fail = [&](const std::string& error) {
    failed.error = error;
    failed.runtime["finished_at"] = utc_timestamp();
    failed.runtime["seconds"] =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    failed.runtime["log"] = log_path;
    const std::string last = tail_of(log_path, 5);
    if (!last.empty()) failed.runtime["last_output"] = last;
    return failed;
  };
  try {
    fs::create_directories(dir);
    // A result or beat left by an earlier attempt (killed before its result reached rank 0) must
    // not be mistaken for this attempt's.
    fs::remove(result_path);
    fs::remove(heartbeat_path);
    write_file_atomic(job_path, nlohmann::json(spec).dump(2) + "\n");
  } catch (const std::exception& e) {
    return fail(std::string("preparing the work dir: ") + e.what());
  }
  std::optional<ChildExit> exit;
  std::string hung;
  bool stop_forwarded = false;
  std::string child_start = "exec";
  try {
    ChildProcess child(
        {options.executable, "train", "--job", job_path, "--out", result_path, "--work-dir",
         work_dir, "--heartbeat", heartbeat_path, "--threads", std::to_string(options.threads),
         "--device", options.device, "--parent-pid", std::to_string(::getpid())},
        log_path, options.child_start == ChildStart::kFork ? options.fork_server : nullptr);
    if (child.forked()) child_start = "fork";
    auto last_progress = std::chrono::steady_clock::now();
    auto next_report = last_progress + options.report_interval;
    std::uint64_t last_beat = 0;
    while (!exit) {
      const auto now = std::chrono::steady_clock::now();
      if (now >= next_report) {
        next_report = now + options.report_interval;
        if (const auto beat = read_heartbeat(heartbeat_path)) {
          if (beat->beat != last_beat) {
            last_beat = beat->beat;
            last_progress = now;
          }
          if (on_heartbeat) on_heartbeat(*beat);
        }
        if (now - last_progress > options.heartbeat_timeout) {
          child.signal_group(SIGKILL);
          exit = child.wait_for(std::chrono::seconds(10));
          hung =
              "hung: no heartbeat for " +
              std::to_string(
                  std::chrono::duration_cast<std::chrono::seconds>(now - last_progress).count()) +
              " s";
          break;
        }
      }
      if (!stop_forwarded && stop_requested != nullptr && stop_requested->load()) {
        child.signal_group(
            SIGTERM);  // the child finishes its bag, checkpoints and exits "interrupted"
        stop_forwarded = true;
      }
      if (while_waiting) while_waiting();
      const auto wait = std::min(
          next_report - now, std::chrono::steady_clock::duration(std::chrono::milliseconds(100)));
      exit = child.wait_for(std::chrono::duration_cast<std::chrono::milliseconds>(wait) +
                            std::chrono::milliseconds(1));
    }
  } catch (const std::exception& e) {
    return fail(std::string("supervising the child: ") + e.what());
  }
  if (!hung.empty()) return fail(hung);
  if (fs::exists(result_path)) {
    try {
      JobResult result = read_json_file(result_path).get<JobResult>();
      if (result.job_id != failed.job_id) {
        return fail("the child wrote a result for '" + result.job_id + "' to " + result_path);
      }
      result.runtime["rank"] = rank;
      result.runtime["process"] = "child";
      result.runtime["child_start"] = child_start;
      return result;
    } catch (const std::exception& e) {
      return fail("`mhim train` " + describe_exit(*exit) + " with an unreadable result " +
                  result_path + ": " + e.what());
    }
  }
  const bool stopped_from_outside =
      exit->signaled && (exit->signal == SIGTERM || exit->signal == SIGINT);
  if (stop_forwarded || (stop_requested != nullptr && stop_requested->load()) ||
      stopped_from_outside) {
    // Stopped on request before it could checkpoint (e.g. still starting up): resumable, not a
    // failure. A TERM or INT that reached the child without us is a stop too: batch systems
    // (Slurm's requeue, preemption, scancel) signal every process of a step at once, often before
    // this rank's own handler has run; the OOM killer sends KILL, never TERM.
    failed.status = "interrupted";
    return fail("stopped on request before writing a result (" + describe_exit(*exit) +
                "); rerun to resume");
  }
  if (exit->signaled) return fail(describe_exit(*exit));
  return fail("`mhim train` " + describe_exit(*exit) + " without a result");
}

}  // namespace mil::worker
