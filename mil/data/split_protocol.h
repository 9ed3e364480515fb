#pragma once
// One job's train/validation/test bags under each split protocol, the guardrails that keep test
// data out of training and model selection, and the record of the split that every job keeps.
//
//   kfold   stratified group K-fold from split_seed; validation carved from the training folds.
//   file    the dataset's own fold file (MUSK), or split.dir's CLAM splits_{k}.csv / reference
//           fold_{k}.csv; validation from the file, else carved from train when val_ratio > 0.
//   legacy  the reference's protocol (datasets/dataloader.py): kfold folds (or split.dir's files)
//           with validation := test when no validation is given, so early stopping and model
//           selection see the test fold. Results carry protocol flags.
//
// Outside legacy, a split where validation equals test, a bag in two parts, or a case (patient)
// with bags in two parts is refused.
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "mil/core/specs.h"
#include "mil/data/bag_dataset.h"
#include "mil/data/splits.h"

namespace mil {

/// The parts one split file assigns for one test fold.
struct SplitFile {
  std::string path;
  std::vector<std::pair<std::string, std::string>>
      entries;  ///< (id, "train" | "val" | "test"), file order.
};

/// Reads `dir`/splits_{fold_index}.csv (CLAM: columns train, val, test holding ids, ragged; an
/// unnamed index column is ignored) or `dir`/fold_{fold_index}.csv (reference: a Split column of
/// train/val/test beside an ID column, with a header, or headerless ID,Label,Split /
/// Case,ID,Label,Split). Errors name the file and line.
SplitFile read_split_file(const std::string& dir, int fold_index);

/// A job's split, ready to train on, and what the job records about it.
struct ResolvedSplit {
  Split split;  ///< Bag indices. Only legacy may have val == test.
  std::vector<std::string>
      flags;  ///< For the result's metrics.protocol_flags: "val_equals_test", "case_in_two_parts".
  /// {"protocol", "fold_index", "fold_count", "source", "train", "val", "test" (slide ids, in bag
  /// order), "unassigned" (bags a split file leaves out), "flags"}; written to the job's work dir
  /// as split.json.
  nlohmann::json record;
  std::string sha256;  ///< SHA-256 of {"test", "train", "val"} ids only: equal splits hash equal.
  nlohmann::json split_file;  ///< {"path", "sha256"} of the split file read, or null.
};

/// Resolves `split` for `data` (loaded from `dataset`); throws naming the protocol, file or case at
/// fault.
ResolvedSplit resolve_split(const BagDataset& data, const DatasetSpec& dataset,
                            const SplitSpec& split);

}  // namespace mil
