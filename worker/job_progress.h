#pragma once
// What a running job reports about its progress: LibTorch-free, so heartbeats, test hooks and the
// status side can read it without the job runner's headers.
#include <string>

namespace mil::worker {

/// Where a running job is; reported through RunOptions::on_progress (heartbeats, progress bars).
struct JobProgress {
  std::string stage;   ///< "loading", "training" or "evaluating".
  int epoch = 0;       ///< 0-based epoch in progress (training), else the epochs run.
  int epochs = 0;      ///< Epochs of the job.
  int bags_done = 0;   ///< Training bags done in `epoch`.
  int bags_total = 0;  ///< Training bags per epoch (0 before training).
};

}  // namespace mil::worker
