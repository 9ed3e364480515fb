#include "mil/train/survival.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "mil/data/bag_dataset.h"
#include "mil/synthetic/generator.h"
#include "tests/support/expect_throw.h"
#include "tests/support/temp_dir.h"

namespace mil {

TEST(SurvivalBins, CutAtEventQuartilesWithWidenedOuterEdges) {
  // Events at 1..9: quartiles 1, 3, 5, 7, 9; outer edges widened by 1e-6.
  const std::vector<double> times{1, 2, 3, 4, 5, 6, 7, 8, 9};
  const std::vector<int> events(9, 1);
  const auto edges = survival_bin_edges(times, events);
  ASSERT_EQ(edges.size(), 5u);
  EXPECT_DOUBLE_EQ(edges[0], 1 - 1e-6);
  EXPECT_DOUBLE_EQ(edges[1], 3);
  EXPECT_DOUBLE_EQ(edges[2], 5);
  EXPECT_DOUBLE_EQ(edges[3], 7);
  EXPECT_DOUBLE_EQ(edges[4], 9 + 1e-6);
  // Left-closed bins: an edge value belongs to the bin it opens.
  EXPECT_EQ(survival_bin(1, edges), 0);
  EXPECT_EQ(survival_bin(2.999, edges), 0);
  EXPECT_EQ(survival_bin(3, edges), 1);
  EXPECT_EQ(survival_bin(7, edges), 3);
  EXPECT_EQ(survival_bin(9, edges), 3);
}

TEST(SurvivalBins, UseOnlyEventTimesForQuartilesButAllTimesForOuterEdges) {
  // Events at 1..5 (quartiles 1, 2, 3, 4, 5 with linear interpolation); censored at 0.5 and 20.
  const std::vector<double> times{0.5, 1, 2, 3, 4, 5, 20};
  const std::vector<int> events{0, 1, 1, 1, 1, 1, 0};
  const auto edges = survival_bin_edges(times, events);
  EXPECT_DOUBLE_EQ(edges[0], 0.5 - 1e-6);
  EXPECT_DOUBLE_EQ(edges[1], 2);
  EXPECT_DOUBLE_EQ(edges[2], 3);
  EXPECT_DOUBLE_EQ(edges[3], 4);
  EXPECT_DOUBLE_EQ(edges[4], 20 + 1e-6);
  // Interpolated quartiles: events 10, 20, 30, 40 -> q.25 at position 0.75 -> 17.5.
  const auto interpolated = survival_bin_edges({10, 20, 30, 40}, {1, 1, 1, 1});
  EXPECT_DOUBLE_EQ(interpolated[1], 17.5);
  MIL_EXPECT_THROW_WITH(survival_bin_edges({1, 2, 3}, {1, 0, 0}),
                        "need at least 2 cases with an event");
}

TEST(SurvivalNll, MatchesHandWorkedValuesAtZeroLogits) {
  // h = 0.5 in every bin: S = .5, .25, .125, .0625 and S~ = 1, .5, .25, .125, .0625.
  const at::Tensor logits = at::zeros({1, 4});
  EXPECT_NEAR(survival_nll(logits, 1, /*censored=*/false).item<double>(),
              -(std::log(.5) + std::log(.5)), 1e-6);
  EXPECT_NEAR(survival_nll(logits, 1, /*censored=*/true).item<double>(), -std::log(.25), 1e-6);
  EXPECT_NEAR(survival_nll(logits, 0, /*censored=*/true).item<double>(), -std::log(.5), 1e-6);
  // alpha only reweights: censored bags have no uncensored term, so alpha 0.5 halves their loss.
  EXPECT_NEAR(survival_nll(logits, 1, true, 0.5).item<double>(), -0.5 * std::log(.25), 1e-6);
  EXPECT_NEAR(survival_risk(logits), -(0.5 + 0.25 + 0.125 + 0.0625), 1e-12);
}

TEST(SurvivalNll, PushesHazardUpAtTheEventBinAndDownBefore) {
  const at::Tensor logits = at::zeros({1, 4}).requires_grad_();
  survival_nll(logits, 2, false).backward();
  const at::Tensor g = logits.grad().squeeze(0);
  EXPECT_GT(g[0].item<double>(), 0);  // surviving bins 0 and 1 lowers their hazard
  EXPECT_GT(g[1].item<double>(), 0);
  EXPECT_LT(g[2].item<double>(), 0);  // the event bin raises it
  EXPECT_DOUBLE_EQ(g[3].item<double>(), 0);
}

TEST(SurvivalDataset, GroupsSlidesIntoCasesAndBinsTheirTimes) {
  testing::TempDir dir;
  SyntheticOptions o;
  o.task = "survival";
  o.bag_count = 40;
  o.feature_dim = 4;
  o.min_instances = 4;
  o.max_instances = 10;
  write_synthetic_benchmark(dir / "s", o);
  const BagDataset data = load_dataset(DatasetSpec{"s", "survival", dir / "s", 4, false});
  ASSERT_TRUE(data.survival);
  ASSERT_EQ(data.bags.size(), 40u) << "one bag per case, however many slides";
  EXPECT_GT(data.inputs.at("features").at("files").get<int>(), 40) << "some cases have two slides";
  ASSERT_EQ(data.bin_edges.size(), 5u);
  int events = 0;
  for (const Bag& b : data.bags) {
    EXPECT_GE(b.features.size(0), 4);
    EXPECT_LE(b.features.size(0), 10);
    EXPECT_EQ(b.label, survival_bin(b.event_time, data.bin_edges));
    events += !b.censored;
  }
  EXPECT_GT(events, 1);
}

TEST(SurvivalDataset, FailsNamingTheLineOfABadStatus) {
  testing::TempDir dir;
  SyntheticOptions o;
  o.task = "survival";
  o.bag_count = 6;
  o.feature_dim = 4;
  write_synthetic_benchmark(dir / "s", o);
  std::ofstream(dir / "s/survival.csv")
      << "Study,ID,Event,Status,WSI\nx,case_0000,3.5,2,case_0000_s0\n";
  MIL_EXPECT_THROW_WITH(load_dataset(DatasetSpec{"s", "survival", dir / "s", 4, false}),
                        "survival.csv:2: Status must be 0 or 1");
}

}  // namespace mil
