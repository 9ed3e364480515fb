#pragma once
// A rough, up-front cost of a sweep for `mhim sweep --dry-run`, from what can be learnt without
// reading any feature: label CSV rows, synthetic.json, feature file sizes and per-model factors.
// It is an estimate to compare sweeps and catch a 100x mistake, not a run-time prediction.
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mil/core/specs.h"

namespace mil::orch {

/// What is known about a benchmark's size without reading its features.
struct DatasetSize {
  std::optional<double>
      bags;  ///< Bags: label CSV data rows (musk: distinct bag ids; survival: distinct cases).
  std::optional<double> instances_per_bag;  ///< Mean instances per bag, when some file says.
  std::string instances_source;  ///< Where instances_per_bag came from, or why it is unknown.
  std::optional<double> feature_bytes;  ///< Total size of pt_files/ or h5_files/, when present.
  /// Instances of the largest bag, when some file says (the packed cache's index, the largest
  /// feature file) or bounds it (a stand-in's profile); what a job's device memory is sized for.
  std::optional<double> largest_bag;
  int feature_dim = 0;  ///< D, when some file says; 0 = unknown.
  std::string error;    ///< Why `bags` is unknown; empty when known.
};

/// Counts what it can for `spec`; never throws (problems go to `error`).
DatasetSize probe_dataset(const DatasetSpec& spec);

/// Relative cost of one instance through `model` (abmil = 1): the catalogue's measured cost_factor
/// (mil/core/model_catalog.h); 1 with *known = false where it has none. The MHIM models (mhim,
/// mhim_pure) were measured on their default aggregator, attn (ABMIL's attention); on another
/// `aggregator` they cost what MHIM adds to its aggregator's own model:
///   factor(mhim on X) = factor(mhim) + factor(model of X) - factor(abmil)
/// (X's model: selfattn -> transmil, dsmil -> dsmil), within 14 % of the measured 12.46 (selfattn)
/// and 1.97 (dsmil).
double model_cost_factor(const std::string& model, bool* known = nullptr,
                         const std::string& aggregator = "");

/// The aggregator an MHIM model is built on (options.baseline, default "attn"); "" for others.
std::string model_aggregator(const ModelSpec& model);

/// The aggregators of the MHIM network (mil/mhim/aggregator.h) with the catalogue model each
/// mirrors: {"attn", "abmil"}, {"selfattn", "transmil"}, {"dsmil", "dsmil"}.
const std::vector<std::pair<std::string, std::string>>& mhim_aggregator_models();

/// The estimate for the jobs of one (dataset, method).
struct CostLine {
  std::string dataset;       ///< Dataset name.
  std::string method;        ///< Model method label (or name).
  int jobs = 0;              ///< Jobs of this dataset and method.
  DatasetSize size;          ///< The dataset's probe.
  double factor = 1;         ///< model_cost_factor().
  bool factor_known = true;  ///< False when the model has no factor (1 is used).
  /// Sum over jobs of epochs x bags outside the test fold x factor; unset when bags are unknown.
  std::optional<double> bag_epochs;
  /// bag_epochs x mean instances per bag; unset when either is unknown.
  std::optional<double> instance_epochs;
};

/// The whole sweep's estimate.
struct CostEstimate {
  std::vector<CostLine> lines;  ///< In first-job order.
  double bag_epochs = 0;        ///< Sum over lines that know it.
  double instance_epochs = 0;   ///< Sum over lines that know it.
  bool complete = true;         ///< False when some line lacks instance_epochs.
};

/// Groups `jobs` by (dataset, method) and estimates each group; `probe` defaults to probe_dataset
/// (tests inject sizes).
CostEstimate estimate_cost(
    const std::vector<JobSpec>& jobs,
    const std::function<DatasetSize(const DatasetSpec&)>& probe = probe_dataset);

/// A plain-text table of the estimate, stating what it is based on.
std::string format_cost(const CostEstimate& estimate);

}  // namespace mil::orch
