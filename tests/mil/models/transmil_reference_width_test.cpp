// TransMIL and MHIM's selfattn aggregator at the reference's own width (512: 8 heads of 64, 256
// landmarks) against our own Python rewrite of the reference (not the reference), generated at test
// time (about 17 MB, too large to commit). Needs Debian's python3-torch; labelled slow because
// starting Python torch takes seconds on a busy machine.
#include <gtest/gtest.h>

#include <cstdlib>

#include "tests/mil/models/transmil_parity.h"
#include "tests/support/temp_dir.h"

namespace mil::testing {

TEST(TransMilRewriteParity, MatchesOurPythonRewriteAtWidth512) {
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "Debian python3-torch is not installed (scripts/deps.sh installs it)";
  }
  TempDir dir;
  const std::string command =
      "/usr/bin/python3 " + std::string(MIL_SOURCE_DIR) +
      "/tests/fixtures/models/make_transmil_fixtures.py --width 512 --out " + dir.path().string();
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  expect_transmil_parity(dir.path().string());
  expect_selfattn_parity(dir.path().string());
  expect_transmil_parity(dir.path().string(), /*with_gradients=*/true);
  expect_selfattn_parity(dir.path().string(), /*with_gradients=*/true);
}

}  // namespace mil::testing
