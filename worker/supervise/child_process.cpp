#include "worker/supervise/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>
#include <thread>

#include "worker/supervise/fork_server.h"

extern char** environ;

namespace mil::worker {

std::string describe_exit(const ChildExit& exit) {
  if (!exit.signaled) return "exited with status " + std::to_string(exit.code);
  if (exit.signal == SIGKILL) return "killed (signal 9; out of memory?)";
  const char* name = ::strsignal(exit.signal);
  return "killed (signal " + std::to_string(exit.signal) + (name ? std::string(", ") + name : "") +
         ")";
}

int spawn_in_own_group(const std::vector<std::string>& argv,
                       const std::function<void(posix_spawn_file_actions_t&)>& add_file_actions,
                       pid_t& pid, const std::vector<std::string>& extra_environment) {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attributes;
  posix_spawn_file_actions_init(&actions);
  posix_spawnattr_init(&attributes);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  add_file_actions(actions);
  sigset_t empty, defaults;
  sigemptyset(&empty);
  sigemptyset(&defaults);
  for (int s : {SIGTERM, SIGINT, SIGUSR1, SIGPIPE, SIGCHLD}) sigaddset(&defaults, s);
  posix_spawnattr_setsigmask(&attributes, &empty);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setpgroup(&attributes, 0);
  posix_spawnattr_setflags(&attributes,
                           POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // This process's environment, with each NAME=VALUE of extra_environment replacing any NAME there.
  std::vector<char*> environment;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view entry(*e);
    const bool replaced = std::any_of(extra_environment.begin(), extra_environment.end(),
                                      [&](const std::string& extra) {
                                        const auto name = extra.substr(0, extra.find('=') + 1);
                                        return entry.substr(0, name.size()) == name;
                                      });
    if (!replaced) environment.push_back(*e);
  }
  for (const auto& extra : extra_environment)
    environment.push_back(const_cast<char*>(extra.c_str()));
  environment.push_back(nullptr);
  const int error =
      posix_spawn(&pid, argv[0].c_str(), &actions, &attributes, args.data(), environment.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  return error;
}

ChildProcess::ChildProcess(const std::vector<std::string>& argv, const std::string& log_path,
                           ForkServer* fork_server) {
  if (argv.empty()) throw std::runtime_error("spawning a child: empty command");
  if (fork_server != nullptr) {
    if (const auto pid =
            fork_server->start(std::vector<std::string>(argv.begin() + 1, argv.end()), log_path)) {
      pid_ = *pid;
      fork_server_ = fork_server;
      return;
    }
  }
  const int error = spawn_in_own_group(
      argv,
      [&](posix_spawn_file_actions_t& actions) {
        posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(),
                                         O_WRONLY | O_CREAT | O_APPEND, 0644);
        posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
      },
      pid_);
  if (error != 0) {
    throw std::runtime_error("cannot start '" + argv[0] + "' (output to '" + log_path +
                             "'): " + std::strerror(error));
  }
#ifdef SYS_pidfd_open
  pidfd_ = int(::syscall(SYS_pidfd_open, pid_, 0));
#endif
}

ChildProcess::~ChildProcess() {
  if (!exit_) {
    signal_group(SIGKILL);
    if (fork_server_ != nullptr) {
      while (!wait_for(std::chrono::milliseconds(1000))) {
      }
    }
    while (!try_reap()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  if (pidfd_ >= 0) ::close(pidfd_);
}

std::optional<ChildExit> ChildProcess::try_reap() {
  if (exit_) return exit_;
  if (fork_server_ != nullptr) {
    exit_ = fork_server_->wait_for(pid_, std::chrono::milliseconds(0));
    return exit_;
  }
  int status = 0;
  const pid_t done = ::waitpid(pid_, &status, WNOHANG);
  if (done != pid_) return std::nullopt;
  ChildExit e;
  e.signaled = WIFSIGNALED(status);
  e.code = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
  e.signal = e.signaled ? WTERMSIG(status) : 0;
  exit_ = e;
  return exit_;
}

std::optional<ChildExit> ChildProcess::wait_for(std::chrono::milliseconds timeout) {
  if (auto e = try_reap()) return e;
  if (fork_server_ != nullptr) {
    exit_ = fork_server_->wait_for(pid_, timeout);
    return exit_;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  if (pidfd_ >= 0) {
    pollfd fd{pidfd_, POLLIN, 0};
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      const int ready = ::poll(&fd, 1, int(std::max<long long>(0, left.count())));
      if (ready > 0 || left.count() <= 0) return try_reap();
      if (ready < 0 && errno != EINTR) break;  // fall back to polling below
    }
  }
  // No pidfd: poll waitpid, sleeping 1 ms at first and at most 20 ms.
  auto nap = std::chrono::milliseconds(1);
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto e = try_reap()) return e;
    std::this_thread::sleep_for(nap);
    nap = std::min(nap * 2, std::chrono::milliseconds(20));
  }
  return try_reap();
}

void ChildProcess::signal_group(int signal) {
  if (!exit_ && pid_ > 0) ::killpg(pid_, signal);
}

}  // namespace mil::worker
