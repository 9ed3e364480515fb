#pragma once
// Synthetic stand-ins for the 12 benchmarks of MHIM-MIL v2 (our reading of the paper's "12
// benchmarks": 6 tasks x 2 encoders), in the real on-disk layout: pt_files/ (or h5_files/) named
// like the real slides, and the reference's label CSVs. Counts follow those CSVs
// (datasets/dataset_csv/: CAMELYON16 398 slides 239/159, TCGA-NSCLC 956 cases 478/478,
// BLCA/LUAD/LUSC survival cohorts with their event counts; BRCA about 1000 cases, 80/20 IDC/ILC);
// instance counts are log-normal around the reference's means (CAMELYON ~9,000).
//
// The signal is planted and learnable: positive (label 1) bags hold a few rare, weak "hard"
// instances, and most also hold a share of strong "easy" ones; subtypes shift their tumour
// instances along a class direction; survival cases have a latent risk that sets both their hazard
// and the share of "aggressive" instances. Every slide also gets a random offset in a shared
// 8-dimensional subspace (a low-rank stain/scanner/site batch effect). The two encoders see the
// same slides (same ids, labels, sizes and instance roles) through different features: "uni" has
// stronger signal and smaller slide offsets than "r50". Seeded per slide, so files are
// byte-identical across runs and machines.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mil {

/// How a stand-in is written.
struct StandInOptions {
  double scale = 1.0;  ///< Multiplies bag and instance counts (0.05 for tests and quick looks).
  std::uint64_t seed = 2024;  ///< Same seed and options => byte-identical files.
  int feature_dim =
      1024;  ///< D (1024 for both encoders, as the released features; smaller only for tests).
  std::string format = "pt";  ///< "pt": pt_files/<slide>.pt; "h5": h5_files/<slide>.h5 with coords.
};

/// The 12 names: {camelyon, tcga-nsclc, tcga-brca, tcga-blca-surv, tcga-luad-surv, tcga-lusc-surv}
/// x {r50, uni}, e.g. "camelyon-r50", "tcga-lusc-surv-uni".
std::vector<std::string> benchmark_stand_in_names();

/// What write_benchmark_stand_in would write, without writing: {"counts": {"bags", "slides",
/// "positives" (label 1, or events), "instances", "feature_bytes"}, "cases": [{"id", "label",
/// "risk", "time", "slides": [{"id", "instances"}]}]} (risk and time for survival only).
nlohmann::json plan_benchmark_stand_in(const std::string& name, const StandInOptions& options);

/// Writes stand-in `name` into `root` (created; existing files are overwritten): the feature files
/// with each instance's truth beside them (mil/data/instance_labels.h: a .pt's sidecar, or an .h5's
/// `instance_labels`, whose coords put each kind of instance in contiguous regions), the reference
/// label CSV, truth.json (per slide: label, easy/hard instance counts, survival risk),
/// synthetic.json (options and profile) and dataset.json, the sweep dataset entry that trains on
/// it, which is also returned. Throws std::invalid_argument for an unknown name or bad options.
nlohmann::json write_benchmark_stand_in(const std::string& name, const std::string& root,
                                        const StandInOptions& options);

}  // namespace mil
