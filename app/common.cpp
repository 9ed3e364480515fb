#include <ATen/Parallel.h>

#include <csignal>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "app/commands.h"
#include "mil/core/model_catalog.h"

namespace mil::app {

int configure_threads(int requested, int ranks_on_node) {
  const int hardware = std::max(1u, std::thread::hardware_concurrency());
  const int threads =
      requested > 0 ? requested : std::max(1, hardware / std::max(1, ranks_on_node));
  at::set_num_threads(threads);
  return threads;
}

namespace {
// Signal handlers can only reach process-wide state; this flag is the one piece the app owns.
std::atomic<bool> g_stop_requested{false};
extern "C" void request_stop(int) { g_stop_requested.store(true); }
}  // namespace

const std::atomic<bool>* install_stop_handlers() {
  struct sigaction action {};
  action.sa_handler = request_stop;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGUSR1, &action,
            nullptr);  // what mpirun forwards to every rank, and Slurm sends before a deadline
  return &g_stop_requested;
}

std::string with_model_list(const char* help) {
  std::string text = help;
  const std::size_t at = text.find("@MODELS@");
  if (at == std::string::npos) return text;
  const std::size_t line_start = text.rfind('\n', at) + 1;  // npos + 1 = 0 on the first line
  const std::string indent(at - line_start, ' ');
  std::string list;
  for (const ModelInfo& info : model_catalog()) {
    char row[200];
    std::snprintf(row, sizeof row, "%s%-10s %s\n", indent.c_str(), info.name.c_str(),
                  info.summary.c_str());
    list += row;
  }
  const std::size_t line_end = text.find('\n', at);
  return text.substr(0, line_start) + list +
         (line_end == std::string::npos ? "" : text.substr(line_end + 1));
}

int usage_failure(const std::string& command, const std::string& message) {
  std::fprintf(stderr, "mhim %s: %s\n(see: mhim %s --help)\n", command.c_str(), message.c_str(),
               command.c_str());
  return 2;
}

}  // namespace mil::app
