#include "mil/splits.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

namespace mil {
namespace {
std::vector<int> labels_with(int zeros, int ones) {
  std::vector<int> labels(zeros, 0);
  labels.insert(labels.end(), ones, 1);
  return labels;
}
}  // namespace

TEST(StratifiedFolds, BalanceFoldSizesAndClassesWithinOne) {
  const auto labels = labels_with(23, 14);
  const auto folds = stratified_fold_assignment(labels, 5, 2021);
  std::map<int, int> size;
  std::map<std::pair<int, int>, int> per_class;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    ASSERT_GE(folds[i], 0);
    ASSERT_LT(folds[i], 5);
    ++size[folds[i]];
    ++per_class[{folds[i], labels[i]}];
  }
  for (int f = 0; f < 5; ++f) {
    EXPECT_TRUE(size[f] == 7 || size[f] == 8) << "fold " << f << " has " << size[f];  // 37 = 7*5 + 2
    const int zeros = per_class[{f, 0}], ones = per_class[{f, 1}];
    EXPECT_TRUE(zeros == 4 || zeros == 5);                  // 23 = 4*5 + 3
    EXPECT_TRUE(ones == 2 || ones == 3);                     // 14 = 2*5 + 4
  }
}

TEST(StratifiedFolds, AreAPureFunctionOfLabelsAndSeed) {
  const auto labels = labels_with(30, 30);
  EXPECT_EQ(stratified_fold_assignment(labels, 5, 1), stratified_fold_assignment(labels, 5, 1));
  EXPECT_NE(stratified_fold_assignment(labels, 5, 1), stratified_fold_assignment(labels, 5, 2));
}

TEST(MakeSplit, PartitionsBagsWithTestExactlyTheFold) {
  const auto labels = labels_with(20, 20);
  const auto folds = stratified_fold_assignment(labels, 4, 9);
  const Split s = make_split(labels, folds, 2, 0.25, 9);
  std::vector<int> all = s.train;
  all.insert(all.end(), s.val.begin(), s.val.end());
  all.insert(all.end(), s.test.begin(), s.test.end());
  std::sort(all.begin(), all.end());
  std::vector<int> expected(40);
  for (int i = 0; i < 40; ++i) expected[i] = i;
  EXPECT_EQ(all, expected);  // disjoint and complete
  for (int t : s.test) EXPECT_EQ(folds[t], 2);
  // 30 training bags, 15 per class: floor(15 * 0.25) = 3 per class held out.
  EXPECT_EQ(s.val.size(), 6u);
  EXPECT_EQ(std::count_if(s.val.begin(), s.val.end(), [&](int i) { return labels[i] == 1; }), 3);
}

TEST(MakeSplit, HasNoValidationWhenRatioIsZero) {
  const auto labels = labels_with(10, 10);
  const Split s = make_split(labels, stratified_fold_assignment(labels, 5, 3), 0, 0.0, 3);
  EXPECT_TRUE(s.val.empty());
  EXPECT_EQ(s.train.size() + s.test.size(), 20u);
}

}  // namespace mil
