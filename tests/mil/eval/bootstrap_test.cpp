#include "mil/eval/bootstrap.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>

#include "mil/eval/metrics.h"

namespace mil {
namespace {
constexpr const char* kFixturePath = MIL_SOURCE_DIR "/tests/fixtures/bootstrap/indices.json";

nlohmann::json load_fixture() {
  std::ifstream in(kFixturePath);
  if (!in) throw std::runtime_error(std::string("cannot open ") + kFixturePath);
  return nlohmann::json::parse(in);
}
}  // namespace

TEST(BootstrapIndices, ReproducesTheReferenceResamplesDrawnByPythonTorch) {
  // indices.json comes from tests/fixtures/bootstrap/make_bootstrap_fixture.py run under
  // PyTorch 1.13.
  const nlohmann::json fixture = load_fixture();
  const int resample_count = fixture.at("resample_count").get<int>();
  ASSERT_EQ(fixture.at("seed_offset").get<uint64_t>(), kBootstrapSeedOffset);
  ASSERT_EQ(fixture.at("cases").size(), 4u);
  for (const auto& c : fixture.at("cases")) {
    const auto n = c.at("n").get<int64_t>();
    const int fold_index = c.at("fold_index").get<int>();
    const auto drawn = bootstrap_indices(n, resample_count, fold_index);
    ASSERT_EQ(drawn.size(), std::size_t(resample_count));
    for (const auto& [resample, expected] : c.at("resamples").items()) {
      EXPECT_EQ(drawn.at(std::stoul(resample)), expected.get<std::vector<int64_t>>())
          << "n " << n << ", fold " << fold_index << ", resample " << resample;
    }
  }
}

TEST(BootstrapIndices, DrawsNIndicesInRangeForEveryResample) {
  const auto drawn = bootstrap_indices(/*n=*/13, /*resamples=*/50, /*fold_index=*/2);
  ASSERT_EQ(drawn.size(), 50u);
  std::set<int64_t> seen;
  for (const auto& rows : drawn) {
    ASSERT_EQ(rows.size(), 13u);
    for (int64_t r : rows) {
      EXPECT_GE(r, 0);
      EXPECT_LT(r, 13);
      seen.insert(r);
    }
  }
  EXPECT_EQ(seen.size(), 13u);  // 650 draws with replacement reach every one of 13 items
}

TEST(BootstrapIndices, IsDeterministicPerFoldAndDiffersAcrossFolds) {
  EXPECT_EQ(bootstrap_indices(20, 5, 1), bootstrap_indices(20, 5, 1));
  EXPECT_NE(bootstrap_indices(20, 5, 1), bootstrap_indices(20, 5, 2));
  // One generator runs through the resamples: they differ from each other, and a shorter run is a
  // prefix.
  const auto longer = bootstrap_indices(20, 5, 1);
  EXPECT_NE(longer[0], longer[1]);
  const auto shorter = bootstrap_indices(20, 2, 1);
  EXPECT_TRUE(std::equal(shorter.begin(), shorter.end(), longer.begin()));
}

TEST(BootstrapSummary, OfAConstantMetricHasZeroSpreadAndAPointInterval) {
  const auto s = bootstrap_metric(bootstrap_indices(10, 100, 0),
                                  [](const std::vector<int64_t>&) { return 0.8; });
  EXPECT_DOUBLE_EQ(s.mean, 0.8);
  EXPECT_DOUBLE_EQ(s.std, 0.0);
  EXPECT_DOUBLE_EQ(s.ci_low, 0.8);
  EXPECT_DOUBLE_EQ(s.ci_high, 0.8);
  EXPECT_EQ(s.resamples_used, 100);
  EXPECT_EQ(s.resamples_skipped, 0);
}

TEST(BootstrapSummary, UsesUnbiasedStdAndLinearlyInterpolatedPercentiles) {
  // Values 1..5: mean 3, sum of squares 10, std sqrt(10 / 4). 2.5%: position .025 * 4 = 0.1 -> 1.1;
  // 97.5%: position 3.9 -> 4 + 0.9 * (5 - 4) = 4.9.
  const auto s = summarize_bootstrap({5.0, 1.0, 4.0, 2.0, 3.0});
  EXPECT_DOUBLE_EQ(s.mean, 3.0);
  EXPECT_DOUBLE_EQ(s.std, std::sqrt(2.5));
  EXPECT_NEAR(s.ci_low, 1.1, 1e-12);
  EXPECT_NEAR(s.ci_high, 4.9, 1e-12);
}

TEST(BootstrapSummary, SkipsAndCountsNaNResamples) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const auto s = summarize_bootstrap({1.0, nan, 3.0, nan});
  EXPECT_EQ(s.resamples_used, 2);
  EXPECT_EQ(s.resamples_skipped, 2);
  EXPECT_DOUBLE_EQ(s.mean, 2.0);
  const auto none = summarize_bootstrap({nan});
  EXPECT_EQ(none.resamples_used, 0);
  EXPECT_TRUE(std::isnan(none.mean) && std::isnan(none.std));
}

TEST(BootstrapMetric, SkipsResamplesWhereAucIsUndefined) {
  // Two items of different classes: a resample that draws the same item twice holds one class, AUC
  // NaN.
  const std::vector<double> scores{0.2, 0.9};
  const std::vector<int> labels{0, 1};
  const auto indices = bootstrap_indices(2, 200, 0);
  int one_class = 0;
  for (const auto& rows : indices) one_class += rows[0] == rows[1];
  const auto auc_of = [&](const std::vector<int64_t>& rows) {
    return roc_auc(take_rows(scores, rows), take_rows(labels, rows));
  };
  const auto s = bootstrap_metric(indices, auc_of);
  EXPECT_EQ(s.resamples_skipped, one_class);
  EXPECT_EQ(s.resamples_used, 200 - one_class);
  EXPECT_GT(one_class, 0);
  EXPECT_DOUBLE_EQ(s.mean, 1.0);  // the mixed resamples are perfectly ranked
}

TEST(BootstrapClassificationMetrics, SummarisesEveryKeyOverTheSameResamples) {
  const std::vector<std::vector<double>> p{
      {0.9, 0.1}, {0.6, 0.4}, {0.4, 0.6}, {0.2, 0.8}, {0.3, 0.7}};
  const std::vector<int> labels{0, 0, 1, 1, 1};  // argmax is right for every item
  const auto indices = bootstrap_indices(5, 50, 0);
  const auto summary = bootstrap_classification_metrics(p, labels, indices);
  for (const char* key : {"accuracy", "balanced_accuracy", "precision", "recall", "f1"}) {
    ASSERT_EQ(summary.count(key), 1u) << key;
    EXPECT_DOUBLE_EQ(summary.at(key).mean, 1.0) << key;
    EXPECT_EQ(summary.at(key).resamples_used, 50) << key;
  }
  // AUC and kappa are NaN exactly on the one-class resamples.
  int one_class = 0;
  for (const auto& rows : indices) {
    std::set<int> classes;
    for (int64_t r : rows) classes.insert(labels[std::size_t(r)]);
    one_class += classes.size() == 1;
  }
  EXPECT_EQ(summary.at("auc").resamples_skipped, one_class);
  EXPECT_EQ(summary.at("kappa").resamples_skipped, one_class);
}

}  // namespace mil
