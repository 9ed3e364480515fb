#pragma once
// Synthetic WSI-like benchmarks with a planted signal: negative bags hold background instances
// only; positive bags also hold a few "witness" instances shifted along one hidden direction. A MIL
// model that finds the witnesses scores well above chance; pooling that averages them away does
// worse.
#include <cstdint>
#include <string>

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
  /// draws exactly what earlier versions drew.
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
};

/// Writes <root>/labels.csv (`slide_id,label`) or <root>/survival.csv
/// (`Study,ID,Event,Status,WSI`), <root>/pt_files/<slide_id>.pt (torch.save format) and
/// <root>/synthetic.json (the options, for provenance). Creates `root`; overwrites existing files.
void write_synthetic_benchmark(const std::string& root, const SyntheticOptions& options);

}  // namespace mil
