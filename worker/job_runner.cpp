#include "worker/job_runner.h"

#include "mil/core/mhim_jobs.h"
#include "mil/core/sha256.h"
#include "mil/models/state_dict.h"

#include <ATen/Parallel.h>
#include <torch/serialize/output-archive.h>
#include <torch/version.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "mil/core/durable_file.h"
#include "mil/core/runtime_info.h"
#include "mil/data/split_protocol.h"
#include "mil/eval/bootstrap.h"
#include "mil/eval/metrics.h"
#include "mil/mhim/mhim_network.h"
#include "mil/models/mil_model.h"
#include "mil/models/model_registry.h"

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
/// (mil/core/mhim_jobs.h): that job's model_best.pt beside this job's work folder; empty for every
/// other job. Throws when there is no results folder or the baseline has not written its model.
std::string baseline_teacher_checkpoint(const JobSpec& spec, const std::string& work_dir) {
  namespace fs = std::filesystem;
  const auto baseline = mhim_teacher_job(spec);
  if (!baseline) return {};
  if (work_dir.empty()) throw std::runtime_error("teacher_init 'baseline' needs a results folder");
  const std::string path =
      (fs::path(work_dir).parent_path() / baseline->id() / "model_best.pt").string();
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

/// The reference's test bootstrap (spec 4.2): 1,000 resamples seeded by the fold index; mean,
/// unbiased std and a 95% percentile interval per metric.
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

JobResult run_job(const JobSpec& spec, const RunOptions& options, DatasetCache& cache) {
  JobResult result;
  result.spec = spec;
  result.job_id = spec.id();
  result.config_id = spec.config_id();
  const auto start = std::chrono::steady_clock::now();
  result.runtime = {{"host", host_name()},
                    {"rank", options.rank},
                    {"threads", at::get_num_threads()},
                    {"started_at", utc_timestamp()},
                    {"torch_version", TORCH_VERSION},
                    {"mhim_version", MHIM_VERSION}};
  result.runtime["device"] = options.device.str();
  if (options.sync != nullptr) {
    result.runtime["gradient_sync"] = options.sync->name();
    result.runtime["ranks"] = options.sync->size();
  }
  const auto log = [&](const std::string& line) {
    if (options.log) options.log("[" + result.job_id + "] " + line);
  };
  // A job with train.ranks > 1 computes what R ranks compute together, so it runs on exactly R.
  // Every rank of a group sees the same sizes, so all of them return here and none waits in a
  // collective.
  const int group_size = options.sync != nullptr ? options.sync->size() : 1;
  if (spec.train.ranks > 1 && spec.train.ranks != group_size) {
    result.status = "failed";
    result.error = "train.ranks is " + std::to_string(spec.train.ranks) + " but the job runs on " +
                   std::to_string(group_size) +
                   " rank(s); run it on exactly that many (a sweep does; by hand: mpirun -n " +
                   std::to_string(spec.train.ranks) + " mhim train --job FILE --data-parallel)";
    log("failed: " + result.error);
    result.runtime["finished_at"] = utc_timestamp();
    return result;
  }
  // Only the group's first rank writes the job's files; every rank reads its checkpoint to resume.
  const bool writes_files =
      !options.work_dir.empty() && (options.sync == nullptr || options.sync->rank() == 0);
  const bool grouped = options.sync != nullptr && options.sync->size() > 1;
  // Where a group's ranks stand. Outside training, a rank that fails brings its error to the
  // agreement (agree_on_failure) that its peers enter at the end of that phase, so none is left
  // waiting and nothing is aborted; inside training, fit() shares failures the same way between its
  // collectives.
  enum class GroupPhase { kPreparing, kTraining, kEvaluating, kAgreed };
  GroupPhase phase = GroupPhase::kPreparing;
  const auto phase_name = [&] {
    return phase == GroupPhase::kPreparing ? "while preparing" : "while evaluating";
  };
  try {
    if (writes_files) {
      // The resolved spec beside the job's checkpoints, readable before (or without) a result.
      stage("writing config.json", [&] {
        std::filesystem::create_directories(options.work_dir);
        const nlohmann::json config = {
            {"job_id", result.job_id}, {"config_id", result.config_id}, {"spec", spec}};
        write_file_atomic((std::filesystem::path(options.work_dir) / "config.json").string(),
                          config.dump(2) + "\n");
        return 0;
      });
    }
    const auto progress = [&](const char* name, int epoch, int bags_done, int bags_total) {
      if (options.on_progress)
        options.on_progress(JobProgress{name, epoch, spec.train.epochs, bags_done, bags_total});
    };
    progress("loading", 0, 0, 0);
    const auto data =
        stage("loading data", [&] { return cache.get(spec.dataset, spec.split.repetition); });
    result.inputs = data->inputs;
    const ResolvedSplit resolved =
        stage("splitting", [&] { return resolve_split(*data, spec.dataset, spec.split); });
    const Split& split = resolved.split;
    // What was split, by content: the same bags in the same parts hash the same under any protocol.
    result.inputs["split"] = {{"sha256", resolved.sha256},
                              {"protocol", spec.split.protocol},
                              {"train", split.train.size()},
                              {"val", split.val.size()},
                              {"test", split.test.size()}};
    if (!resolved.split_file.is_null()) result.inputs["split"]["file"] = resolved.split_file;
    if (!resolved.flags.empty()) result.metrics["protocol_flags"] = resolved.flags;
    if (writes_files) {
      stage("recording the split", [&] {
        std::filesystem::create_directories(options.work_dir);
        const std::string path = (std::filesystem::path(options.work_dir) / "split.json").string();
        write_file_atomic(path, resolved.record.dump(1) + "\n");
        result.inputs["split"]["path"] = path;
        return 0;
      });
    }
    const std::vector<Bag> standardized =
        spec.dataset.standardize ? standardize_with(data->bags, split.train) : std::vector<Bag>{};
    const std::vector<Bag>& bags = spec.dataset.standardize ? standardized : data->bags;
    log("fold " + std::to_string(spec.split.fold_index) + ": " +
        std::to_string(split.train.size()) + " train, " + std::to_string(split.val.size()) +
        " val, " + std::to_string(split.test.size()) + " test bags");

    seed_torch(spec.seed);
    const auto model = stage("building model", [&] {
      auto built = make_model(spec.model, data->feature_dim, data->class_count);
      built->to(options.device);
      return built;
    });
    namespace fs = std::filesystem;
    const bool survival = data->survival;
    TrainSpec train_spec = spec.train;  // the loss resolved for this dataset
    if (train_spec.loss == "auto") train_spec.loss = survival ? "nll_surv" : "ce";
    if ((train_spec.loss == "nll_surv") != survival) {
      throw std::runtime_error("train.loss '" + train_spec.loss + "' does not fit dataset kind '" +
                               spec.dataset.kind + "'");
    }
    FitOptions fit_options;
    fit_options.run_fingerprint = result.job_id;
    fit_options.stop_requested = options.stop_requested;
    fit_options.checkpoint_every = options.checkpoint_every;
    fit_options.device = options.device;
    fit_options.sync = options.sync;
    const auto objective = stage("building the training objective", [&] {
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
    fit_options.objective = objective.get();
    MilModelImpl* const teacher = objective ? objective->teacher_model() : nullptr;
    std::ofstream epoch_log;
    if (!options.work_dir.empty()) {
      fs::create_directories(options.work_dir);
      fit_options.checkpoint_path = (fs::path(options.work_dir) / "checkpoint.pt").string();
      if (writes_files) epoch_log.open(fs::path(options.work_dir) / "epochs.jsonl", std::ios::app);
    }
    fit_options.on_epoch = [&](const EpochRecord& r) {
      const nlohmann::json line = r;
      if (epoch_log.is_open()) epoch_log << line.dump() << std::endl;
      if (options.on_epoch) options.on_epoch(r, spec.train.epochs);
      progress("training", r.epoch + 1, 0, int(split.train.size()));
      if (r.epoch == 0 || (r.epoch + 1) % 5 == 0 || r.epoch + 1 == spec.train.epochs) {
        char text[200];
        std::snprintf(text, sizeof text, "epoch %d/%d loss %.4f lr %.3g %.0f inst/s", r.epoch + 1,
                      spec.train.epochs, r.mean_loss, r.lr, r.instances_per_second);
        log(std::string(text) + (r.val.empty() ? "" : " val " + nlohmann::json(r.val).dump()));
      }
    };
    fit_options.on_bag = [&](int epoch, int bags_done, int bags_total) {
      progress("training", epoch, bags_done, bags_total);
    };
    if (grouped) {
      phase = GroupPhase::kTraining;  // set first: a rank failing in this agreement must not enter
                                      // it again
      const std::string peer_error = agree_on_failure(*options.sync, "", "while preparing");
      if (!peer_error.empty()) throw GroupFailure(peer_error);
    }
    const FitResult fitted = stage("training", [&] {
      return fit(*model, train_spec, bags, split.train, split.val, spec.seed, fit_options);
    });
    phase = GroupPhase::kEvaluating;
    result.history = nlohmann::json::array();
    for (const auto& r : fitted.history) result.history.push_back(r);
    if (fitted.interrupted) {
      result.status = "interrupted";
      result.error = "stopped on request after " + std::to_string(fitted.history.size()) +
                     " epochs; rerun to resume from " + fit_options.checkpoint_path;
      log(result.error);
    } else {
      result.metrics["selection"] = {{"metric", fitted.selection_metric},
                                     {"loss", train_spec.loss},
                                     {"best_epoch", fitted.best_epoch},
                                     {"best_score", fitted.best_score},
                                     {"stopped_early", fitted.stopped_early},
                                     {"epochs_run", fitted.history.size()},
                                     {"resumed_from_epoch", fitted.resumed_from_epoch}};
      progress("evaluating", int(fitted.history.size()), 0, int(split.train.size()));
      stage("evaluating", [&] {
        result.metrics["train"] =
            metrics_json(predict(*model, bags, split.train, options.device), survival);
        const Predictions test = predict(*model, bags, split.test, options.device);
        result.metrics["test"] = metrics_json(test, survival);
        result.metrics["test_bootstrap"] = bootstrap_json(test, spec.split.fold_index, survival);
        if (!split.val.empty()) {
          const Predictions val = predict(*model, bags, split.val, options.device);
          result.metrics["val"] = metrics_json(val, survival);
          if (!survival && data->class_count == 2)
            result.metrics["test_at_val_threshold"] = at_val_threshold(val, test);
        }
        return 0;
      });
      if (teacher != nullptr) {
        // As the reference does for MHIM, the teacher is tested too, at its own best epoch; only
        // the student's metrics are the job's (the leaderboard reads metrics.test).
        stage("evaluating the teacher", [&] {
          result.metrics["teacher_selection"] = {{"metric", fitted.selection_metric},
                                                 {"best_epoch", fitted.teacher_best_epoch},
                                                 {"best_score", fitted.teacher_best_score}};
          result.metrics["teacher_test"] =
              metrics_json(predict(*teacher, bags, split.test, options.device), survival);
          return 0;
        });
      }
    }
    if (grouped) {
      // Every rank evaluated the same weights; a rank that could not says so before the first rank
      // saves the model and drops the checkpoint, so a retry still resumes from it.
      phase = GroupPhase::kAgreed;
      const std::string peer_error = agree_on_failure(*options.sync, "", "while evaluating");
      if (!peer_error.empty()) throw GroupFailure(peer_error);
    }
    if (!fitted.interrupted) {
      if (writes_files) {
        stage("saving the model", [&] {
          const std::string model_best = (fs::path(options.work_dir) / "model_best.pt").string();
          if (teacher != nullptr) {
            write_state_dict(with_reference_aliases(state_dict_of(*teacher)),
                             (fs::path(options.work_dir) / "teacher_best.pt").string());
            // The reference's best checkpoint, {"model", "teacher", "epoch"}: the student (what
            // `mhim predict` and a teacher_init read), the teacher as it was at the student's best
            // epoch, and that epoch; with the GRN query's alias, so the reference's strict load
            // takes both.
            const int epoch =
                fitted.best_epoch >= 0 ? fitted.best_epoch : int(fitted.history.size()) - 1;
            write_best_checkpoint(with_reference_aliases(state_dict_of(*model)),
                                  with_reference_aliases(fitted.teacher_at_best_epoch), epoch,
                                  model_best);
          } else {
            // A PyTorch state_dict: Python's torch.load reads it, and MHIM jobs load it as their
            // teacher.
            write_state_dict(state_dict_of(*model), model_best);
          }
          fs::remove(fit_options.checkpoint_path);  // done: the resume state is no longer needed
          return 0;
        });
      }
      result.status = "ok";
    }
    result.metrics["parameters"] = count_trainable_parameters(*model);
  } catch (const GroupFailure& e) {
    // Every rank of the group agreed on this error: none waits for another, so nothing is aborted.
    result.status = "failed";
    result.error = e.what();
    log("failed: " + result.error);
  } catch (const std::exception& e) {
    result.status = "failed";
    result.error = e.what();
    bool shared = false;
    if (grouped && (phase == GroupPhase::kPreparing || phase == GroupPhase::kEvaluating)) {
      // The peers learn of it in the agreement they are about to enter, so none is left waiting.
      try {
        result.error = agree_on_failure(*options.sync, result.error, phase_name());
        shared = true;
      } catch (const std::exception& agreement) {
        result.error += std::string("; telling the group failed: ") + agreement.what();
      }
    }
    log("failed: " + result.error);
    if (grouped && !shared) {
      // The other ranks of the job wait in a collective this rank will never join.
      log("aborting the job's " + std::to_string(options.sync->size()) + "-rank group");
      options.sync->abort(4);
    }
  }
  result.runtime["finished_at"] = utc_timestamp();
  result.runtime["seconds"] =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace mil::worker
