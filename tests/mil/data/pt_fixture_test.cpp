// .pt files written by Python's torch.save (tests/fixtures/pt/make_pt_fixtures.py) read back
// exactly.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>

#include <nlohmann/json.hpp>

#include "mil/data/feature_io.h"
#include "tests/support/expect_throw.h"

namespace mil {
namespace {
const std::string kFixtures = std::string(MIL_SOURCE_DIR) + "/tests/fixtures/pt/";

/// Python's values for `file` as a float64 tensor of its shape.
at::Tensor expected(const std::string& file) {
  std::ifstream in(kFixtures + "expected.json");
  const nlohmann::json j = nlohmann::json::parse(in).at(file);
  const auto values = j.at("values").get<std::vector<double>>();
  return at::tensor(values, at::kDouble).reshape(j.at("shape").get<std::vector<int64_t>>());
}

/// Bitwise equality after converting Python's doubles to float32 (exact: they were float32 or
/// float16).
void expect_exact(const at::Tensor& actual, const std::string& file) {
  const at::Tensor want = expected(file).to(at::kFloat).contiguous();
  ASSERT_EQ(actual.sizes(), want.sizes()) << file;
  ASSERT_EQ(actual.scalar_type(), at::kFloat) << file;
  EXPECT_EQ(std::memcmp(actual.data_ptr(), want.data_ptr(), std::size_t(want.nbytes())), 0)
      << file << " differs";
}
}  // namespace

TEST(PtFixtures, ReadFloat32TensorsExactlyIncludingANonContiguousView) {
  const at::Tensor plain = read_feature_file(kFixtures + "plain.pt");
  expect_exact(plain, "plain.pt");
  EXPECT_TRUE(std::signbit(plain[0][0].item<float>())) << "-0.0 keeps its sign";
  EXPECT_GT(plain[0][1].item<float>(), 0.0f) << "a subnormal is not flushed to zero";
  const at::Tensor view = read_feature_file(kFixtures + "view.pt");
  expect_exact(view, "view.pt");
  EXPECT_TRUE(view.is_contiguous());
  // view.pt is base[2:6, 1:4] of base = arange(40).reshape(8, 5) / 7: element (i, j) is ((i+2)*5 +
  // j+1) / 7.
  EXPECT_EQ(view[3][2].item<float>(), float(5 * 5 + 3) / 7.0f);
}

TEST(PtFixtures, ReadTheFeaturesOfADictAndAFloat16TensorExactly) {
  expect_exact(read_feature_file(kFixtures + "dict.pt"), "dict.pt");
  const at::Tensor half = read_feature_file(kFixtures + "half.pt");
  expect_exact(half, "half.pt");
  EXPECT_TRUE(at::equal(half, half.to(at::kHalf).to(at::kFloat)))
      << "float16 values, widened exactly";
}

TEST(PtFixtures, NameTheLegacyFormatInsteadOfFailingObscurely) {
  MIL_EXPECT_THROW_WITH(read_feature_file(kFixtures + "legacy.pt"),
                        "legacy.pt' is in the legacy (pre-1.6) torch.save format");
}

}  // namespace mil
