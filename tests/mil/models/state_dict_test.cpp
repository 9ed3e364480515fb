// PyTorch state_dict interchange against files written by Python torch (tests/fixtures/state_dict).
#include "mil/models/state_dict.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "tests/support/expect_throw.h"
#include "tests/support/temp_dir.h"

namespace {

const std::string kFixtures = std::string(MIL_SOURCE_DIR) + "/tests/fixtures/state_dict/";

/// The module the fixture script saved: Sequential(Linear(3, 2), LayerNorm(2), BatchNorm1d(2)).
torch::nn::Sequential fixture_module() {
  return torch::nn::Sequential(torch::nn::Linear(3, 2),
                               torch::nn::LayerNorm(torch::nn::LayerNormOptions({2})),
                               torch::nn::BatchNorm1d(2));
}

/// name -> values as the script printed them.
std::map<std::string, std::vector<double>> expected_values() {
  std::map<std::string, std::vector<double>> values;
  std::ifstream in(kFixtures + "values.txt");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string name;
    fields >> name;
    double v;
    while (fields >> v) values[name].push_back(v);
  }
  return values;
}

void expect_module_holds_fixture_values(const torch::nn::Module& module) {
  const auto expected = expected_values();
  ASSERT_EQ(expected.size(), 9u);
  for (const auto& [name, tensor] : mil::state_dict_of(module)) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(expected.count(name));
    const at::Tensor flat = tensor.reshape({-1}).to(torch::kDouble);
    ASSERT_EQ(flat.numel(), static_cast<int64_t>(expected.at(name).size()));
    for (int64_t i = 0; i < flat.numel(); ++i) {
      EXPECT_EQ(static_cast<float>(flat[i].item<double>()),
                static_cast<float>(expected.at(name)[i]));
    }
  }
}

}  // namespace

TEST(StateDict, NamesMatchPyTorchForNestedModulesAndBuffers) {
  auto module = fixture_module();
  std::vector<std::string> names;
  for (const auto& [name, tensor] : mil::state_dict_of(*module)) names.push_back(name);
  EXPECT_EQ(names, (std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "2.weight",
                                             "2.bias", "2.running_mean", "2.running_var",
                                             "2.num_batches_tracked"}));
}

TEST(StateDict, LoadsPythonStateDictExactly) {
  auto module = fixture_module();
  const auto report = mil::load_state_dict(*module, mil::read_state_dict(kFixtures + "plain.pt"));
  EXPECT_TRUE(report.clean()) << report.describe();
  expect_module_holds_fixture_values(*module);
}

TEST(StateDict, LoadsReferenceCheckpointWithModelKeyAndModulePrefix) {
  auto module = fixture_module();
  mil::load_state_dict(*module, mil::read_state_dict(kFixtures + "checkpoint.pt"));
  expect_module_holds_fixture_values(*module);
}

TEST(StateDict, StrictLoadNamesEveryMissingUnexpectedAndMismatchedKey) {
  torch::nn::Sequential wider(torch::nn::Linear(4, 2),
                              torch::nn::LayerNorm(torch::nn::LayerNormOptions({2})));
  const at::Tensor before = wider[0]->as<torch::nn::Linear>()->weight.clone();
  try {
    mil::load_state_dict(*wider, mil::read_state_dict(kFixtures + "plain.pt"));
    FAIL() << "strict load of a mismatched state_dict did not throw";
  } catch (const std::exception& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("0.weight: [2, 3] in the file vs [2, 4] in the model"),
              std::string::npos)
        << message;
    EXPECT_NE(message.find("unexpected keys: 2.weight, 2.bias, 2.running_mean"), std::string::npos)
        << message;
    EXPECT_EQ(message.find("missing keys"), std::string::npos) << message;
  }
  EXPECT_TRUE(wider[0]->as<torch::nn::Linear>()->weight.equal(before))
      << "a failed strict load changed weights";
}

TEST(StateDict, NonStrictLoadCopiesMatchingKeysAndReportsTheRest) {
  torch::nn::Sequential longer(torch::nn::Linear(3, 2),
                               torch::nn::LayerNorm(torch::nn::LayerNormOptions({2})),
                               torch::nn::BatchNorm1d(2), torch::nn::Linear(2, 1));
  const auto report =
      mil::load_state_dict(*longer, mil::read_state_dict(kFixtures + "plain.pt"), /*strict=*/false);
  EXPECT_EQ(report.missing, (std::vector<std::string>{"3.weight", "3.bias"}));
  EXPECT_TRUE(report.unexpected.empty());
  const auto expected = expected_values();
  EXPECT_FLOAT_EQ(longer[0]->as<torch::nn::Linear>()->bias[1].item<float>(),
                  expected.at("0.bias")[1]);
}

