#include "mil/data/splits.h"

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
    EXPECT_TRUE(size[f] == 7 || size[f] == 8)
        << "fold " << f << " has " << size[f];  // 37 = 7*5 + 2
    const int zeros = per_class[{f, 0}], ones = per_class[{f, 1}];
    EXPECT_TRUE(zeros == 4 || zeros == 5);  // 23 = 4*5 + 3
    EXPECT_TRUE(ones == 2 || ones == 3);    // 14 = 2*5 + 4
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

namespace mil {

TEST(GroupFolds, KeepEveryCaseInOneFoldAndBalanceCasesPerClass) {
  // 12 cases, 2 or 3 slides each: cases c0..c5 are class 0, c6..c11 class 1.
  std::vector<int> labels;
  std::vector<std::string> groups;
  for (int c = 0; c < 12; ++c) {
    for (int slide = 0; slide < 2 + c % 2; ++slide) {
      labels.push_back(c < 6 ? 0 : 1);
      groups.push_back("c" + std::to_string(c));
    }
  }
  const auto folds = stratified_group_fold_assignment(labels, groups, 3, 11);
  std::map<std::string, std::set<int>> folds_of_case;
  std::map<std::pair<int, int>, std::set<std::string>> cases_per_fold_class;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    folds_of_case[groups[i]].insert(folds[i]);
    cases_per_fold_class[{folds[i], labels[i]}].insert(groups[i]);
  }
  for (const auto& [c, f] : folds_of_case)
    EXPECT_EQ(f.size(), 1u) << "case " << c << " is in two folds";
  for (int f = 0; f < 3; ++f) {
    const std::size_t zeros = cases_per_fold_class[{f, 0}].size(),
                      ones = cases_per_fold_class[{f, 1}].size();
    EXPECT_EQ(zeros, 2u);  // 6 cases of each class over 3 folds
    EXPECT_EQ(ones, 2u);
  }
  EXPECT_EQ(folds, stratified_group_fold_assignment(labels, groups, 3, 11));
}

TEST(GroupFolds, RefuseACaseWithTwoLabels) {
  EXPECT_THROW(stratified_group_fold_assignment({0, 1, 0, 1}, {"a", "a", "b", "c"}, 2, 1),
               std::invalid_argument);
}

TEST(MakeSplit, HoldsOutWholeCasesForValidation) {
  std::vector<int> labels;
  std::vector<std::string> groups;
  for (int c = 0; c < 20; ++c) {
    for (int slide = 0; slide < 3; ++slide) {
      labels.push_back(c % 2);
      groups.push_back("case" + std::to_string(c));
    }
  }
  const auto folds = stratified_group_fold_assignment(labels, groups, 4, 2);
  const Split s = make_split(labels, folds, 1, 0.25, 2, groups);
  const auto cases_of = [&](const std::vector<int>& bags) {
    std::set<std::string> out;
    for (int b : bags) out.insert(groups[b]);
    return out;
  };
  const auto train = cases_of(s.train), val = cases_of(s.val), test = cases_of(s.test);
  for (const auto& c : val)
    EXPECT_EQ(train.count(c) + test.count(c), 0u) << c << " leaks out of validation";
  for (const auto& c : test) EXPECT_EQ(train.count(c), 0u) << c << " leaks out of test";
  // 15 training cases: 7 or 8 per class -> floor(n * 0.25) = 1 or 2 cases each, 3 slides per case.
  EXPECT_EQ(s.val.size() % 3, 0u);
  EXPECT_EQ(s.train.size() + s.val.size() + s.test.size(), 60u);
}

}  // namespace mil
