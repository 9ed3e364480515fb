#include "orchestrator/status/launcher_terminal.h"

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace mil::orch {
namespace {

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

/// Output passed through here continues to the next process up.
bool relays(const std::string& target) {
  return starts_with(target, "pipe:") || starts_with(target, "socket:");
}

std::string read_link(const std::string& path) {
  char buffer[512];
  const ssize_t n = ::readlink(path.c_str(), buffer, sizeof buffer - 1);
  return n > 0 ? std::string(buffer, std::size_t(n)) : std::string();
}

/// The parent pid in /proc/<pid>/stat (the field after the parenthesised name), or 0.
int parent_of(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), {});
  const std::size_t close = stat.rfind(')');
  if (close == std::string::npos) return 0;
  std::istringstream rest(stat.substr(close + 1));
  std::string state;
  int ppid = 0;
  rest >> state >> ppid;
  return ppid;
}

}  // namespace

bool is_terminal_path(const std::string& target) {
  return starts_with(target, "/dev/pts/") || starts_with(target, "/dev/tty") ||
         target == "/dev/console";
}

bool is_launcher_name(const std::string& name) {
  for (const char* launcher : {"mpirun", "mpiexec", "orterun", "prterun", "srun"}) {
    if (name == launcher || starts_with(name, (std::string(launcher) + ".").c_str())) return true;
  }
  return false;
}

bool progress_reaches_terminal(bool own_stderr_is_terminal, bool under_launcher,
                               const std::vector<ProcessView>& ancestors) {
  if (own_stderr_is_terminal) return true;
  if (!under_launcher) return false;
  for (const ProcessView& p : ancestors) {
    if (is_launcher_name(p.name)) return is_terminal_path(p.stderr_target);
    if (!relays(p.stderr_target)) return false;  // captured (a file, /dev/null) or unknown
  }
  return false;
}

std::vector<ProcessView> ancestors_from_proc(int max_depth) {
  std::vector<ProcessView> out;
  int pid = ::getppid();
  for (int depth = 0; depth < max_depth && pid > 1; ++depth) {
    ProcessView p;
    p.pid = pid;
    std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
    std::getline(comm, p.name);
    p.stderr_target = read_link("/proc/" + std::to_string(pid) + "/fd/2");
    out.push_back(p);
    pid = parent_of(pid);
  }
  return out;
}

bool stderr_reaches_a_terminal() {
  const bool own = ::isatty(STDERR_FILENO) == 1;
  bool launched = false;
  for (const char* variable : {"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "SLURM_PROCID"})
    launched |= std::getenv(variable) != nullptr;
  return progress_reaches_terminal(
      own, launched, own || !launched ? std::vector<ProcessView>{} : ancestors_from_proc());
}

}  // namespace mil::orch
