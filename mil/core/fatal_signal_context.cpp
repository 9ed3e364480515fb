#include "mil/core/fatal_signal_context.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace mil {
namespace {

constexpr std::size_t kMessageBytes = 4096;
// The handler reads this with write(2) only: formatted ahead, never allocated in the handler.
thread_local char g_message[kMessageBytes] = {};

void set_message(const std::string& text) {
  const std::size_t n = std::min(text.size(), kMessageBytes - 1);
  std::memcpy(g_message, text.data(), n);
  g_message[n] = '\0';
}

extern "C" void on_fatal_signal(int signal_number) {
  const std::size_t n = std::strlen(g_message);
  if (n > 0) {
    ssize_t ignored = ::write(STDERR_FILENO, g_message, n);
    (void)ignored;
  }
  // SA_RESETHAND restored the default action; SA_NODEFER lets this raise deliver it now.
  ::raise(signal_number);
}

}  // namespace

FileBeingRead::FileBeingRead(const std::string& path, const char* library) : outer_(g_message) {
  set_message(std::string("mhim: fatal signal while ") + library + " was reading '" + path +
              "': the file is damaged in a way " + library +
              " does not detect; remove or re-extract it\n");
}

FileBeingRead::~FileBeingRead() { set_message(outer_); }

void report_file_on_fatal_signal() {
#if defined(__SANITIZE_ADDRESS__)
  return;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return;
#endif
#endif
  struct sigaction action {};
  action.sa_handler = on_fatal_signal;
  action.sa_flags = SA_RESETHAND | SA_NODEFER;
  sigemptyset(&action.sa_mask);
  for (const int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL}) ::sigaction(s, &action, nullptr);
}

}  // namespace mil
