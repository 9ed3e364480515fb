#include "mil/data/splits.h"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string>

namespace mil {

std::vector<int> stratified_fold_assignment(const std::vector<int>& labels, int fold_count,
                                            std::uint64_t seed) {
  if (fold_count < 2)
    throw std::invalid_argument("stratified_fold_assignment: fold_count must be >= 2");
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

namespace {

/// Groups in order of first appearance, each with its label and bags. Throws when a group mixes
/// labels.
struct Group {
  int label = 0;
  std::vector<int> bags;
};

std::vector<Group> group_bags(const std::vector<int>& labels,
                              const std::vector<std::string>& groups) {
  if (!groups.empty() && groups.size() != labels.size())
    throw std::invalid_argument("groups and labels differ in size");
  std::vector<Group> out;
  std::map<std::string, std::size_t> index;
  for (int i = 0; i < int(labels.size()); ++i) {
    if (groups.empty()) {
      out.push_back(Group{labels[i], {i}});
      continue;
    }
    auto [it, inserted] = index.emplace(groups[i], out.size());
    if (inserted) out.push_back(Group{labels[i], {}});
    Group& g = out[it->second];
    if (g.label != labels[i])
      throw std::invalid_argument("case '" + groups[i] + "' has bags with different labels");
    g.bags.push_back(i);
  }
  return out;
}

}  // namespace

std::vector<int> stratified_group_fold_assignment(const std::vector<int>& labels,
                                                  const std::vector<std::string>& groups,
                                                  int fold_count, std::uint64_t seed) {
  const std::vector<Group> grouped = group_bags(labels, groups);
  std::vector<int> group_labels;
  for (const Group& g : grouped) group_labels.push_back(g.label);
  const std::vector<int> fold_of_group = stratified_fold_assignment(group_labels, fold_count, seed);
  std::vector<int> fold_of_bag(labels.size(), -1);
  for (std::size_t g = 0; g < grouped.size(); ++g) {
    for (int bag : grouped[g].bags) fold_of_bag[bag] = fold_of_group[g];
  }
  return fold_of_bag;
}

Split make_split(const std::vector<int>& labels, const std::vector<int>& fold_of_bag,
                 int fold_index, double val_ratio, std::uint64_t seed,
                 const std::vector<std::string>& groups) {
  if (labels.size() != fold_of_bag.size())
    throw std::invalid_argument("make_split: labels and folds differ in size");
  if (!(val_ratio >= 0.0 && val_ratio < 1.0))
    throw std::invalid_argument("make_split: val_ratio must be in [0, 1)");
  Split split;
  std::map<int, std::vector<const Group*>> train_by_class;
  const std::vector<Group> grouped = group_bags(labels, groups);
  for (const Group& g : grouped) {
    const int fold = fold_of_bag[g.bags.front()];
    for (int bag : g.bags) {
      if (fold_of_bag[bag] != fold)
        throw std::invalid_argument("make_split: a case is split across folds");
    }
    if (fold == fold_index) {
      split.test.insert(split.test.end(), g.bags.begin(), g.bags.end());
    } else {
      train_by_class[g.label].push_back(&g);
    }
  }
  if (split.test.empty())
    throw std::invalid_argument("make_split: fold " + std::to_string(fold_index) + " is empty");
  // Distinct stream per fold so neighbouring folds do not hold out "the same" positions.
  std::mt19937_64 rng(seed * 1000003ULL + std::uint64_t(fold_index) + 1);
  for (auto& [label, members] : train_by_class) {
    deterministic_shuffle(members, rng);
    const auto held_out = static_cast<std::size_t>(double(members.size()) * val_ratio);
    for (std::size_t k = 0; k < members.size(); ++k) {
      auto& part = k < held_out ? split.val : split.train;
      part.insert(part.end(), members[k]->bags.begin(), members[k]->bags.end());
    }
  }
  std::sort(split.test.begin(), split.test.end());
  std::sort(split.train.begin(), split.train.end());
  std::sort(split.val.begin(), split.val.end());
  if (split.train.empty()) throw std::invalid_argument("make_split: no training bags left");
  return split;
}

}  // namespace mil
