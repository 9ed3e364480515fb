// MHIM's mask_stats: what the teacher's masks take from the witnesses, checked against counts and
// AUCs worked out by hand.
#include <map>
#include <string>
#include <vector>

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "mil/mhim/mhim_objective.h"

namespace mil {
namespace {

at::Tensor bytes(const std::vector<int>& v) {
  at::Tensor t = at::empty({int64_t(v.size())}, at::kByte);
  for (std::size_t i = 0; i < v.size(); ++i) t[int64_t(i)] = v[i];
  return t;
}

at::Tensor doubles(const std::vector<double>& v) {
  return at::tensor(v, at::TensorOptions().dtype(at::kDouble));
}

TEST(MaskTruthStats, CountWhatTheMaskTookFromTheWitnesses) {
  MaskTruthStats stats;
  // Two hard witnesses (one masked) and one easy (masked) beside three background instances.
  stats.add(bytes({1, 1, 0, 0, 2, 0}), doubles({0.9, 0.1, 0.2, 0.3, 0.95, 0.4}), {0, 4});
  // A hard-only bag whose only witness is masked: the student sees no evidence in it.
  stats.add(bytes({1, 0, 0}), doubles({0.8, 0.1, 0.2}), {0});
  // A negative bag counts nowhere.
  stats.add(bytes({0, 0}), doubles({0.5, 0.6}), {1});
  const std::map<std::string, double> m = stats.means();
  EXPECT_DOUBLE_EQ(m.at("mask_hard_share"), 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(m.at("mask_hard_share_hard_only"), 1.0);
  EXPECT_DOUBLE_EQ(m.at("mask_easy_share"), 1.0);
  EXPECT_DOUBLE_EQ(m.at("mask_witness_precision"), 1.0);
  EXPECT_DOUBLE_EQ(m.at("mask_hard_only_bags_emptied"), 1.0);
  // Bag 1: hard {0.9, 0.1} over {0.2, 0.3, 0.4}: 3 of 6 pairs; bag 2: 0.8 over {0.1, 0.2}: 1.
  EXPECT_DOUBLE_EQ(m.at("teacher_auc_hard"), 0.75);
  EXPECT_DOUBLE_EQ(m.at("teacher_auc_easy"), 1.0);
  EXPECT_TRUE(MaskTruthStats{}.means().empty());
}

TEST(MhimOptions, MaskStatsIsAnOptionOffByDefault) {
  EXPECT_FALSE(mhim_options_from_json(nlohmann::json::object()).mask_stats);
  EXPECT_TRUE(mhim_options_from_json({{"mask_stats", true}}).mask_stats);
}

}  // namespace
}  // namespace mil
