#include "mil/splits.h"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>

namespace mil {

std::vector<int> stratified_fold_assignment(const std::vector<int>& labels, int fold_count, std::uint64_t seed) {
  if (fold_count < 2) throw std::invalid_argument("stratified_fold_assignment: fold_count must be >= 2");
  if (int(labels.size()) < fold_count) {
    throw std::invalid_argument("stratified_fold_assignment: " + std::to_string(labels.size()) +
                                " bags cannot fill " + std::to_string(fold_count) + " folds");
  }
  std::map<int, std::vector<int>> members_by_class;
  for (int i = 0; i < int(labels.size()); ++i) members_by_class[labels[i]].push_back(i);
  std::mt19937_64 rng(seed);
  std::vector<int> fold_of_bag(labels.size(), -1);
  int deal = 0;
  for (auto& [label, members] : members_by_class) {
    deterministic_shuffle(members, rng);
    for (int bag : members) fold_of_bag[bag] = deal++ % fold_count;
  }
  return fold_of_bag;
}

Split make_split(const std::vector<int>& labels, const std::vector<int>& fold_of_bag, int fold_index,
                 double val_ratio, std::uint64_t seed) {
  if (labels.size() != fold_of_bag.size()) throw std::invalid_argument("make_split: labels and folds differ in size");
  if (!(val_ratio >= 0.0 && val_ratio < 1.0)) throw std::invalid_argument("make_split: val_ratio must be in [0, 1)");
  Split split;
  std::map<int, std::vector<int>> train_by_class;
  for (int i = 0; i < int(labels.size()); ++i) {
    if (fold_of_bag[i] == fold_index) {
      split.test.push_back(i);
    } else {
      train_by_class[labels[i]].push_back(i);
    }
  }
  if (split.test.empty()) throw std::invalid_argument("make_split: fold " + std::to_string(fold_index) + " is empty");
  // Distinct stream per fold so neighbouring folds do not hold out "the same" positions.
  std::mt19937_64 rng(seed * 1000003ULL + std::uint64_t(fold_index) + 1);
  for (auto& [label, members] : train_by_class) {
    deterministic_shuffle(members, rng);
    const auto held_out = static_cast<std::size_t>(double(members.size()) * val_ratio);
    split.val.insert(split.val.end(), members.begin(), members.begin() + held_out);
    split.train.insert(split.train.end(), members.begin() + held_out, members.end());
  }
  std::sort(split.train.begin(), split.train.end());
  std::sort(split.val.begin(), split.val.end());
  if (split.train.empty()) throw std::invalid_argument("make_split: no training bags left");
  return split;
}

}  // namespace mil
