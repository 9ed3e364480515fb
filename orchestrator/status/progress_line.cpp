#include "orchestrator/status/progress_line.h"

namespace mil::orch {
namespace {
/// Carriage return and "erase to end of line": the cursor back to column 0 of an empty line.
constexpr const char* kClearLine = "\r\033[K";
}  // namespace

ProgressLine::ProgressLine(const StatusBoard& board, std::FILE* out,
                           std::chrono::milliseconds interval)
    : board_(board), out_(out) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    draw_locked();  // before any print(), so the line is there from the start
  }
  thread_ = std::thread([this, interval] {
    std::unique_lock<std::mutex> lock(mutex_);
    while (!wake_.wait_for(lock, interval, [this] { return stopping_; })) draw_locked();
  });
}

ProgressLine::~ProgressLine() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    draw_locked();
    std::fputc('\n', out_);
    std::fflush(out_);
  }
  wake_.notify_all();
  thread_.join();
}

void ProgressLine::print(const std::string& text) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::fprintf(out_, "%s%s\n", kClearLine, text.c_str());
  if (!stopping_) draw_locked();
}

void ProgressLine::draw_locked() {
  try {
    std::fprintf(out_, "%s%s", kClearLine, format_progress_line(board_.summary()).c_str());
    std::fflush(out_);
  } catch (...) {  // a progress line is not worth stopping a sweep for
  }
}

}  // namespace mil::orch
