#pragma once
// Runs a shell command for end-to-end tests and captures what it printed.
#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace mil::testing {

struct CommandOutput {
  int exit_code = -1;  ///< The exit status; -1 when it did not exit normally or could not start.
  std::string output;  ///< stdout and stderr together.
};

inline CommandOutput run_command(const std::string& command) {
  CommandOutput out;
  FILE* pipe = ::popen((command + " 2>&1").c_str(), "r");
  if (!pipe) return out;
  char buffer[4096];
  while (std::fgets(buffer, sizeof buffer, pipe)) out.output += buffer;
  const int status = ::pclose(pipe);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

}  // namespace mil::testing
