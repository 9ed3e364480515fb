#include "worker/supervise/fork_server.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <stdexcept>
#include <thread>

#include <nlohmann/json.hpp>

namespace mil::worker {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

/// The largest packet either side sends (a request holds a few paths).
constexpr std::size_t kMaxPacket = 1 << 16;
/// How long the rank waits for the zygote to answer a request (a fork takes milliseconds).
constexpr std::chrono::seconds kReplyTimeout{30};

bool send_packet(int socket, const std::string& text) {
  for (;;) {
    const ssize_t n = ::send(socket, text.data(), text.size(), MSG_NOSIGNAL);
    if (n >= 0) return std::size_t(n) == text.size();
    if (errno != EINTR) return false;
  }
}

int open_pidfd(pid_t pid) {
#ifdef SYS_pidfd_open
  return int(::syscall(SYS_pidfd_open, pid, 0));
#else
  (void)pid;
  return -1;
#endif
}

json exit_report(pid_t pid, int status) {
  return {{"pid", pid},
          {"signaled", WIFSIGNALED(status) != 0},
          {"code", WIFEXITED(status) ? WEXITSTATUS(status) : 0},
          {"signal", WIFSIGNALED(status) ? WTERMSIG(status) : 0}};
}

/// Threads of this process (entries of /proc/self/task); 0 when unknown.
std::size_t thread_count() {
  std::error_code ec;
  std::size_t n = 0;
  for (std::filesystem::directory_iterator it("/proc/self/task", ec), end; !ec && it != end;
       it.increment(ec))
    ++n;
  return ec ? 0 : n;
}

/// In a freshly forked job process: becomes what posix_spawn made of an exec'd child
/// (ChildProcess), then runs the job and exits with its code. Never returns.
[[noreturn]] void become_job(const json& request, pid_t zygote,
                             const std::function<int(const std::vector<std::string>&)>& run_job) {
  ::setpgid(0, 0);  // its own group: the rank kills the whole group; terminal signals skip it
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != zygote) std::_Exit(1);  // the zygote died before prctl
  for (int s : {SIGTERM, SIGINT, SIGUSR1, SIGHUP, SIGPIPE, SIGCHLD}) ::signal(s, SIG_DFL);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  std::vector<std::string> args;
  std::string log;
  try {
    args = request.at("argv").get<std::vector<std::string>>();
    log = request.at("log").get<std::string>();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mhim zygote: bad request: %s\n", e.what());
    std::_Exit(127);
  }
  const int in = ::open("/dev/null", O_RDONLY);
  const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  if (in < 0 || out < 0 || ::dup2(in, STDIN_FILENO) < 0 || ::dup2(out, STDOUT_FILENO) < 0 ||
      ::dup2(out, STDERR_FILENO) < 0) {
    std::fprintf(stderr, "mhim zygote: cannot open the job's log '%s': %s\n", log.c_str(),
                 std::strerror(errno));
    std::_Exit(127);  // what a failed exec returns
  }
  ::close(in);
  ::close(out);
  // Its parent is the zygote now, not the rank: die with the zygote (which dies with the rank).
  for (std::size_t i = 0; i + 1 < args.size(); ++i) {
    if (args[i] == "--parent-pid") args[i + 1] = std::to_string(zygote);
  }
  int code = 1;
  try {
    code = run_job(args);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mhim %s: error: %s\n", args.empty() ? "" : args[0].c_str(), e.what());
  }
  // Everything the job keeps is written and closed by now (result.json durably). Skip the static
  // destructors: LibTorch's take ~0.9 s of CPU at exit here, most of a no-op job's cost.
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  std::_Exit(code);
}

}  // namespace

ChildStart parse_child_start(const std::string& text) {
  if (text == "fork") return ChildStart::kFork;
  if (text == "exec") return ChildStart::kExec;
  throw std::runtime_error("--child-start must be fork or exec, not '" + text + "'");
}

