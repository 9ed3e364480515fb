// TransMIL and MHIM's selfattn aggregator against our own plain-torch rewrite of the reference
// (tests/fixtures/models/make_transmil_fixtures.py, not the reference): same state_dict keys, same
// outputs to 1e-5. Training against the unchanged reference:
// tests/mil/train/reference_replay_test.cpp.
#include "tests/mil/models/transmil_parity.h"

#include <gtest/gtest.h>

namespace mil::testing {

const std::string kModelFixtures = std::string(MIL_SOURCE_DIR) + "/tests/fixtures/models";

TEST(TransMilRewriteParity, MatchesOurPythonRewriteOnTheCommittedFixtures) {
  expect_transmil_parity(kModelFixtures);
}

TEST(MhimSelfAttentionParity, MatchesThePythonReferenceOnTheCommittedFixtures) {
  expect_selfattn_parity(kModelFixtures);
}

TEST(TransMilParity, MatchesThePythonReferenceWithAutogradOnThroughTheTrainingKernels) {
  expect_transmil_parity(kModelFixtures, /*with_gradients=*/true);
}

TEST(MhimSelfAttentionParity, MatchesThePythonReferenceWithAutogradOnThroughTheTrainingKernels) {
  expect_selfattn_parity(kModelFixtures, /*with_gradients=*/true);
}

}  // namespace mil::testing
