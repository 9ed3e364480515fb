#pragma once
// Instance-level truth beside a slide's features: which instances are witnesses of the slide's
// label. Synthetic benchmarks (`mhim synth`) write it; real feature sets usually have none, and
// everything that reads it treats its absence as "no truth" (an undefined tensor).
//
// Where it lives:
//  - in a CLAM-layout .h5: a dataset `instance_labels` of N unsigned 8-bit codes, row i for
//    feature row i (and coords row i);
//  - beside a .pt feature file <dir>/<slide>.pt: the sidecar <dir>/<slide>.instance_labels.csv,
//    a header line `instance_label` and then one code per line, N lines in feature-row order
//    (Python: numpy.loadtxt(path, skiprows=1, dtype=int)).
#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

namespace mil {

/// What an instance is. Codes 1 and 2 are witnesses: instances that make their slide positive
/// (label 1); the other codes are not, whatever tissue they stand for.
enum InstanceRole : std::uint8_t {
  kRoleBackground = 0,   ///< Not a witness.
  kRoleHardWitness = 1,  ///< A weak witness: close to background, easy to miss.
  kRoleEasyWitness = 2,  ///< A strong, salient witness.
  kRoleTumour = 3,       ///< Tumour of either class (subtyping, survival stand-ins): not a witness.
  kRoleAggressive = 4,   ///< Survival stand-ins: tumour whose share grows with risk.
};

/// True for the witness codes (hard or easy).
inline bool is_witness(std::uint8_t code) {
  return code == kRoleHardWitness || code == kRoleEasyWitness;
}

/// Name of the .h5 dataset that holds the codes.
inline constexpr const char* kInstanceLabelsDataset = "instance_labels";
/// Suffix that replaces ".pt" in the name of a .pt file's sidecar.
inline constexpr const char* kInstanceLabelsSidecarSuffix = ".instance_labels.csv";

/// "<dir>/<stem>.instance_labels.csv" for the feature file "<dir>/<stem>.pt".
std::string instance_labels_sidecar_path(const std::string& feature_path);

/// The codes of the slide whose features are in `feature_path` (.pt: its sidecar; .h5: the
/// `instance_labels` dataset), as a uint8 tensor [N]; undefined when the slide has none. Throws
/// FeatureFileError (bad content) naming the file when there are not exactly `instances` codes or
/// a code is not one of InstanceRole.
at::Tensor read_instance_labels(const std::string& feature_path, int64_t instances);

/// Writes `codes` [N] (any integer type) as the truth of the feature file `feature_path`: the
/// sidecar of a .pt file, or the `instance_labels` dataset added to an existing .h5 file (replaced
/// when present). Same codes give byte-identical files.
void write_instance_labels(const std::string& feature_path, const at::Tensor& codes);

/// Counts of each code in `codes` (undefined: all zero), indexed by InstanceRole.
std::vector<int64_t> count_roles(const at::Tensor& codes);

}  // namespace mil