ForkServer::ForkServer(const std::string& executable, std::function<void(const std::string&)> log,
                       const std::string& label)
    : log_(std::move(log)) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    throw std::runtime_error(std::string("fork server: socketpair: ") + std::strerror(errno));
  }
  // The zygote's end becomes its fd 3 (dup2 clears close-on-exec; it must not already be 3).
  int theirs = fds[1];
  if (theirs == 3) {
    theirs = ::fcntl(fds[1], F_DUPFD_CLOEXEC, 10);
    ::close(fds[1]);
  }
  std::vector<std::string> argv = {executable, "zygote",       "--fd",
                                   "3",        "--parent-pid", std::to_string(::getpid())};
  if (!label.empty()) argv.insert(argv.end(), {"--label", label});
  // LD_BIND_NOW: the zygote resolves every symbol once, at start (+0.0-0.1 s), instead of each
  // forked job resolving again the ones the zygote never called (2 ranks, 40 no-op jobs: 0.62 ->
  // 0.55 s).
  const int error = spawn_in_own_group(argv,
                                       [&](posix_spawn_file_actions_t& actions) {
                                         posix_spawn_file_actions_adddup2(&actions, theirs, 3);
                                       },
                                       pid_, {"LD_BIND_NOW=1"});
  ::close(theirs);
  if (error != 0) {
    ::close(fds[0]);
    throw std::runtime_error("fork server: cannot start '" + executable +
                             " zygote': " + std::strerror(error));
  }
  socket_ = fds[0];
}

