// TransMIL and MHIM's selfattn aggregator against the Python re-implementation of the reference
// (tests/fixtures/models/make_transmil_fixtures.py): same state_dict keys, same outputs to 1e-5.
#include "tests/mil/models/transmil_parity.h"

#include <gtest/gtest.h>

namespace mil::testing {

const std::string kModelFixtures = std::string(MIL_SOURCE_DIR) + "/tests/fixtures/models";

TEST(TransMilParity, MatchesThePythonReferenceOnTheCommittedFixtures) {
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
