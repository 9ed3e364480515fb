#pragma once
// Summarises a results directory: one row per configuration (mean ± std over folds x seeds of the
// worker's metrics), plus the jobs of the sweep that have no ok result yet.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mil/specs.h"

namespace mil::orch {

/// Mean and population standard deviation (ddof 0, as the reference reports) of one metric.
struct MetricSummary {
  double mean = 0;  ///< Arithmetic mean over the runs that reported the metric.
  double std = 0;   ///< sqrt(sum((x - mean)^2) / count).
  int count = 0;    ///< Runs that reported the metric.
};

/// One configuration (grid point) of one model on one dataset.
struct LeaderboardRow {
  std::string dataset;    ///< Dataset name.
  std::string model;      ///< Model name.
  std::string config_id;  ///< JobSpec::config_id() shared by the row's runs.
  /// The settings that tell this config from its siblings (same dataset + model), e.g.
  /// "train.lr=0.0001"; empty when it has none.
  std::string config_label;
  int runs = 0;                               ///< Ok results (folds x replicates).
  int replicates = 0;                         ///< Distinct JobSpec::replicate_key() among the runs.
  std::map<std::string, MetricSummary> test;  ///< result.metrics["test"] summarised per key.
  std::map<std::string, MetricSummary> val;   ///< result.metrics["val"] summarised per key.
  /// Per key: each replicate's mean over its folds, summarised across replicates (the published
  /// "5 x 10-fold CV" convention: mean ± std of the 5 repetition means).
  std::map<std::string, MetricSummary> test_replicate_means;
};

/// An expected job (or a failed one) without an ok result.
struct MissingJob {
  std::string job_id;      ///< JobSpec::id().
  std::string dataset;     ///< Dataset name.
  std::string model;       ///< Model name.
  std::string status;      ///< "failed" or "not run".
  std::string error;       ///< The failure message; empty when not run.
  int fold_index = 0;      ///< Test fold.
  std::uint64_t seed = 0;  ///< Job seed.
};

/// Everything the leaderboard files show.
struct Leaderboard {
  std::vector<LeaderboardRow> rows;  ///< By dataset, then test AUC mean descending.
  std::vector<MissingJob> missing;   ///< Manifest order, then unexpected failures by job id.
};

/// Groups ok results by config_id into rows and lists `expected` jobs without an ok result
/// (plus failed results that `expected` does not list).
Leaderboard build_leaderboard(const std::vector<JobResult>& results,
                              const std::vector<JobSpec>& expected);

/// A Markdown report: `title`, one table per dataset, a note on the statistics, then "Missing".
std::string to_markdown(const Leaderboard& board, const std::string& title);

/// Reads a results dir (ResultsStore layout), writes <dir>/leaderboard.md and
/// <dir>/leaderboard.json, and returns the .md path. Throws when the directory does not exist.
std::string write_leaderboard(const std::string& results_dir);

/// JSON forms of the above, as written to leaderboard.json.
void to_json(nlohmann::json& j, const MetricSummary& s);
void to_json(nlohmann::json& j, const LeaderboardRow& r);
void to_json(nlohmann::json& j, const MissingJob& m);
void to_json(nlohmann::json& j, const Leaderboard& b);

}  // namespace mil::orch
