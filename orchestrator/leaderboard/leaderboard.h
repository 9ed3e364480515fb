#pragma once
// Summarises a results directory so that its numbers can be trusted:
//  - per benchmark and method, the grid point (configuration) with the best mean *validation*
//    selection metric is chosen, and only its test metrics are reported (test never selects);
//  - per cell, mean ± population std over fold-runs and a seeded bootstrap 95% interval of
//    the mean;
//  - per benchmark, paired differences against a baseline method with the corrected resampled
//    t-test and the Wilcoxon signed-rank test;
//  - across benchmarks, average ranks and the Nemenyi critical difference;
//  - rows from flagged protocols are marked; missing, failed and quarantined jobs are listed;
//  - grid points that successive halving stopped (journal "pruned") are listed with their partial
//    validation results only, and are never selected, compared or ranked.
// Statistics live in stats.h; Markdown, CSV and HTML in report.h.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "mil/core/specs.h"

namespace mil::orch {

/// One metric over the fold-runs of a configuration.
struct MetricSummary {
  double mean = 0;  ///< Arithmetic mean over the runs that reported the metric.
  double std =
      0;  ///< Population std (ddof 0, as the reference reports): sqrt(sum((x - mean)^2) / count).
  int count = 0;  ///< Runs that reported the metric.
  double ci_low =
      0;  ///< Bootstrap 95% interval of the mean (2,000 resamples, seeded by the config id).
  double ci_high = 0;  ///< Upper end of that interval.
};

/// One configuration (grid point) of one method on one benchmark.
struct LeaderboardRow {
  std::string dataset;    ///< Benchmark (dataset name).
  std::string model;      ///< Model name.
  std::string method;     ///< spec.model.method, or the model name when unset.
  std::string config_id;  ///< JobSpec::config_id() shared by the row's runs.
  /// The settings that tell this config from its siblings (same benchmark + method), e.g.
  /// "train.lr=0.0001"; empty when it has none.
  std::string config_label;
  int runs = 0;           ///< Ok results (folds x replicates).
  int expected_runs = 0;  ///< Jobs of this config in the sweep manifest; 0 when there is none.
  int replicates = 0;     ///< Distinct JobSpec::replicate_key() among the runs.
  std::string
      metric;  ///< The benchmark's selection metric ("auc", "balanced_accuracy", "c_index").
  MetricSummary val_selection;                ///< metrics.val[metric] over the runs that have it.
  std::map<std::string, MetricSummary> test;  ///< result.metrics["test"] summarised per key.
  std::map<std::string, MetricSummary> val;   ///< result.metrics["val"] summarised per key.
  /// Per key: each replicate's mean over its folds, summarised across replicates (the published
  /// "5 x 10-fold CV" convention: mean ± std of the 5 repetition means).
  std::map<std::string, MetricSummary> test_replicate_means;
  /// test[metric] per run, keyed "<replicate key>|fold=<k>": what paired tests match on.
  std::map<std::string, double> test_by_run;
  /// n_test / n_train per run (metrics.test.bags / metrics.train.bags), same keys; absent when
  /// unrecorded.
  std::map<std::string, double> test_train_ratio_by_run;
  int fold_count = 0;               ///< split.fold_count of the runs.
  std::vector<double> val_curve;    ///< Per epoch: mean over runs of history[e].val[metric].
  std::vector<int> val_curve_runs;  ///< Per epoch: runs that reported it.
  std::vector<std::string> protocol_flags;  ///< Union over runs, e.g. "val_equals_test".
  /// result.metrics["test_truth"] (instance truth: instance_auc, instance_auc_hard,
  /// instance_auc_easy, auc_hard_only) summarised per key; empty for datasets without truth.
  std::map<std::string, MetricSummary> truth;
  /// Per truth key, its value per run, keyed as test_by_run: what its paired tests match on.
  std::map<std::string, std::map<std::string, double>> truth_by_run;
  bool selectable = false;     ///< Its validation metric can rank it against its siblings.
  std::string not_selectable;  ///< Why not, e.g. "no validation: grid point not selectable".
  /// Halving stopped it before its last fold (schedule/pruning.h): its runs are partial, so it is
  /// never selectable and its test metrics are left out (they would compare fewer folds than its
  /// siblings').
  bool pruned = false;
  bool selected = false;  ///< The pick of its method on its benchmark.
  std::string selection;  ///< How it was picked: "best validation auc of 4", "only grid point".
};

/// A method against the baseline on the (replicate, fold) pairs both ran.
struct Comparison {
  int pairs = 0;                  ///< Shared fold-runs.
  double mean_difference = 0;     ///< mean(method - baseline) of the test metric.
  double test_train_ratio = 0;    ///< n_test / n_train used by the t-test.
  std::string ratio_source;       ///< "split sizes" or "1/(k-1)".
  double t = 0;                   ///< Corrected resampled t statistic.
  double t_p = 0;                 ///< Its two-sided p-value (NaN when pairs < 2).
  double wilcoxon_statistic = 0;  ///< min(W+, W-).
  double wilcoxon_p = 0;          ///< Two-sided p-value (NaN when every difference is 0).
  std::string wilcoxon_method;    ///< "exact", "normal" or "none".
};

/// One method on one benchmark: its selected row (if any) and how it compares with the baseline.
struct MethodResult {
  std::string method;        ///< Method label.
  int row = -1;              ///< Index into Leaderboard::rows of the selected config; -1 = none.
  std::string note;          ///< Why there is none (e.g. no validation with several grid points).
  bool is_baseline = false;  ///< This is the benchmark's baseline method.
  bool compared = false;  ///< `comparison` is filled (both have a selected row, >= 1 shared pair).
  Comparison comparison;  ///< Against the baseline.
  /// Per instance-truth metric both rows report: the same paired tests on that metric.
  std::map<std::string, Comparison> truth_comparisons;
};

/// Everything about one benchmark.
struct BenchmarkResult {
  std::string dataset;                ///< Benchmark name.
  std::string metric;                 ///< Selection (and headline test) metric.
  std::string baseline;               ///< Baseline method ("" when it has no selected row here).
  std::vector<MethodResult> methods;  ///< Selected rows by test metric descending, then the rest.
};

/// Average ranks across the benchmarks where every ranked method has a selected row.
struct RankSummary {
  std::vector<std::string> methods;     ///< Best average rank first.
  std::vector<double> average_ranks;    ///< Parallel to methods.
  std::vector<std::string> benchmarks;  ///< The benchmarks ranked.
  std::vector<std::string> skipped;     ///< "<benchmark>: <why>" for the others.
  double critical_difference = 0;       ///< Nemenyi CD at alpha 0.05; 0 when undefined.
};

/// An expected job (or a failed one) without an ok result.
struct MissingJob {
  std::string job_id;      ///< JobSpec::id().
  std::string dataset;     ///< Dataset name.
  std::string model;       ///< Method label (model name unless the sweep set one).
  std::string status;      ///< "failed", "quarantined" or "not run".
  std::string error;       ///< The failure (or quarantine) message; empty when not run.
  int fold_index = 0;      ///< Test fold.
  std::uint64_t seed = 0;  ///< Job seed.
};

/// Everything the leaderboard files show.
struct Leaderboard {
  std::vector<LeaderboardRow> rows;  ///< Every config: by dataset, method, validation descending.
  std::vector<BenchmarkResult> benchmarks;  ///< By dataset name.
  RankSummary ranks;                        ///< Across benchmarks.
  std::vector<MissingJob> missing;          ///< Manifest order, then unexpected failures by job id.
  int ok_results = 0;                       ///< Results with status ok.
  int pruned_jobs = 0;  ///< Expected jobs that halving pruned (never run; not missing).
};

/// How to build the leaderboard.
struct LeaderboardOptions {
  /// Baseline method for paired tests; empty = the first method of the manifest (sweep order), else
  /// the alphabetically first method with results.
  std::string baseline;
  /// job id -> message, for jobs the journal marks "quarantined" (they stay missing, never
  /// dropped).
  std::map<std::string, std::string> quarantined;
  /// job id -> detail, for jobs the journal marks "pruned": they are not missing, and their grid
  /// point's row is partial (LeaderboardRow::pruned).
  std::map<std::string, std::string> pruned;
};

/// Builds the leaderboard from results and the expected jobs (the manifest; may be empty).
Leaderboard build_leaderboard(const std::vector<JobResult>& results,
                              const std::vector<JobSpec>& expected,
                              const LeaderboardOptions& options = {});

/// Protocol flags of one result: metrics.protocol_flags, runtime.protocol_flags and a top-level
/// protocol_flags (whichever exist; strings only), plus "val_equals_test" for split.protocol
/// "legacy" with val_ratio 0. Sorted, unique.
std::vector<std::string> protocol_flags(const JobResult& result);

/// job id -> detail of the journal lines whose status is "pruned", unless a later "ok" line names
/// the job (malformed lines ignored).
std::map<std::string, std::string> read_pruned(const std::string& journal_path);

/// The instance-truth metrics the leaderboard shows when results carry them, in display order:
/// auc_hard_only, instance_auc, instance_auc_hard, instance_auc_easy.
const std::vector<std::string>& truth_metric_keys();

/// Records the sweep's name in <results_dir>/sweep.json, for the leaderboard's title.
void write_sweep_name(const std::string& results_dir, const std::string& name);
/// The name write_sweep_name recorded; "" when there is none.
std::string read_sweep_name(const std::string& results_dir);

/// Reads a results dir (ResultsStore layout) and writes <dir>/leaderboard.{md,csv,json,html},
/// titled with the sweep's name (else the folder's); returns the .md path. Throws when the
/// directory does not exist or the baseline is unknown.
std::string write_leaderboard(const std::string& results_dir,
                              const LeaderboardOptions& options = {});

/// job id -> detail of the journal lines whose status is "quarantined", unless a later "ok" or
/// "failed" line names the job (malformed lines ignored).
std::map<std::string, std::string> read_quarantined(const std::string& journal_path);

/// JSON forms of the above, as written to leaderboard.json.
void to_json(nlohmann::json& j, const MetricSummary& s);
void to_json(nlohmann::json& j, const LeaderboardRow& r);
void to_json(nlohmann::json& j, const Comparison& c);
void to_json(nlohmann::json& j, const MethodResult& m);
void to_json(nlohmann::json& j, const BenchmarkResult& b);
void to_json(nlohmann::json& j, const RankSummary& r);
void to_json(nlohmann::json& j, const MissingJob& m);
void to_json(nlohmann::json& j, const Leaderboard& b);

}  // namespace mil::orch
