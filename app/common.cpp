#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdio>
#include <thread>

#include "app/commands.h"

namespace mil::app {

int configure_threads(int requested, int ranks_on_node) {
  const int hardware = std::max(1u, std::thread::hardware_concurrency());
  const int threads = requested > 0 ? requested : std::max(1, hardware / std::max(1, ranks_on_node));
  at::set_num_threads(threads);
  return threads;
}

int usage_failure(const std::string& command, const std::string& message) {
  std::fprintf(stderr, "mhim %s: %s\n(see: mhim %s --help)\n", command.c_str(), message.c_str(), command.c_str());
  return 2;
}

}  // namespace mil::app