ForkServer::~ForkServer() {
  if (socket_ >= 0) ::close(socket_);  // the zygote sees EOF and exits
  for (const auto& [job, fd] : pidfds_) {
    if (fd >= 0) ::close(fd);
  }
  if (pid_ <= 0) return;
  const auto deadline = Clock::now() + std::chrono::seconds(5);
  int status = 0;
  while (::waitpid(pid_, &status, WNOHANG) == 0) {
    if (Clock::now() > deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

void ForkServer::lost(const std::string& why) {
  if (!alive_) return;
  alive_ = false;
  if (log_)
    log_("fork server (zygote, process " + std::to_string(pid_) + ") " + why +
         "; jobs start by exec from now on");
}

std::optional<std::string> ForkServer::receive(std::chrono::milliseconds timeout) {
  if (!alive_) return std::nullopt;
  pollfd fd{socket_, POLLIN, 0};
  int ready = 0;
  do {
    ready = ::poll(&fd, 1, int(std::max<long long>(0, timeout.count())));
  } while (ready < 0 && errno == EINTR);
  if (ready == 0) return std::nullopt;
  std::string packet(kMaxPacket, '\0');
  const ssize_t n = ready > 0 ? ::recv(socket_, packet.data(), packet.size(), 0) : -1;
  if (n <= 0) {
    lost(n == 0 ? "is gone" : std::string("cannot be read: ") + std::strerror(errno));
    return std::nullopt;
  }
  packet.resize(std::size_t(n));
  return packet;
}

bool ForkServer::absorb(const std::string& packet) {
  const json message = json::parse(packet, nullptr, /*allow_exceptions=*/false);
  if (!message.is_object()) return false;
  if (message.contains("ready")) {
    ready_ = true;
    return true;
  }
  if (message.contains("signaled")) {
    ChildExit e;
    e.signaled = message.value("signaled", false);
    e.code = message.value("code", 0);
    e.signal = message.value("signal", 0);
    exits_[message.value("pid", pid_t(-1))] = e;
    return true;
  }
  return false;
}

bool ForkServer::wait_until_ready() {
  const auto ready_by = Clock::now() + kReadyTimeout;
  while (alive_ && !ready_) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(ready_by - Clock::now());
    const auto packet = receive(left);
    if (packet) {
      absorb(*packet);
    } else if (alive_ && Clock::now() >= ready_by) {
      ::kill(pid_, SIGKILL);
      lost("was not ready after " + std::to_string(kReadyTimeout.count()) + " s");
    }
  }
  return alive_;
}

std::optional<pid_t> ForkServer::start(const std::vector<std::string>& args,
                                       const std::string& log_path) {
  if (!wait_until_ready()) return std::nullopt;
  if (!send_packet(socket_, json{{"argv", args}, {"log", log_path}}.dump())) {
    lost(std::string("cannot be written to: ") + std::strerror(errno));
    return std::nullopt;
  }
  const auto reply_by = Clock::now() + kReplyTimeout;
  while (alive_) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(reply_by - Clock::now());
    const auto packet = receive(left);
    if (!packet) {
      if (alive_ && Clock::now() >= reply_by) {
        ::kill(pid_, SIGKILL);
        lost("did not answer within " + std::to_string(kReplyTimeout.count()) + " s");
      }
      continue;
    }
    if (absorb(*packet)) continue;
    const json reply = json::parse(*packet, nullptr, /*allow_exceptions=*/false);
    if (reply.is_object() && reply.contains("pid")) {
      const pid_t job = reply.at("pid").get<pid_t>();
      pidfds_[job] = open_pidfd(job);
      return job;
    }
    // It could not fork this once (e.g. EAGAIN): this job execs; the zygote stays.
    if (log_)
      log_("fork server could not start a job (" + reply.value("error", *packet) +
           "); starting it by exec");
    return std::nullopt;
  }
  return std::nullopt;
}

std::optional<ChildExit> ForkServer::wait_for(pid_t job, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  const auto collect = [this, job](ChildExit e) {
    exits_.erase(job);
    const auto fd = pidfds_.find(job);
    if (fd != pidfds_.end()) {
      if (fd->second >= 0) ::close(fd->second);
      pidfds_.erase(fd);
    }
    return e;
  };
  for (;;) {
    if (const auto e = exits_.find(job); e != exits_.end()) return collect(e->second);
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (!alive_) {
      // The zygote is gone, so its job was sent SIGKILL (PR_SET_PDEATHSIG): report that once it is
      // gone.
      ChildExit killed;
      killed.signaled = true;
      killed.signal = SIGKILL;
      const auto fd = pidfds_.find(job);
      if (fd != pidfds_.end() && fd->second >= 0) {
        pollfd p{fd->second, POLLIN, 0};
        if (::poll(&p, 1, int(std::max<long long>(0, left.count()))) > 0) return collect(killed);
        return std::nullopt;
      }
      if (::kill(job, 0) != 0 && errno == ESRCH) return collect(killed);
      if (left.count() <= 0) return std::nullopt;
      std::this_thread::sleep_for(std::min(left, std::chrono::milliseconds(10)));
      continue;
    }
    if (left.count() < 0) return std::nullopt;
    const auto packet = receive(left);
    if (packet) {
      absorb(*packet);
    } else if (alive_) {
      return std::nullopt;  // timed out
    }
  }
}

int serve_forks(int socket, pid_t parent,
                const std::function<int(const std::vector<std::string>&)>& run_job) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) return 1;  // the rank died before prctl
  const std::size_t threads = thread_count();
  if (threads != 1) {
    // fork() copies only the calling thread: a pool's locks could be held forever in the job.
    std::fprintf(
        stderr,
        "mhim zygote: %zu threads exist before any fork; refusing to serve (jobs will exec)\n",
        threads);
    return 1;
  }
  for (int s : {SIGTERM, SIGINT, SIGUSR1, SIGHUP, SIGPIPE}) ::signal(s, SIG_IGN);
  sigset_t child_ended;
  sigemptyset(&child_ended);
  sigaddset(&child_ended, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &child_ended, nullptr);
  const int signals = ::signalfd(-1, &child_ended, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signals < 0) {
    std::fprintf(stderr, "mhim zygote: signalfd: %s\n", std::strerror(errno));
    return 1;
  }
  const pid_t self = ::getpid();
  if (!send_packet(socket, json{{"ready", true}, {"pid", self}}.dump())) return 1;
  std::string packet(kMaxPacket, '\0');
  for (;;) {
    pollfd fds[2] = {{socket, POLLIN, 0}, {signals, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo info;
      while (::read(signals, &info, sizeof info) > 0) {
      }
      int status = 0;
      for (pid_t done; (done = ::waitpid(-1, &status, WNOHANG)) > 0;) {
        if (!send_packet(socket, exit_report(done, status).dump())) return 0;
      }
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      const ssize_t n = ::recv(socket, packet.data(), packet.size(), 0);
      if (n <= 0) break;  // the rank closed its end (or died)
      const json request =
          json::parse(packet.substr(0, std::size_t(n)), nullptr, /*allow_exceptions=*/false);
      std::fflush(nullptr);  // nothing buffered may be written twice
      const pid_t job = ::fork();
      if (job == 0) {
        ::close(socket);
        ::close(signals);
        become_job(request, self, run_job);
      }
      if (job < 0) {
        if (!send_packet(socket,
                         json{{"error", std::string("fork: ") + std::strerror(errno)}}.dump()))
          break;
        continue;
      }
      ::setpgid(job, job);  // also here, so the rank's killpg works as soon as it learns the pid
      if (!send_packet(socket, json{{"pid", job}}.dump())) break;
    }
  }
  ::close(signals);
  return 0;
}

}  // namespace mil::worker
