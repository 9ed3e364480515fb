#include <ATen/Parallel.h>

#include <csignal>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "app/commands.h"

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

int usage_failure(const std::string& command, const std::string& message) {
  std::fprintf(stderr, "mhim %s: %s\n(see: mhim %s --help)\n", command.c_str(), message.c_str(),
               command.c_str());
  return 2;
}

}  // namespace mil::app
