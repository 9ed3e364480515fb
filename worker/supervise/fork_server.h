#pragma once
// A fork server ("zygote") for supervised job children. Exec'ing `mhim train --job` costs ~1.2 s
// per job here, nearly all of it loading and initialising LibTorch. A worker rank instead starts
// `mhim zygote` once: it pays that start-up once, never runs a torch op (so no OpenMP or torch
// thread pool exists in it: fork() after GNU libgomp started threads is unsafe), and fork()s one
// job process per request, which runs `mhim train` exactly as the exec'd child would (same
// arguments, heartbeat file, log file, exit codes, own process group, signals reset) and sets its
// own thread count after the fork.
//
// clang-format off
// Protocol over a SOCK_SEQPACKET socketpair, one JSON object per packet:
//   zygote -> rank   {"ready": true, "pid": P}              once, when it can fork
//   rank -> zygote   {"argv": [...], "log": path}           argv as after `mhim` (argv[0] = "train")
//   zygote -> rank   {"pid": J} | {"error": "..."}          the job process started (or not)
//   zygote -> rank   {"pid": J, "signaled": b, "code": c,   when J ended (the zygote reaps it)
//                     "signal": s}
// clang-format on
// Lifetimes: the zygote dies with its rank (PR_SET_PDEATHSIG) or when the rank closes the socket; a
// job process dies with its zygote (PR_SET_PDEATHSIG), so a dead rank leaves neither behind. The
// zygote ignores SIGTERM/SIGINT/SIGUSR1: a stop (Slurm signals every process of a step) must reach
// the job, which checkpoints, without first killing it through its zygote.
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "worker/supervise/child_process.h"

namespace mil::worker {

/// How a worker rank starts its job children.
enum class ChildStart {
  kFork,  ///< forked by the rank's zygote (ForkServer); exec when the zygote cannot serve
  kExec,  ///< posix_spawn + exec of `mhim train` per job
};

/// "fork" or "exec" -> ChildStart; throws naming the accepted values otherwise.
ChildStart parse_child_start(const std::string& text);

/// The rank's side of a zygote. One thread uses it at a time.
class ForkServer {
 public:
  /// Starts `executable zygote --fd 3 --parent-pid <this pid> [--label LABEL]` (its output goes to
  /// this process's stderr) and returns at once; start() waits for it to be ready. `log` gets one
  /// line when the zygote is lost and jobs fall back to exec (may be empty). `label` only shows in
  /// its command line (e.g. the work folder, so that `ps` and tests can tell whose zygote it is).
  /// Throws when it cannot even be spawned.
  ForkServer(const std::string& executable, std::function<void(const std::string&)> log,
             const std::string& label = "");
  /// Closes the socket (the zygote exits) and reaps the zygote.
  ~ForkServer();
  ForkServer(const ForkServer&) = delete;
  ForkServer& operator=(const ForkServer&) = delete;

  /// The zygote's pid (for tests).
  pid_t pid() const { return pid_; }
  /// False once the zygote is known to be gone (or was never ready); it never comes back.
  bool alive() const { return alive_; }
  /// Waits up to kReadyTimeout for the zygote's start-up (once); false when it is gone instead.
  bool wait_until_ready();
  /// Forks a job process running `mhim <args...>` (args[0] = "train") with stdin from /dev/null and
  /// stdout and stderr appended to `log_path`, in a new process group. Its pid, or nothing when the
  /// zygote is gone (the caller then execs; logged once). Waits up to kReadyTimeout for the
  /// zygote's start-up the first time.
  std::optional<pid_t> start(const std::vector<std::string>& args, const std::string& log_path);
  /// Waits up to `timeout` for job `job`'s end as the zygote reports it. When the zygote dies
  /// meanwhile, the job dies with it (PR_SET_PDEATHSIG = SIGKILL): reported as killed by signal 9
  /// once it is gone.
  std::optional<ChildExit> wait_for(pid_t job, std::chrono::milliseconds timeout);

  /// How long the first start() waits for the zygote to load (LibTorch start-up takes ~1-2 s here).
  static constexpr std::chrono::seconds kReadyTimeout{60};

 private:
  /// Receives one packet within `timeout`; nothing on timeout; marks the zygote lost on EOF or
  /// error.
  std::optional<std::string> receive(std::chrono::milliseconds timeout);
  /// Handles an exit report or readiness packet; returns false for anything else.
  bool absorb(const std::string& packet);
  void lost(const std::string& why);

  std::function<void(const std::string&)> log_;
  pid_t pid_ = -1;
  int socket_ = -1;
  bool ready_ = false;
  bool alive_ = true;
  std::map<pid_t, ChildExit> exits_;  ///< Reported ends not yet collected by wait_for.
  std::map<pid_t, int> pidfds_;  ///< Jobs started: a pidfd each (-1 without pidfd_open), to see
                                 ///< them gone after the zygote died.
};

/// The zygote's loop (`mhim zygote`): serves requests on `socket` (see the protocol above) until
/// the rank closes it. `run_job` runs in each forked job process with the request's args and
/// returns its exit code (it is this process's `main` for `mhim train`). `parent` is the rank's
/// pid. Returns the zygote's exit code. Refuses to serve (returns 1) when this process already has
/// more than one thread.
int serve_forks(int socket, pid_t parent,
                const std::function<int(const std::vector<std::string>&)>& run_job);

}  // namespace mil::worker
