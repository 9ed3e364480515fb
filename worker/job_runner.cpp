#include "worker/job_runner.h"

#include "mil/core/mhim_jobs.h"
#include "mil/core/sha256.h"
#include "mil/data/bag_dataset.h"
#include "mil/models/state_dict.h"

#include <ATen/Parallel.h>
#include <torch/serialize/output-archive.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "mil/core/durable_file.h"
#include "mil/core/runtime_info.h"
#include "mil/data/split_protocol.h"
#include "mil/eval/bootstrap.h"
#include "mil/eval/metrics.h"
#include "mil/eval/truth_evaluation.h"
#include "mil/mhim/mhim_network.h"
#include "mil/models/mil_model.h"
#include "mil/models/model_registry.h"
#include "mil/train/gradient_sync.h"
#include "mil/train/trainer.h"

namespace mil::worker {
namespace {

/// Runs `fn`, prefixing any exception with the stage name ("loading data: "); a GroupFailure stays
/// one.
template <typename Fn>
auto stage(const char* name, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const GroupFailure& e) {
    throw GroupFailure(std::string(name) + ": " + e.what());
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(name) + ": " + e.what());
  }
}

/// The teacher checkpoint of a job whose teacher is its sweep's baseline job
/// (mil/core/mhim_jobs.h): that job's model_best.pt, or model_last.pt with the option
/// teacher_epoch "last", beside this job's work folder; empty for every other job. Throws when
/// there is no results folder or the baseline has not written that model.
std::string baseline_teacher_checkpoint(const JobSpec& spec, const std::string& work_dir) {
  namespace fs = std::filesystem;
  const auto baseline = mhim_teacher_job(spec);
  if (!baseline) return {};
  if (work_dir.empty()) throw std::runtime_error("teacher_init 'baseline' needs a results folder");
  const bool last = spec.model.options.value("teacher_epoch", "best") == "last";
  const std::string path = (fs::path(work_dir).parent_path() / baseline->id() /
                            (last ? "model_last.pt" : "model_best.pt"))
                               .string();
  if (!fs::exists(path)) {
    throw std::runtime_error("the teacher baseline job " + baseline->id() + " has no model at '" +
                             path + "'; run it first (sweeps do)");
  }
  return path;
}

nlohmann::json metrics_json(const Predictions& predictions, bool survival) {
  nlohmann::json j = evaluate(predictions, survival);
  j["bags"] = predictions.labels.size();
  return j;
}

/// The reference's test bootstrap (engines/metrics.py): 1,000 resamples seeded by the fold index;
/// mean, unbiased std and a 95% percentile interval per metric.
nlohmann::json bootstrap_json(const Predictions& p, int fold_index, bool survival) {
  const auto indices = bootstrap_indices(int64_t(p.labels.size()), kBootstrapResamples, fold_index);
  std::map<std::string, BootstrapSummary> summaries;
  if (survival) {
    summaries["c_index"] = bootstrap_metric(indices, [&](const std::vector<int64_t>& rows) {
      return harrell_c_index(take_rows(p.risks, rows), take_rows(p.event_times, rows),
                             take_rows(p.event_observed, rows));
    });
  } else {
    summaries = bootstrap_classification_metrics(p.probabilities, p.labels, indices);
  }
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, s] : summaries) {
    out[name] = {{"mean", s.mean},
                 {"std", s.std},
                 {"ci_low", s.ci_low},
                 {"ci_high", s.ci_high},
                 {"resamples_used", s.resamples_used}};
  }
  return out;
}

/// Binary test decisions at the threshold that maximises Youden's J on validation (never on test).
nlohmann::json at_val_threshold(const Predictions& val, const Predictions& test) {
  const auto positive_scores = [](const Predictions& p) {
    std::vector<double> scores;
    for (const auto& row : p.probabilities) scores.push_back(row.at(1));
    return scores;
  };
  const double threshold = youden_threshold(positive_scores(val), val.labels);
  if (!std::isfinite(threshold)) return {{"threshold", nullptr}};
  const std::vector<int> decisions = predictions_at_threshold(positive_scores(test), threshold);
  return {{"threshold", threshold},
          {"accuracy", accuracy(decisions, test.labels)},
          {"balanced_accuracy", balanced_accuracy(decisions, test.labels)}};
}

}  // namespace