TEST(StateDict, WriteThenReadRoundTripsBitForBit) {
  mil::testing::TempDir dir;
  auto module = fixture_module();
  mil::write_state_dict(mil::state_dict_of(*module), dir / "ours.pt");
  auto copy = fixture_module();
  mil::load_state_dict(*copy, mil::read_state_dict(dir / "ours.pt"));
  const auto a = mil::state_dict_of(*module);
  const auto b = mil::state_dict_of(*copy);
  for (std::size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(a[i].second.equal(b[i].second)) << a[i].first;
}

TEST(StateDict, PythonTorchLoadsOurFile) {
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "Debian python3-torch is not installed (scripts/deps.sh installs it)";
  }
  mil::testing::TempDir dir;
  auto module = fixture_module();
  mil::load_state_dict(*module, mil::read_state_dict(kFixtures + "plain.pt"));
  mil::write_state_dict(mil::state_dict_of(*module), dir / "ours.pt");
  // Python loads our file into the same architecture strictly and compares with its own original.
  const std::string script =
      "import torch; m = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2), "
      "torch.nn.BatchNorm1d(2)); "
      "m.load_state_dict(torch.load('" +
      (dir / "ours.pt") +
      "'), strict=True); "
      "ref = torch.load('" +
      kFixtures +
      "plain.pt'); "
      "assert all(torch.equal(ref[k], v) for k, v in m.state_dict().items()), 'values differ'";
  EXPECT_EQ(std::system(("/usr/bin/python3 -c \"" + script + "\"").c_str()), 0);
}

// The reference's best checkpoint layout ({"model": student, "teacher": teacher}), which MHIM jobs
// write.
TEST(StateDict, ADictOfStateDictsReadsBackPartByPartAndAsAModelCheckpoint) {
  mil::testing::TempDir dir;
  auto student = fixture_module();
  auto teacher = fixture_module();  // other random weights
  mil::write_state_dicts(
      {{"model", mil::state_dict_of(*student)}, {"teacher", mil::state_dict_of(*teacher)}},
      dir / "best.pt");
  const auto expect_equal = [](const mil::StateDict& a, const mil::StateDict& b) {
    ASSERT_EQ(a.size(), b.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].first, b[i].first);
      EXPECT_TRUE(a[i].second.equal(b[i].second)) << a[i].first;
    }
  };
  expect_equal(mil::read_state_dict(dir / "best.pt"),
               mil::state_dict_of(*student));  // what predict reads
  expect_equal(mil::read_state_dict_part(dir / "best.pt", "teacher"), mil::state_dict_of(*teacher));
  EXPECT_FALSE(
      mil::state_dict_of(*student)[0].second.equal(mil::state_dict_of(*teacher)[0].second));
  MIL_EXPECT_THROW_WITH(mil::read_state_dict_part(dir / "best.pt", "optimizer"),
                        "has no dict of tensors under key 'optimizer'");
}

TEST(StateDict, PythonTorchLoadsOurDictOfStateDicts) {
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
    GTEST_SKIP() << "Debian python3-torch is not installed (scripts/deps.sh installs it)";
  }
  mil::testing::TempDir dir;
  auto student = fixture_module();
  mil::load_state_dict(*student, mil::read_state_dict(kFixtures + "plain.pt"));
  auto teacher = fixture_module();
  mil::write_state_dicts(
      {{"model", mil::state_dict_of(*student)}, {"teacher", mil::state_dict_of(*teacher)}},
      dir / "best.pt");
  const std::string script =
      "import torch; ck = torch.load('" + (dir / "best.pt") +
      "'); "
      "assert sorted(ck) == ['model', 'teacher'], sorted(ck); "
      "m = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.LayerNorm(2), "
      "torch.nn.BatchNorm1d(2)); "
      "m.load_state_dict(ck['model'], strict=True); m.load_state_dict(ck['teacher'], strict=True); "
      "ref = torch.load('" +
      kFixtures +
      "plain.pt'); "
      "assert all(torch.equal(ref[k], v) for k, v in ck['model'].items()), 'values differ'";
  EXPECT_EQ(std::system(("/usr/bin/python3 -c \"" + script + "\"").c_str()), 0);
}
