#include "worker/supervise/orphan_guard.h"

#include <unistd.h>

namespace mil::worker {

OrphanGuard::OrphanGuard(std::function<void(const std::string&)> log, int exit_code,
                         std::chrono::milliseconds period)
    : parent_(::getppid()) {
  thread_ = std::thread([this, log = std::move(log), exit_code, period] {
    while (!done_.load()) {
      std::this_thread::sleep_for(period);
      if (::getppid() != parent_) {
        if (log) log("the launcher (process " + std::to_string(parent_) + ") is gone; exiting");
        ::_exit(exit_code);
      }
    }
  });
}

OrphanGuard::~OrphanGuard() {
  done_.store(true);
  thread_.join();
}

}  // namespace mil::worker
