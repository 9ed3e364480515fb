#include "worker/supervise/test_fault.h"

#include <unistd.h>

#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <string>

namespace mil::worker {

void inject_test_fault(const JobSpec& spec, const JobProgress& progress, int rank) {
  const char* faults = std::getenv("MHIM_TEST_FAULT");
  if (faults == nullptr || progress.stage != "training") return;
  std::stringstream list(faults);
  for (std::string fault; std::getline(list, fault, ',');) {
    const auto colon = fault.find(':');
    if (colon == std::string::npos || fault.substr(colon + 1) != spec.dataset.name) continue;
    const std::string kind = fault.substr(0, colon);
    if (kind == "abort") std::abort();
    if (kind == "hang") {
      for (;;) ::pause();
    }
    if (kind == "throw" || kind == "throw@" + std::to_string(rank)) {
      throw std::runtime_error("injected test fault (" + kind + ") in epoch " +
                               std::to_string(progress.epoch + 1));
    }
  }
}

}  // namespace mil::worker
