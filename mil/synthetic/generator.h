#pragma once
// Synthetic WSI-like benchmarks with a planted signal: negative bags hold background instances
// only; positive bags also hold a few "witness" instances shifted along one hidden direction. A MIL
// model that finds the witnesses scores well above chance; pooling that averages them away does
// worse.
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

namespace mil {

/// How a synthetic benchmark is drawn. Every field is seeded, so the same options give identical
/// files.
struct SyntheticOptions {
  int bag_count = 120;                 ///< Bags (slides) to write.
  int feature_dim = 64;                ///< D of every instance.
  int min_instances = 20;              ///< Smallest bag.
  int max_instances = 200;             ///< Largest bag (uniform between the two).
  double positive_fraction = 0.5;      ///< Share of bags labelled 1.
  double witness_fraction_min = 0.05;  ///< Smallest share of witness instances in a positive bag.
  double witness_fraction_max =
      0.20;                      ///< Largest share (uniform between the two; at least one witness).
  double signal_strength = 3.0;  ///< Witness shift along the hidden unit direction, in noise stds.
  /// Hard and easy witnesses (the setting MHIM is built for, and on which the reference was also
  /// run): in a share easy_bag_fraction of the positive bags, easy_witnesses more instances (beyond
  /// the witnesses above, which are then the "hard" ones) are shifted by easy_signal along the same
  /// direction; the other positive bags hold only the hard ones. 0 easy witnesses (the default)
  /// draws exactly what earlier versions drew; the truth then calls every witness hard.
  int easy_witnesses = 0;
  double easy_signal = 8.0;        ///< Shift of an easy witness, in noise stds.
  double easy_bag_fraction = 0.5;  ///< Share of positive bags that also hold easy witnesses.
  std::uint64_t seed = 7;          ///< Seeds the direction, bag sizes, labels and noise.
  /// "classification": labels.csv with 0/1 labels. "survival": survival.csv in the reference
  /// layout; "positive" cases (with witnesses) have hazard_ratio times the event hazard
  /// (exponential times, base rate 0.01/month, censored uniformly in [0, 120] months), and about a
  /// third of the cases have their instances split over two slides.
  std::string task = "classification";
  double hazard_ratio = 10.0;  ///< Survival only: event hazard of positive over negative cases.
  /// "pt": pt_files/<slide>.pt with each slide's truth in the sidecar
  /// <slide>.instance_labels.csv; "h5": h5_files/<slide>.h5 (CLAM layout) with coords on a patch
  /// grid where witnesses form contiguous regions, and the truth as its `instance_labels`.
  std::string format = "pt";
  /// A held-out test set (classification only): this many more bags, test_0000.., drawn after the
  /// others from the same distribution except for test_easy_bag_fraction. 0 = none.
  int test_bag_count = 0;
  /// Share of the held-out test's positive bags that hold easy witnesses; negative = the same as
  /// easy_bag_fraction. Smaller values make the test's hard-only share larger than training's.
  double test_easy_bag_fraction = -1.0;
  /// With a held-out test: write splits/splits_{k}.csv (CLAM layout: columns train, val, test)
  /// for k < split_folds, the other bags cut into split_folds stratified folds (fold k validates,
  /// the rest train) and every fold testing on the held-out bags. 0 = no split files.
  int split_folds = 0;
  std::uint64_t split_seed = 2021;  ///< Seeds the folds of the split files.
};

/// The options as synthetic.json records them (every field above).
nlohmann::json synthetic_options_json(const SyntheticOptions& options);

/// Options from a JSON object with any of the fields above (e.g. a synthetic.json, whose
/// "generator" key is ignored); fields left out keep their defaults, unknown keys are errors.
SyntheticOptions synthetic_options_from_json(const nlohmann::json& j);

/// Writes <root>/labels.csv (`slide_id,label`) or <root>/survival.csv
/// (`Study,ID,Event,Status,WSI`), the features with their instance truth (see `format`),
/// <root>/synthetic.json (the options, for provenance) and <root>/dataset.json (the dataset entry a
/// sweep or `--dataset DIR` reads: kind, label file, classes, features). Creates `root`; overwrites
/// existing files. The same options give identical files, and .pt features do not depend on the
/// options added after them (format, held-out test, split files).
void write_synthetic_benchmark(const std::string& root, const SyntheticOptions& options);

}  // namespace mil
