// The MHIM network against our own plain-torch rewrite (tests/fixtures/mhim/make_mhim_fixtures.py,
// written from the specification, not the reference): same state_dict, same bags, eval mode;
// logits, class-aware instance scores and the GRN's eval branch. Training against the unchanged
// reference is in tests/mil/train/reference_replay_test.cpp.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

#include "mil/data/feature_io.h"
#include "mil/mhim/mhim_network.h"
#include "mil/models/state_dict.h"

namespace mil {
namespace {

const std::string kFixtures = std::string(MIL_SOURCE_DIR) + "/tests/fixtures/mhim/";

std::map<std::string, std::vector<double>> expected(int n) {
  std::map<std::string, std::vector<double>> values;
  std::ifstream in(kFixtures + "expected_" + std::to_string(n) + ".txt");
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string name;
    fields >> name;
    for (double v; fields >> v;) values[name].push_back(v);
  }
  return values;
}

std::shared_ptr<MhimNetworkImpl> reference_network(bool merge_test) {
  auto net = std::make_shared<MhimNetworkImpl>(mhim_network_options_from_json(
      {{"embed_dim", 32}, {"merge", true}, {"merge_k", 3}, {"merge_test", merge_test}}, 16, 2));
  load_state_dict(*net, read_state_dict(kFixtures + "state.pt"));  // strict: key sets must agree
  net->eval();
  return net;
}

void expect_close(const at::Tensor& actual, const std::vector<double>& wanted) {
  const at::Tensor flat = actual.reshape({-1}).to(at::kDouble);
  ASSERT_EQ(flat.numel(), static_cast<int64_t>(wanted.size()));
  for (int64_t i = 0; i < flat.numel(); ++i)
    EXPECT_NEAR(flat[i].item<double>(), wanted[i], 1e-5) << "element " << i;
}

}  // namespace

TEST(MhimRewriteParity, MatchesOurPythonRewriteOnLogitsScoresAndTheGrnEvalBranch) {
  auto plain = reference_network(false);
  auto merged = reference_network(true);
  torch::NoGradGuard no_grad;
  for (int n : {1, 7, 100}) {
    SCOPED_TRACE("bag of " + std::to_string(n));
    const at::Tensor bag = read_feature_file(kFixtures + "bag_" + std::to_string(n) + ".pt");
    const auto want = expected(n);
    expect_close(plain->forward(bag).logits, want.at("logits"));
    const AggregatorOutput out =
        plain->online_encoder->forward(plain->embed(bag), /*want_scores=*/true);
    expect_close(plain->instance_scores(out, /*class_aware=*/true), want.at("scores"));
    expect_close(merged->forward(bag).logits, want.at("merged"));
  }
}

}  // namespace mil
