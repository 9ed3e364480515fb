#pragma once
// A child process in its own process group, started with posix_spawn (no fork of a big MPI rank),
// that the parent can wait for with a timeout and kill as a group. Linux only (pidfd; falls back to
// polling).
#include <sys/types.h>

#include <spawn.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace mil::worker {

/// How a child ended.
struct ChildExit {
  bool signaled = false;  ///< Killed by a signal (then `signal` is set), else exited with `code`.
  int code = 0;           ///< Exit status when !signaled.
  int signal = 0;         ///< Signal number when signaled.
};

/// "killed (signal 9; out of memory?)" for SIGKILL (the kernel's OOM killer sends it), "killed
/// (signal 6, Aborted)" for others, "exited with status N" for exits.
std::string describe_exit(const ChildExit& exit);

/// posix_spawn of `argv` (argv[0] is the path) as a supervised process: stdin from /dev/null, an
/// empty signal mask, default dispositions for the signals a supervisor sends (TERM, INT, USR1,
/// PIPE, CHLD) and its own process group (terminal signals skip it, killpg reaches all of it).
/// `add_file_actions` adds the caller's redirections. Its environment is this process's, with each
/// NAME=VALUE of `extra_environment` set. Returns 0 and sets `pid`, or posix_spawn's error number.
int spawn_in_own_group(const std::vector<std::string>& argv,
                       const std::function<void(posix_spawn_file_actions_t&)>& add_file_actions,
                       pid_t& pid, const std::vector<std::string>& extra_environment = {});

class ForkServer;

/// A running child. Destroying it while the child still runs kills its process group (SIGKILL) and
/// reaps it, so no child outlives its owner's scope.
class ChildProcess {
 public:
  /// Starts argv[0] (a path) with `argv` in a new process group, stdin from /dev/null and stdout
  /// and stderr appended to `log_path`, signal mask and dispositions reset. Throws naming the
  /// program. With `fork_server` (not owned; outlives this), the child is forked by that zygote
  /// instead, with argv[1...] as its arguments (argv[0] must be the binary the zygote runs); when
  /// the zygote cannot serve, it is exec'd as without one.
  ChildProcess(const std::vector<std::string>& argv, const std::string& log_path,
               ForkServer* fork_server = nullptr);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }  ///< Also the process group id.
  /// True when a zygote forked it (else it was exec'd).
  bool forked() const { return fork_server_ != nullptr; }
  /// Waits up to `timeout` for the child to end; its exit once it has (then it is reaped).
  std::optional<ChildExit> wait_for(std::chrono::milliseconds timeout);
  /// Sends `signal` to the child's process group (no-op once reaped).
  void signal_group(int signal);

 private:
  std::optional<ChildExit> try_reap();

  pid_t pid_ = -1;
  int pidfd_ = -1;  ///< Readable when the child exits; -1 when the kernel has no pidfd_open.
  ForkServer* fork_server_ =
      nullptr;  ///< The zygote that forked it and reports its end; null when exec'd.
  std::optional<ChildExit> exit_;
};

}  // namespace mil::worker
