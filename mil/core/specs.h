#pragma once
// The values that flow through a sweep: what one job is (JobSpec) and what it produced (JobResult).
// JSON (de)serialisation is strict about unknown keys, so a typo in a sweep file is an error that
// names the field instead of a silently ignored setting.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mil {

/// Where a benchmark's bags come from.
struct DatasetSpec {
  std::string name;           ///< Benchmark name; groups rows in the leaderboard.
  std::string kind = "bags";  ///< "bags": <root>/labels.csv + pt_files/; "musk": mil-classic CSVs;
                              ///< "survival": <root>/survival.csv + pt_files/.
  std::string root;     ///< Folder ("bags") or CSV prefix ("musk", e.g. .../musk1 reads musk1.csv).
  int class_count = 2;  ///< Number of classes (labels in [0, class_count)); for survival, time bins
                        ///< (reference: 4).
  bool standardize = false;  ///< Z-score every feature with statistics of the training split only.
  std::string labels;  ///< Label CSV, relative to root; empty = labels.csv ("bags") or survival.csv
                       ///< ("survival").
  nlohmann::json label_map = nlohmann::json::object();  ///< Label text -> class, e.g. {"LUAD": 0,
                                                        ///< "LUSC": 1}; empty = integer labels.
  std::string slide_match = "exact";  ///< "exact": <dir>/<ID>.<ext>; "substring": every file whose
                                      ///< name contains the ID (reference).
  std::string features =
      "auto";  ///< "pt" (pt_files/*.pt), "h5" (h5_files/*.h5), "auto" (pt_files/ when it exists) or
               ///< "packed" (<root>/packed.milpack, see mhim pack).
  /// Refuse to preload more than this many GB of features into RAM (0 = no limit); f32 packed
  /// caches are exempt (their bags are views of a mapped file). Not hashed into job ids: it decides
  /// whether a job runs, never what it computes.
  double ram_budget_gb = 0.0;
};

/// Which bags train, validate and test in one job.
struct SplitSpec {
  /// "kfold": stratified group K-fold from split_seed; "file": the dataset's fold file (MUSK) or
  /// the split files in `dir`; "legacy": the reference's protocol, validation = test fold (flagged
  /// in results).
  std::string protocol = "kfold";
  int fold_count = 5;  ///< K; for "file" it must match the file.
  int fold_index = 0;  ///< Test fold of this job, in [0, fold_count).
  std::uint64_t split_seed =
      2021;  ///< Seeds the fold assignment ("kfold") and the validation carve-out.
  double val_ratio =
      0.0;             ///< Per-class fraction of training bags held out for validation; 0 = none.
  int repetition = 0;  ///< Repetition of a repeated fold file (MUSK: 0..4).
  /// Folder of split files for protocol "file" (or "legacy"): CLAM splits_{k}.csv or reference
  /// fold_{k}.csv; relative paths are under the dataset root. Empty = none.
  std::string dir;
};

/// Which aggregator, with model-specific options checked by the model factory.
struct ModelSpec {
  std::string name = "abmil";                         ///< Registered model name.
  nlohmann::json options = nlohmann::json::object();  ///< Model options, e.g. {"dropout": 0.25}.
  /// Leaderboard method label, e.g. "abmil+mhim"; empty = the model name. Serialised (and so
  /// hashed into job ids) only when set, so specs without one keep their ids.
  std::string method;
};

/// Optimisation settings (the reference engine's names and defaults where it has them: its
/// config/feat_cls.yaml and train_utils.py).
struct TrainSpec {
  int epochs = 20;                  ///< Full passes over the training bags (batch size is one bag).
  double lr = 2e-4;                 ///< Adam learning rate (peak of the schedule).
  double weight_decay = 1e-5;       ///< Adam's coupled L2 penalty, as the reference uses it.
  std::string schedule = "cosine";  ///< "cosine" (timm, stepped per epoch, to lr_min at `epochs`),
                                    ///< "step" (x0.2 at epochs/2), "const".
  double lr_min = 1e-7;             ///< Floor of the cosine schedule.
  int warmup_epochs = 0;       ///< Epochs of linear warm-up from warmup_lr to lr (timm semantics).
  double warmup_lr = 1e-6;     ///< Learning rate of epoch 0 when warming up.
  bool early_stopping = true;  ///< Stop on a validation plateau (needs a validation split).
  int patience = 20;           ///< Epochs without a score >= the best before stopping.
  int stop_epoch =
      100;  ///< Early stopping may fire only once the 0-based epoch index exceeds this.
  double clip_grad = 0.0;     ///< Maximum global L2 norm of the gradient; 0 = no clipping (the
                              ///< reference's effective default).
  int accumulation = 1;       ///< Bags per optimizer step; gradients are averaged over them.
  std::string loss = "auto";  ///< "auto" (by dataset kind), "ce" (cross-entropy), "nll_surv"
                              ///< (discrete-time survival NLL).
  double surv_alpha =
      0.0;  ///< Weight of the uncensored term in the survival NLL (reference default 0).
  std::string precision = "fp32";  ///< "fp32", or "bf16": training forward passes under CPU
                                   ///< autocast (evaluation stays fp32).
  bool deterministic =
      true;  ///< Same seed + inputs + thread count => bit-identical results on CPU.
  /// Ranks of the data-parallel group that trains the job (>= 1; each trains on its share of every
  /// epoch and gradients are averaged). A sweep places a job with ranks R on R idle worker ranks.
  /// Serialised (and so hashed into job ids) only when not 1: one-rank jobs keep their ids, while R
  /// > 1 changes the results and so the id.
  int ranks = 1;
};

