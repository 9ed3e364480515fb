#pragma once
// What a crash inside a C library should still tell the user: which file was being read. Debian's
// libhdf5 1.10.8 dereferences NULL on some corrupt files (found by the h5_features fuzzer; HDF5's
// own issues #586 and PR #6377 describe the same class), so a bad `.h5` kills the process with
// SIGSEGV before any error can be thrown. Readers mark the span in which a library parses a file
// with FileBeingRead; the `mhim` CLI installs report_file_on_fatal_signal(), whose handler prints
// the marked file and then dies of the same signal (so a supervisor still sees the signal).
#include <string>

namespace mil {

/// Marks, for this thread, that `library` is reading `path` until destruction (nesting restores
/// the outer mark). Cheap: one message formatted into a fixed thread-local buffer.
class FileBeingRead {
 public:
  FileBeingRead(const std::string& path, const char* library);
  ~FileBeingRead();
  FileBeingRead(const FileBeingRead&) = delete;
  FileBeingRead& operator=(const FileBeingRead&) = delete;

 private:
  std::string outer_;  // the enclosing mark's message, restored on destruction ("" = none)
};

/// Installs handlers for SIGSEGV, SIGBUS, SIGFPE and SIGILL that write the faulting thread's
/// FileBeingRead message to stderr (nothing when there is none), then re-raise the signal with
/// its default action. Not installed in AddressSanitizer builds, whose own report says more.
void report_file_on_fatal_signal();

}  // namespace mil
