#pragma once
// Ends a sweep rank whose launcher is gone. Open MPI starts every rank in its own process group, so
// when mpirun itself is killed (SIGKILL, a lost terminal) its ranks live on as orphans: rank 0
// would keep writing results into a folder that a rerun may already be writing. A rank holding an
// OrphanGuard exits within `period` of its parent's death; its job child follows it
// (PR_SET_PDEATHSIG, cmd_train).
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

namespace mil::worker {

class OrphanGuard {
 public:
  /// Watches the current parent from a thread; when it changes (reparented to init or a subreaper),
  /// calls `log` with a line and ends the process with _exit(`exit_code`) (no destructors: the
  /// peers that would wait in MPI_Finalize are gone too).
  explicit OrphanGuard(std::function<void(const std::string&)> log, int exit_code = 1,
                       std::chrono::milliseconds period = std::chrono::milliseconds(200));
  ~OrphanGuard();  ///< Stops watching.
  OrphanGuard(const OrphanGuard&) = delete;
  OrphanGuard& operator=(const OrphanGuard&) = delete;

 private:
  pid_t parent_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace mil::worker
