#pragma once
// Deterministic, leakage-free splits of a dataset's bags. Pure functions of (labels, seed): the
// same inputs give the same split on every machine, because the shuffle below does not depend on
// the standard library's distribution implementations.
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace mil {

/// Indices into a dataset's bag list. The three sets are disjoint, except under split protocol
/// "legacy" (mil/data/split_protocol.h), where val may be the test set as in the reference.
struct Split {
  std::vector<int> train;
  std::vector<int> val;  ///< Empty when no validation set was requested.
  std::vector<int> test;
};

/// Fisher-Yates shuffle driven by mt19937_64 with a plain modulo draw: portable and reproducible.
template <typename T>
void deterministic_shuffle(std::vector<T>& items, std::mt19937_64& rng) {
  for (std::size_t i = items.size(); i > 1; --i) {
    const std::size_t j = static_cast<std::size_t>(rng() % i);
    std::swap(items[i - 1], items[j]);
  }
}

/// Assigns every bag a fold in [0, fold_count): each class is shuffled with `seed` and dealt
/// round-robin, continuing the deal across classes, so fold sizes and per-class counts each differ
/// by at most one.
std::vector<int> stratified_fold_assignment(const std::vector<int>& labels, int fold_count,
                                            std::uint64_t seed);

/// stratified_fold_assignment over groups (patients): groups are dealt by their label and every bag
/// gets its group's fold, so no patient is in two folds. All bags of a group must share one label.
std::vector<int> stratified_group_fold_assignment(const std::vector<int>& labels,
                                                  const std::vector<std::string>& groups,
                                                  int fold_count, std::uint64_t seed);

/// Test = bags of `fold_index`; the rest train, except that floor(n_c * val_ratio) groups of each
/// class c (chosen with `seed`) are held out as validation, as the reference's label-balanced
/// carve-out. With no `groups`, every bag is its own group.
Split make_split(const std::vector<int>& labels, const std::vector<int>& fold_of_bag,
                 int fold_index, double val_ratio, std::uint64_t seed,
                 const std::vector<std::string>& groups = {});

}  // namespace mil
