#pragma once
// Rank 0's one-line progress display on a terminal: format_progress_line() of the board's summary,
// redrawn in place about once a second; log lines printed through it scroll above the line.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

#include "orchestrator/status/board.h"

namespace mil::orch {

/// Draws the progress line of `board` on `out` (a terminal) from construction to destruction.
class ProgressLine {
 public:
  /// `board` must outlive this object. Starts a thread that redraws every `interval`.
  ProgressLine(const StatusBoard& board, std::FILE* out,
               std::chrono::milliseconds interval = std::chrono::milliseconds(1000));
  /// Draws the line a last time, ends it with a newline and joins the thread.
  ~ProgressLine();
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  /// Prints `text` (one log line, without newline) above the progress line.
  void print(const std::string& text);

 private:
  /// Caller holds mutex_.
  void draw_locked();

  const StatusBoard& board_;
  std::FILE* out_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace mil::orch
