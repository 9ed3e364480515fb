#pragma once
// A benchmark's bags in memory, plus the hashes of every input that produced them.
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>
#include <nlohmann/json.hpp>

#include "mil/core/specs.h"

namespace mil {

/// One slide: its instances' features and its label.
struct Bag {
  std::string slide_id;  ///< Slide id, or the case id for survival bags (all of a case's slides).
  at::Tensor features;   ///< [N, D] float32, contiguous.
  int label = 0;         ///< Class in [0, class_count); for survival, the event-time bin.
  double event_time = 0.0;  ///< Survival only: time to event or censoring.
  bool censored = false;    ///< Survival only: no event observed by event_time.
  std::string case_id;  ///< Patient/case the slide belongs to; splits never separate a case's bags.
  at::Tensor coords;    ///< [N, 2] patch coordinates from .h5 files; undefined otherwise.
  /// [N] uint8 instance truth (mil/data/instance_labels.h: which instances are hard or easy
  /// witnesses); undefined when the dataset has none.
  at::Tensor instance_labels;
};

/// All bags of one dataset, in label-file order.
struct BagDataset {
  std::vector<Bag> bags;
  int class_count = 2;            ///< Classes, or time bins for survival.
  bool survival = false;          ///< Bags carry event_time/censored and label = time bin.
  std::vector<double> bin_edges;  ///< Survival only: the class_count + 1 time-bin edges.
  int feature_dim = 0;
  /// For datasets that ship folds (kind "musk"): the test fold of each bag in the requested
  /// repetition.
  std::vector<int> file_fold_of_bag;
  int file_fold_count = 0;
  /// Content hashes: {"labels": {"path", "sha256"}, "features": {"files", "bytes", "sha256"}, ...}.
  nlohmann::json inputs = nlohmann::json::object();

  /// Label of every bag, in order.
  std::vector<int> labels() const;
  /// Case of every bag (the slide id when no case is known), in order: the unit splits keep
  /// together.
  std::vector<std::string> groups() const;
};

/// Loads a dataset. kind "bags": a label CSV (spec.labels, default <root>/labels.csv) in any
/// reference layout, one bag per slide from <root>/pt_files/*.pt or <root>/h5_files/*.h5, found by
/// exact id or, with slide_match "substring", every file whose name contains the id (one bag per
/// slide, all of the row's case). Missing files are reported all at once. kind "musk": <root>.csv
/// and <root>_folds_5x10.csv (repetition `repetition`) as in shared/data/mil-classic. kind
/// "survival": <root>/survival.csv in the reference layout `Study,ID,Event,Status,WSI` (one row per
/// slide; rows of one case ID form one bag of all its slides' <root>/pt_files/<WSI>.pt; Status 1 =
/// event), with times cut into class_count bins (survival_bin_edges) over the whole cohort.
/// Errors name the file and line.
BagDataset load_dataset(const DatasetSpec& spec, int repetition = 0);

/// Per-feature mean and std over every instance of `indices`' bags (std floored at 1e-6 for
/// constant columns), applied to all bags; returns a standardised copy. Statistics come from
/// training bags only.
std::vector<Bag> standardize_with(const std::vector<Bag>& bags,
                                  const std::vector<int>& statistics_indices);

}  // namespace mil