/// One unit of work: one fold of one configuration with one seed.
struct JobSpec {
  DatasetSpec dataset;
  ModelSpec model;
  TrainSpec train;
  SplitSpec split;
  std::uint64_t seed = 2021;  ///< Seeds model init and bag order.

  /// Content hash of the resolved spec (16 hex chars): the same spec always gets the same id.
  /// Every field is hashed, so adding a field to any spec struct changes every id and a rerun no
  /// longer recognises earlier results: a field added later must be hashed only when it differs
  /// from its default (and that default must never change). to_json therefore omits split.dir and
  /// dataset.ram_budget_gb at their defaults, and ram_budget_gb is never hashed.
  std::string id() const;
  /// The spec without what only replicates a configuration: the fold index, the seed, the split
  /// seed and the fold-file repetition. Jobs of one grid point share it.
  nlohmann::json config_json() const;
  /// Hash of config_json() (16 hex chars).
  std::string config_id() const;
  /// Which replicate of its configuration this job's fold belongs to: seed, split seed, repetition.
  std::string replicate_key() const;
};

/// Outcome of one job, written once per job by the orchestrator.
struct JobResult {
  std::string job_id;
  std::string config_id;
  /// "ok", "failed", "interrupted" (stopped on request; rerunning resumes it) or "quarantined"
  /// (failed the same way on every attempt; a rerun skips it unless told to retry failed jobs).
  std::string status;
  std::string error;  ///< Failure message with context; empty when ok.
  JobSpec spec;       ///< The fully resolved spec that ran.
  nlohmann::json metrics =
      nlohmann::json::object();  ///< {"val": {...}, "test": {...}, "train": {...}}.
  nlohmann::json inputs =
      nlohmann::json::object();  ///< Content hashes and sizes of every input read.
  nlohmann::json history = nlohmann::json::array();   ///< One record per epoch.
  nlohmann::json runtime = nlohmann::json::object();  ///< Host, rank, threads, timings, versions.

  bool ok() const { return status == "ok"; }
};

void to_json(nlohmann::json& j, const DatasetSpec& s);
void from_json(const nlohmann::json& j, DatasetSpec& s);
void to_json(nlohmann::json& j, const SplitSpec& s);
void from_json(const nlohmann::json& j, SplitSpec& s);
void to_json(nlohmann::json& j, const ModelSpec& s);
void from_json(const nlohmann::json& j, ModelSpec& s);
void to_json(nlohmann::json& j, const TrainSpec& s);
void from_json(const nlohmann::json& j, TrainSpec& s);
void to_json(nlohmann::json& j, const JobSpec& s);
void from_json(const nlohmann::json& j, JobSpec& s);
void to_json(nlohmann::json& j, const JobResult& r);
void from_json(const nlohmann::json& j, JobResult& r);
/// The result as a worker reports it to rank 0 (comm/protocol.h): every field but `spec`, which
/// rank 0 holds already, so the largest part of the result is neither written nor read again per
/// job.
nlohmann::json result_json_without_spec(const JobResult& r);
/// Reads result_json_without_spec() strictly and attaches `spec`, the spec the job was sent with.
JobResult result_from_json_without_spec(const nlohmann::json& j, const JobSpec& spec);

/// Throws std::runtime_error naming `context` and the first key of `j` not in `allowed`
/// (and listing the allowed keys). `j` must be an object.
void require_known_keys(const nlohmann::json& j, const std::vector<std::string>& allowed,
                        const std::string& context);

}  // namespace mil
