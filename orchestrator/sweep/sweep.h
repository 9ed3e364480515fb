#pragma once
// A sweep file names datasets, models, a hyper-parameter grid, seeds and folds; expand() turns it
// into the flat, deterministic list of jobs the scheduler hands out. The file format is documented
// in sweeps/README.md.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mil/core/specs.h"
#include "orchestrator/schedule/pruning.h"
#include "orchestrator/sweep/file.h"

namespace mil::orch {

/// A parsed sweep file: datasets x models x swept points (grid x zip x random) x seeds x folds.
struct SweepSpec {
  std::string name;                   ///< Sweep name (required, non-empty).
  std::vector<DatasetSpec> datasets;  ///< >= 1, unique names.
  std::vector<ModelSpec> models;      ///< >= 1.
  /// Parallel to `models`: each model's own grid (the `grid` key of its entry; null when absent),
  /// crossed with the sweep's axes for that model only, e.g. MHIM's mask/merge grid beside a
  /// baseline.
  std::vector<nlohmann::json> model_grids;
  /// Parallel to `models`: the `ranks` key of each model's entry (train.ranks for its jobs: workers
  /// per data-parallel job), or 0 when absent (the sweep's train.ranks, default 1).
  std::vector<int> model_ranks;
  TrainSpec train;  ///< Base optimisation settings.
  SplitSpec split;  ///< Base split; its fold_index is ignored (folds come from `folds`).
  /// Dotted JobSpec path -> non-empty array of values, e.g. {"train.lr": [1e-4, 2e-4]}; cartesian
  /// product.
  nlohmann::json grid = nlohmann::json::object();
  /// Keys varied together: an object of equal-length lists, or an array of such groups; null =
  /// none.
  nlohmann::json zip;
  /// Seeded random search: {"samples": n, "seed": s, "space": {key: distribution}}; null = none.
  nlohmann::json random;
  std::vector<std::uint64_t> seeds{2021};  ///< >= 1, unique.
  std::vector<int> folds;  ///< Test folds to run, unique; empty = 0..split.fold_count-1.
  /// Worker ranks that share one GPU (`mhim sweep --jobs-per-gpu` overrides it); 0 = unset (1).
  /// Where jobs run, never what they compute: not part of any job id.
  int jobs_per_gpu = 0;
  /// Successive halving of each (dataset, method)'s grid points on validation (`prune`); off when
  /// absent. It decides which jobs run, never what a job computes, so job ids do not depend on it.
  PruneSpec prune;
};

/// Parses and validates a sweep JSON object; every error message starts with `source` (the file
/// path), followed by ":<line>" when `lines` knows where the offending key is.
SweepSpec parse_sweep(const nlohmann::json& j, const std::string& source,
                      const SourceLines& lines = {});

/// Reads the sweep file at `path` (YAML for .yaml/.yml, else JSON), applies each "key.path=value"
/// override in order, then parses it.
SweepSpec load_sweep(const std::string& path, const std::vector<std::string>& overrides = {});

/// Sets the value at a dotted key in `sweep_json`; an array segment selects the element with that
/// "name" (or, when no name matches, that decimal index); "grid.<rest>", "zip.<rest>" and
/// "random.space.<rest>" set swept key <rest> whole.
/// The value is JSON when it parses, else a string. Throws naming the assignment and the key.
void apply_override(nlohmann::json& sweep_json, const std::string& assignment);

/// All jobs in a fixed order: datasets x models x swept points (grid keys sorted, then zip groups,
/// then random samples; the last varying fastest) x seeds x folds. Throws SweepError when a swept
/// value is invalid (naming its key) or two jobs resolve to the same id.
std::vector<JobSpec> expand(const SweepSpec& sweep);

}  // namespace mil::orch
