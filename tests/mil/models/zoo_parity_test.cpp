// The model zoo against our own plain-torch rewrite: tests/fixtures/models/make_zoo_fixtures.py
// re-implements the reference modules (not the reference: check_against_reference.py, which ctest
// does not run, compared them with the reference's classes when added; training against the
// unchanged reference is in tests/mil/train/reference_replay_test.cpp), saves their state_dicts and
// their float64 eval-mode outputs for bags of N = 1, 7, 100, 1000. Each test loads a state_dict
// strictly (key sets identical) and matches every output to 1e-5 absolute.
#include <gtest/gtest.h>

#include <cstdio>
#include <functional>
#include <map>

#include "mil/mhim/dsmil_aggregator.h"
#include "mil/models/abmil.h"
#include "mil/models/clam.h"
#include "mil/models/dsmil.h"
#include "mil/models/dtfd.h"
#include "mil/models/gated_abmil.h"
#include "mil/models/mean_max.h"
#include "mil/models/state_dict.h"

namespace mil {
namespace {

const std::string kFixtures = std::string(MIL_SOURCE_DIR) + "/tests/fixtures/models/";
constexpr double kTolerance = 1e-5;  ///< Absolute: our float32 forward against float64 references.
constexpr int64_t kInputDim = 16, kClasses = 3, kEmbed = 32,
                  kHidden = 16;  ///< The script's widths.

std::map<std::string, at::Tensor> read_tensors(const std::string& path) {
  std::map<std::string, at::Tensor> out;
  for (auto& [name, tensor] : read_state_dict(path)) out.emplace(name, tensor);
  return out;
}

const std::map<std::string, at::Tensor>& bags() {
  static const auto tensors = read_tensors(kFixtures + "bags.pt");
  return tensors;
}

int64_t fixture_label() { return bags().at("label").item<int64_t>(); }

/// Compares `actual` with expected[key] when the fixture has it, printing the max abs error;
/// returns whether the fixture had the key (so callers can check that every expected output was
/// compared).
bool expect_close(const std::map<std::string, at::Tensor>& expected, const std::string& key,
                  const at::Tensor& actual, const std::string& model) {
  const auto it = expected.find(key);
  if (it == expected.end()) return false;
  EXPECT_TRUE(actual.defined()) << model << " " << key << " is undefined";
  if (!actual.defined()) return true;
  EXPECT_EQ(actual.sizes(), it->second.sizes()) << model << " " << key;
  if (actual.sizes() != it->second.sizes()) return true;
  const double error = (actual.detach().to(at::kDouble) - it->second).abs().max().item<double>();
  EXPECT_LE(error, kTolerance) << model << " " << key;
  std::printf("[parity] %-10s %-22s max abs error %.3g\n", model.c_str(), key.c_str(), error);
  return true;
}

/// Loads <name>_state.pt strictly into `model`, then checks every fixture output for every bag
/// size.
void expect_model_matches_fixture(const std::string& name, MilModelImpl& model) {
  SCOPED_TRACE(name);
  const auto report =
      load_state_dict(model, read_state_dict(kFixtures + name + "_state.pt"), /*strict=*/true);
  ASSERT_TRUE(report.clean()) << report.describe();
  model.eval();
  const auto expected = read_tensors(kFixtures + name + "_expected.pt");
  std::size_t compared = 0;
  for (int n : {1, 7, 100, 1000}) {
    SCOPED_TRACE("N = " + std::to_string(n));
    const std::string suffix = "_n" + std::to_string(n);
    torch::NoGradGuard no_grad;
    const MilOutput out = model.forward(bags().at("n" + std::to_string(n)));
    compared += expect_close(expected, "logits" + suffix, out.logits, name);
    compared += expect_close(expected, "instance_scores" + suffix, out.instance_scores, name);
    compared += expect_close(expected, "embedding" + suffix, out.embedding, name);
    compared += expect_close(expected, "instance_logits" + suffix, out.instance_logits, name);
    if (expected.count("aux_loss" + suffix)) {
      const at::Tensor aux = model.auxiliary_loss(out, fixture_label());
      ASSERT_TRUE(aux.defined()) << name << " has no auxiliary loss with aux_alpha = 1";
      compared += expect_close(expected, "aux_loss" + suffix, aux.reshape({1}), name);
    }
  }
  EXPECT_EQ(compared, expected.size())
      << "some fixture outputs of " << name << " were never compared";
}

TEST(ZooParity, StandAloneModelsMatchPyTorchForBagsOf1To1000Instances) {
  // dsmil and clam_* with aux_alpha 1 so the fixtures' unweighted auxiliary losses are compared
  // too; clam_mb's fixture has both smooth and hard SVM rows.
  Dsmil dsmil(
      DsmilOptions(kInputDim, kClasses).embed_dim(kEmbed).query_dim(kHidden).aux_alpha(1.0));
  expect_model_matches_fixture("dsmil", *dsmil);
  Clam clam_sb(
      ClamOptions(kInputDim, kClasses).embed_dim(kEmbed).attention_dim(kHidden).aux_alpha(1.0));
  expect_model_matches_fixture("clam_sb", *clam_sb);
  Clam clam_mb(ClamOptions(kInputDim, kClasses)
                   .multi_branch(true)
                   .embed_dim(kEmbed)
                   .attention_dim(kHidden)
                   .aux_alpha(1.0));
  expect_model_matches_fixture("clam_mb", *clam_mb);
  Dtfd dtfd(DtfdOptions(kInputDim, kClasses).embed_dim(kEmbed).attention_dim(kHidden));
  expect_model_matches_fixture("dtfd", *dtfd);
  MeanMaxMil meanmil(MeanMaxMilOptions(kInputDim, kClasses).pooling("mean").hidden_dim(kEmbed));
  expect_model_matches_fixture("meanmil", *meanmil);
  MeanMaxMil maxmil(MeanMaxMilOptions(kInputDim, kClasses).pooling("max").hidden_dim(kEmbed));
  expect_model_matches_fixture("maxmil", *maxmil);
}

TEST(ZooParity, AbmilAndGatedAbmilMatchPyTorchForBagsOf1To1000Instances) {
  Abmil abmil(AbmilOptions(kInputDim, kClasses).embed_dim(kEmbed).attention_dim(kHidden));
  expect_model_matches_fixture("abmil", *abmil);
  GatedAbmil gabmil(
      GatedAbmilOptions(kInputDim, kClasses).embed_dim(kEmbed).attention_dim(kHidden));
  expect_model_matches_fixture("gabmil", *gabmil);
}

TEST(ZooParity, MhimDsmilAggregatorMatchesPyTorch) {
  MhimDsmil aggregator(MhimDsmilOptions(kInputDim, kClasses));
  const auto report =
      load_state_dict(*aggregator, read_state_dict(kFixtures + "mhim_dsmil_state.pt"));
  ASSERT_TRUE(report.clean()) << report.describe();
  aggregator->eval();
  const auto expected = read_tensors(kFixtures + "mhim_dsmil_expected.pt");
  for (int n : {1, 7, 100, 1000}) {
    SCOPED_TRACE("N = " + std::to_string(n));
    const std::string suffix = "_n" + std::to_string(n);
    torch::NoGradGuard no_grad;
    const AggregatorOutput out =
        aggregator->forward(bags().at("n" + std::to_string(n)), /*want_scores=*/true);
    EXPECT_TRUE(expect_close(expected, "logits" + suffix, out.logits, "mhim_dsmil"));
    EXPECT_TRUE(expect_close(expected, "embedding" + suffix, out.embedding, "mhim_dsmil"));
    EXPECT_TRUE(expect_close(expected, "instance_scores" + suffix, out.attention, "mhim_dsmil"));
    EXPECT_TRUE(
        expect_close(expected, "instance_logits" + suffix, out.instance_logits, "mhim_dsmil"));
  }
}

}  // namespace
}  // namespace mil