std::shared_ptr<const BagDataset> DatasetCache::get(const DatasetSpec& spec, int repetition) {
  const std::string key = nlohmann::json(spec).dump() + "#" + std::to_string(repetition);
  ++clock_;
  if (auto it = entries_.find(key); it != entries_.end()) {
    it->second.first = clock_;
    return it->second.second;
  }
  auto data = std::make_shared<const BagDataset>(load_dataset(spec, repetition));
  if (entries_.size() >= capacity_) {
    auto oldest = entries_.begin();
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->second.first < oldest->second.first) oldest = it;
    }
    entries_.erase(oldest);
  }
  entries_.emplace(key, std::make_pair(clock_, data));
  return data;
}

namespace {

/// The training objective the job's model needs from the model registry (MHIM: its teacher and
/// masking), or null; records the files it read (the teacher's checkpoint) in result.inputs.
std::unique_ptr<TrainingObjective> build_training_objective(
    const JobSpec& spec, const RunOptions& options, const std::shared_ptr<MilModelImpl>& model,
    const TrainSpec& train_spec, const Split& split, JobResult& result) {
  auto objective = stage("building the training objective", [&] {
    ObjectiveSetup setup;
    setup.fold_index = spec.split.fold_index;
    setup.total_steps = int64_t(train_spec.epochs) * int64_t(split.train.size());
    setup.teacher_init = baseline_teacher_checkpoint(spec, options.work_dir);
    return make_training_objective(spec.model, *model, setup);
  });
  if (objective) {
    for (const auto& [name, path] : objective->input_files())
      result.inputs[name] = {{"path", path}, {"sha256", sha256_file(path)}};
  }
  return objective;
}

/// One run_job call: the job, how it runs and the result it fills, with one method per stage
/// (loading and splitting the data, building the model and its training objective, fitting,
/// evaluating, saving). Every rank of a data-parallel group runs the same stages in the same order.
class JobRun {
 public:
  JobRun(const JobSpec& spec, const RunOptions& options, DatasetCache& cache);
  /// Runs every stage; a failure becomes a "failed" result, shared with the group where it can be.
  JobResult run();

 private:
  /// Where a group's ranks stand. Outside training, a rank that fails brings its error to the
  /// agreement (agree_on_failure) that its peers enter at the end of that phase, so none is left
  /// waiting and nothing is aborted; inside training, fit() shares failures the same way between
  /// its collectives.
  enum class GroupPhase { kPreparing, kTraining, kEvaluating, kAgreed };

  std::string group_size_error() const;
  void execute();
  void write_config();
  void load_and_split();
  void record_split();
  const Split& split() const { return resolved_.split; }
  const std::vector<Bag>& bags() const {
    return spec_.dataset.standardize ? standardized_ : data_->bags;
  }
  std::shared_ptr<MilModelImpl> build_model();
  TrainSpec resolved_train_spec() const;
  FitOptions make_fit_options(TrainingObjective* objective);
  void on_epoch(const EpochRecord& r);
  void agree_with_group(GroupPhase next, const char* during);
  void record_interruption(const FitResult& fitted);
  void evaluate(const FitResult& fitted, const TrainSpec& train_spec, MilModelImpl* teacher);
  void save_model(const FitResult& fitted, MilModelImpl* teacher);
  void fail(const std::exception& e);
  void progress(const char* stage, int epoch, int bags_done, int bags_total) const;
  void log(const std::string& line) const;

