// A file that crashes a C library is still named: FileBeingRead marks the span, and the handler
// report_file_on_fatal_signal() installs prints the mark before the process dies of the signal.
#include "mil/core/fatal_signal_context.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "mil/data/feature_io.h"

namespace mil {
namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAddressSanitizer = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif
#else
constexpr bool kAddressSanitizer = false;
#endif

TEST(FatalSignalContext, TheMarkedFileIsPrintedAndTheProcessDiesOfTheSameSignal) {
  if (kAddressSanitizer) GTEST_SKIP() << "ASan keeps its own SIGSEGV handler";
  EXPECT_EXIT(
      {
        report_file_on_fatal_signal();
        const FileBeingRead outer("/data/outer.h5", "HDF5");
        { const FileBeingRead inner("/data/inner.h5", "HDF5"); }  // restores the outer mark
        ::raise(SIGBUS);
      },
      testing::KilledBySignal(SIGBUS),
      "fatal signal while HDF5 was reading '/data/outer.h5': the file is damaged");
}

TEST(FatalSignalContext, WithoutAMarkNothingIsPrinted) {
  if (kAddressSanitizer) GTEST_SKIP() << "ASan keeps its own SIGSEGV handler";
  EXPECT_EXIT(
      {
        report_file_on_fatal_signal();
        { const FileBeingRead done("/data/done.h5", "HDF5"); }
        std::fputs("before the signal\n", stderr);
        ::raise(SIGFPE);
      },
      testing::KilledBySignal(SIGFPE), "^before the signal\n$");
}

#ifdef MIL_HAVE_HDF5
// Made by the h5_features fuzzer (scripts/fuzz.sh): Debian's libhdf5 1.10.8 reads through a NULL
// local-heap image on it and dies of SIGSEGV inside H5HL_protect. A release of HDF5 that catches
// it throws instead, and the error names the file too: either way the user learns which file.
TEST(FatalSignalContext, AnH5FileThatCrashesHdf5IsNamedOnTheWayDown) {
  if (kAddressSanitizer) GTEST_SKIP() << "ASan keeps its own SIGSEGV handler";
  const std::string path =
      std::string(MIL_SOURCE_DIR) + "/tests/fixtures/h5/crashes_libhdf5_1.10.8.h5";
  EXPECT_EXIT(
      {
        report_file_on_fatal_signal();
        try {
          read_h5_slide(path);
        } catch (const FeatureFileError& e) {
          std::fprintf(stderr, "%s\n", e.what());
          std::_Exit(1);
        }
        std::_Exit(0);
      },
      [](int status) {
        return WIFSIGNALED(status) ? WTERMSIG(status) == SIGSEGV
                                   : WIFEXITED(status) && WEXITSTATUS(status) == 1;
      },
      "crashes_libhdf5_1\\.10\\.8\\.h5");
}
#endif

}  // namespace
}  // namespace mil