  const JobSpec& spec_;
  const RunOptions& options_;
  DatasetCache& cache_;
  JobResult result_;
  const std::chrono::steady_clock::time_point start_;
  const double cpu_start_;  ///< process_cpu_seconds() when the job began.
  /// Only the group's first rank writes the job's files; every rank reads its checkpoint to resume.
  const bool writes_files_;
  const bool grouped_;  ///< A data-parallel group of more than one rank runs the job.
  GroupPhase phase_ = GroupPhase::kPreparing;
  std::shared_ptr<const BagDataset> data_;
  ResolvedSplit resolved_;
  std::vector<Bag> standardized_;  ///< The bags standardized on the training split, if asked.
  std::shared_ptr<MilModelImpl> model_;
  std::string checkpoint_path_;  ///< Empty without a work dir.
  std::ofstream epoch_log_;      ///< epochs.jsonl, open where this rank writes files.
};

JobRun::JobRun(const JobSpec& spec, const RunOptions& options, DatasetCache& cache)
    : spec_(spec),
      options_(options),
      cache_(cache),
      start_(std::chrono::steady_clock::now()),
      cpu_start_(process_cpu_seconds()),
      writes_files_(!options.work_dir.empty() &&
                    (options.sync == nullptr || options.sync->rank() == 0)),
      grouped_(options.sync != nullptr && options.sync->size() > 1) {
  result_.spec = spec;
  result_.job_id = spec.id();
  result_.config_id = spec.config_id();
  result_.runtime = {{"host", host_name()},
                     {"rank", options.rank},
                     {"threads", at::get_num_threads()},
                     {"started_at", utc_timestamp()},
                     {"torch_version", TORCH_VERSION},
                     {"mhim_version", MHIM_VERSION}};
  result_.runtime["device"] = options.device.str();
  const char* wait_policy = std::getenv("OMP_WAIT_POLICY");
  result_.runtime["omp_wait_policy"] = wait_policy != nullptr ? wait_policy : "";
  if (options.sync != nullptr) {
    result_.runtime["gradient_sync"] = options.sync->name();
    result_.runtime["ranks"] = options.sync->size();
  }
}

JobResult JobRun::run() {
  if (const std::string error = group_size_error(); !error.empty()) {
    result_.status = "failed";
    result_.error = error;
    log("failed: " + result_.error);
    result_.runtime["finished_at"] = utc_timestamp();
    return result_;
  }
  try {
    execute();
  } catch (const GroupFailure& e) {
    // Every rank of the group agreed on this error: none waits for another, so nothing is aborted.
    result_.status = "failed";
    result_.error = e.what();
    log("failed: " + result_.error);
  } catch (const std::exception& e) {
    fail(e);
  }
  result_.runtime["finished_at"] = utc_timestamp();
  result_.runtime["seconds"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  // What the job cost this process, whatever else shares the machine (the process runs one job at a
  // time).
  result_.runtime["cpu_seconds"] = process_cpu_seconds() - cpu_start_;
  return result_;
}

/// A job with train.ranks > 1 computes what R ranks compute together, so it runs on exactly R.
/// Every rank of a group sees the same sizes, so all of them fail here and none waits in a
/// collective. Empty when the sizes fit.
std::string JobRun::group_size_error() const {
  const int group_size = options_.sync != nullptr ? options_.sync->size() : 1;
  if (spec_.train.ranks <= 1 || spec_.train.ranks == group_size) return {};
  return "train.ranks is " + std::to_string(spec_.train.ranks) + " but the job runs on " +
         std::to_string(group_size) +
         " rank(s); run it on exactly that many (a sweep does; by hand: mpirun -n " +
         std::to_string(spec_.train.ranks) + " mhim train --job FILE --data-parallel)";
}

/// The stages in order; each throws with its name prefixed.
void JobRun::execute() {
  if (writes_files_) stage("writing config.json", [&] { write_config(); });
  progress("loading", 0, 0, 0);
  load_and_split();
  seed_torch(spec_.seed);
  model_ = stage("building model", [&] { return build_model(); });
  const TrainSpec train_spec = resolved_train_spec();
  const auto objective =
      build_training_objective(spec_, options_, model_, train_spec, split(), result_);
  MilModelImpl* const teacher = objective ? objective->teacher_model() : nullptr;
  const FitOptions fit_options = make_fit_options(objective.get());
  if (grouped_) agree_with_group(GroupPhase::kTraining, "while preparing");
  const FitResult fitted = stage("training", [&] {
    return fit(*model_, train_spec, bags(), split().train, split().val, spec_.seed, fit_options);
  });
  phase_ = GroupPhase::kEvaluating;
  result_.history = nlohmann::json::array();
  for (const auto& r : fitted.history) result_.history.push_back(r);
  if (fitted.interrupted) {
    record_interruption(fitted);
  } else {
    evaluate(fitted, train_spec, teacher);
  }
  // Every rank evaluated the same weights; a rank that could not says so before the first rank
  // saves the model and drops the checkpoint, so a retry still resumes from it.
  if (grouped_) agree_with_group(GroupPhase::kAgreed, "while evaluating");
  if (!fitted.interrupted) {
    if (writes_files_) stage("saving the model", [&] { save_model(fitted, teacher); });
    result_.status = "ok";
  }
  result_.metrics["parameters"] = count_trainable_parameters(*model_);
}

/// The resolved spec beside the job's checkpoints, readable before (or without) a result.
void JobRun::write_config() {
  std::filesystem::create_directories(options_.work_dir);
  const nlohmann::json config = {
      {"job_id", result_.job_id}, {"config_id", result_.config_id}, {"spec", spec_}};
  write_file_atomic((std::filesystem::path(options_.work_dir) / "config.json").string(),
                    config.dump(2) + "\n");
}

void JobRun::load_and_split() {
  data_ = stage("loading data", [&] { return cache_.get(spec_.dataset, spec_.split.repetition); });
  result_.inputs = data_->inputs;
  resolved_ = stage("splitting", [&] { return resolve_split(*data_, spec_.dataset, spec_.split); });
  record_split();
  if (spec_.dataset.standardize) standardized_ = standardize_with(data_->bags, split().train);
  log("fold " + std::to_string(spec_.split.fold_index) + ": " +
      std::to_string(split().train.size()) + " train, " + std::to_string(split().val.size()) +
      " val, " + std::to_string(split().test.size()) + " test bags");
}

/// What was split, by content (the same bags in the same parts hash the same under any protocol),
/// in the result and, where this rank writes files, in split.json.
void JobRun::record_split() {
  result_.inputs["split"] = {{"sha256", resolved_.sha256},
                             {"protocol", spec_.split.protocol},
                             {"train", split().train.size()},
                             {"val", split().val.size()},
                             {"test", split().test.size()}};
  if (!resolved_.split_file.is_null()) result_.inputs["split"]["file"] = resolved_.split_file;
  if (!resolved_.flags.empty()) result_.metrics["protocol_flags"] = resolved_.flags;
  if (!writes_files_) return;
  stage("recording the split", [&] {
    std::filesystem::create_directories(options_.work_dir);
    const std::string path = (std::filesystem::path(options_.work_dir) / "split.json").string();
    write_file_atomic(path, resolved_.record.dump(1) + "\n");
    result_.inputs["split"]["path"] = path;
    return 0;
  });
}

std::shared_ptr<MilModelImpl> JobRun::build_model() {
  auto built = make_model(spec_.model, data_->feature_dim, data_->class_count);
  built->to(options_.device);
  return built;
}

/// spec.train with its loss resolved for this dataset; throws when they do not fit.
TrainSpec JobRun::resolved_train_spec() const {
  TrainSpec train_spec = spec_.train;
  if (train_spec.loss == "auto") train_spec.loss = data_->survival ? "nll_surv" : "ce";
  if ((train_spec.loss == "nll_surv") != data_->survival) {
    throw std::runtime_error("train.loss '" + train_spec.loss + "' does not fit dataset kind '" +
                             spec_.dataset.kind + "'");
  }
  return train_spec;
}

/// How fit() runs this job: its checkpoint in the work dir, epochs logged to epochs.jsonl, progress
/// reported after every bag and epoch.
FitOptions JobRun::make_fit_options(TrainingObjective* objective) {
  namespace fs = std::filesystem;
  FitOptions fit_options;
  fit_options.run_fingerprint = result_.job_id;
  fit_options.stop_requested = options_.stop_requested;
  fit_options.checkpoint_every = options_.checkpoint_every;
  fit_options.device = options_.device;
  fit_options.sync = options_.sync;
  fit_options.objective = objective;
  // A baseline's weights after its last epoch, for MHIM jobs whose teacher_epoch is "last".
  fit_options.keep_last_weights = writes_files_ && spec_.model.name == "mhim_pure";
  if (!options_.work_dir.empty()) {
    fs::create_directories(options_.work_dir);
    checkpoint_path_ = (fs::path(options_.work_dir) / "checkpoint.pt").string();
    if (writes_files_) epoch_log_.open(fs::path(options_.work_dir) / "epochs.jsonl", std::ios::app);
  }
  fit_options.checkpoint_path = checkpoint_path_;
  fit_options.on_epoch = [this](const EpochRecord& r) { on_epoch(r); };
  fit_options.on_bag = [this](int epoch, int bags_done, int bags_total) {
    progress("training", epoch, bags_done, bags_total);
  };
  return fit_options;
}

void JobRun::on_epoch(const EpochRecord& r) {
  const nlohmann::json line = r;
  if (epoch_log_.is_open()) epoch_log_ << line.dump() << std::endl;
  if (options_.on_epoch) options_.on_epoch(r, spec_.train.epochs);
  progress("training", r.epoch + 1, 0, int(split().train.size()));
  if (r.epoch == 0 || (r.epoch + 1) % 5 == 0 || r.epoch + 1 == spec_.train.epochs) {
    char text[200];
    std::snprintf(text, sizeof text, "epoch %d/%d loss %.4f lr %.3g %.0f inst/s", r.epoch + 1,
                  spec_.train.epochs, r.mean_loss, r.lr, r.instances_per_second);
    log(std::string(text) + (r.val.empty() ? "" : " val " + nlohmann::json(r.val).dump()));
  }
}

/// Enters phase `next`, then meets the group at the end of the phase before it (named by `during`)
/// and throws a GroupFailure when a peer failed there. The phase is set first: a rank failing in
/// this agreement must not enter it again.
void JobRun::agree_with_group(GroupPhase next, const char* during) {
  phase_ = next;
  const std::string peer_error = agree_on_failure(*options_.sync, "", during);
  if (!peer_error.empty()) throw GroupFailure(peer_error);
}

void JobRun::record_interruption(const FitResult& fitted) {
  result_.status = "interrupted";
  result_.error = "stopped on request after " + std::to_string(fitted.history.size()) +
                  " epochs; rerun to resume from " + checkpoint_path_;
  log(result_.error);
}

/// The selection, then the best weights on train, test (with the bootstrap) and validation; the
/// teacher too, at its own best epoch.
void JobRun::evaluate(const FitResult& fitted, const TrainSpec& train_spec, MilModelImpl* teacher) {
  const bool survival = data_->survival;
  result_.metrics["selection"] = {{"metric", fitted.selection_metric},
                                  {"loss", train_spec.loss},
                                  {"best_epoch", fitted.best_epoch},
                                  {"best_score", fitted.best_score},
                                  {"stopped_early", fitted.stopped_early},
                                  {"epochs_run", fitted.history.size()},
                                  {"resumed_from_epoch", fitted.resumed_from_epoch}};
  progress("evaluating", int(fitted.history.size()), 0, int(split().train.size()));
  stage("evaluating", [&] {
    result_.metrics["train"] =
        metrics_json(predict(*model_, bags(), split().train, options_.device), survival);
    const Predictions test = predict(*model_, bags(), split().test, options_.device);
    result_.metrics["test"] = metrics_json(test, survival);
    result_.metrics["test_bootstrap"] = bootstrap_json(test, spec_.split.fold_index, survival);
    // Where the test bags carry instance truth, where the model looked (only then, so results of
    // datasets without truth are what they were).
    const nlohmann::json truth =
        evaluate_instance_truth(*model_, bags(), split().test, options_.device);
    if (!truth.is_null()) result_.metrics["test_truth"] = truth;
    if (!split().val.empty()) {
      const Predictions val = predict(*model_, bags(), split().val, options_.device);
      result_.metrics["val"] = metrics_json(val, survival);
      if (!survival && data_->class_count == 2)
        result_.metrics["test_at_val_threshold"] = at_val_threshold(val, test);
    }
    return 0;
  });
  if (teacher == nullptr) return;
  // As the reference does for MHIM, the teacher is tested too, at its own best epoch; only the
  // student's metrics are the job's (the leaderboard reads metrics.test).
  stage("evaluating the teacher", [&] {
    result_.metrics["teacher_selection"] = {{"metric", fitted.selection_metric},
                                            {"best_epoch", fitted.teacher_best_epoch},
                                            {"best_score", fitted.teacher_best_score}};
    result_.metrics["teacher_test"] =
        metrics_json(predict(*teacher, bags(), split().test, options_.device), survival);
    const nlohmann::json truth =
        evaluate_instance_truth(*teacher, bags(), split().test, options_.device);
    if (!truth.is_null()) result_.metrics["teacher_test_truth"] = truth;
    return 0;
  });
}

/// model_best.pt (and teacher_best.pt), then drops the checkpoint: the job is done.
void JobRun::save_model(const FitResult& fitted, MilModelImpl* teacher) {
  namespace fs = std::filesystem;
  const std::string model_best = (fs::path(options_.work_dir) / "model_best.pt").string();
  if (teacher != nullptr) {
    write_state_dict(with_reference_aliases(state_dict_of(*teacher)),
                     (fs::path(options_.work_dir) / "teacher_best.pt").string());
    // The reference's best checkpoint, {"model", "teacher", "epoch"}: the student (what `mhim
    // predict` and a teacher_init read), the teacher as it was at the student's best epoch, and
    // that epoch; with the GRN query's alias, so the reference's strict load takes both.
    const int epoch = fitted.best_epoch >= 0 ? fitted.best_epoch : int(fitted.history.size()) - 1;
    write_best_checkpoint(with_reference_aliases(state_dict_of(*model_)),
                          with_reference_aliases(fitted.teacher_at_best_epoch), epoch, model_best);
  } else {
    // A PyTorch state_dict: Python's torch.load reads it, and MHIM jobs load it as their teacher.
    write_state_dict(state_dict_of(*model_), model_best);
    if (!fitted.last_weights.empty()) {
      write_state_dict(fitted.last_weights,
                       (fs::path(options_.work_dir) / "model_last.pt").string());
    }
  }
  fs::remove(checkpoint_path_);  // done: the resume state is no longer needed
}

/// A failure outside an agreement: the peers learn of it in the agreement they are about to enter
/// (preparing, evaluating), so none is left waiting; where that is not possible the group is
/// aborted, since its other ranks wait in a collective this rank will never join.
void JobRun::fail(const std::exception& e) {
  result_.status = "failed";
  result_.error = e.what();
  bool shared = false;
  if (grouped_ && (phase_ == GroupPhase::kPreparing || phase_ == GroupPhase::kEvaluating)) {
    try {
      const char* during =
          phase_ == GroupPhase::kPreparing ? "while preparing" : "while evaluating";
      result_.error = agree_on_failure(*options_.sync, result_.error, during);
      shared = true;
    } catch (const std::exception& agreement) {
      result_.error += std::string("; telling the group failed: ") + agreement.what();
    }
  }
  log("failed: " + result_.error);
  if (grouped_ && !shared) {
    log("aborting the job's " + std::to_string(options_.sync->size()) + "-rank group");
    options_.sync->abort(4);
  }
}

void JobRun::progress(const char* stage, int epoch, int bags_done, int bags_total) const {
  if (options_.on_progress)
    options_.on_progress(JobProgress{stage, epoch, spec_.train.epochs, bags_done, bags_total});
}

void JobRun::log(const std::string& line) const {
  if (options_.log) options_.log("[" + result_.job_id + "] " + line);
}

}  // namespace

JobResult run_job(const JobSpec& spec, const RunOptions& options, DatasetCache& cache) {
  return JobRun(spec, options, cache).run();
}

}  // namespace mil::worker
