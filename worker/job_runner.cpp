#include "worker/job_runner.h"

#include <ATen/Parallel.h>
#include <torch/version.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <stdexcept>

#include "mil/metrics.h"
#include "mil/models/mil_model.h"
#include "mil/splits.h"
#include "mil/trainer.h"

namespace mil::worker {
namespace {

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&now));
  return text;
}

std::string host_name() {
  char name[256] = {};
  return gethostname(name, sizeof name - 1) == 0 ? std::string(name) : std::string("unknown");
}

/// Runs `fn`, prefixing any exception with the stage name ("loading data: ...").
template <typename Fn>
auto stage(const char* name, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(name) + ": " + e.what());
  }
}

nlohmann::json metrics_json(const Predictions& predictions) {
  nlohmann::json j = classification_metrics(predictions.probabilities, predictions.labels);
  j["bags"] = predictions.labels.size();
  return j;
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
                    {"started_at", utc_now()},
                    {"torch_version", TORCH_VERSION},
                    {"mhim_version", MHIM_VERSION}};
  const auto log = [&](const std::string& line) {
    if (options.log) options.log("[" + result.job_id + "] " + line);
  };
  try {
    const auto data = stage("loading data", [&] { return cache.get(spec.dataset, spec.split.repetition); });
    result.inputs = data->inputs;
    const Split split = stage("splitting", [&] {
      const std::vector<int> labels = data->labels();
      std::vector<int> folds;
      if (spec.split.protocol == "file") {
        if (data->file_fold_of_bag.empty()) {
          throw std::runtime_error("dataset '" + spec.dataset.name + "' ships no fold file; use protocol kfold");
        }
        if (data->file_fold_count != spec.split.fold_count) {
          throw std::runtime_error("fold file has " + std::to_string(data->file_fold_count) +
                                   " folds, split.fold_count is " + std::to_string(spec.split.fold_count));
        }
        folds = data->file_fold_of_bag;
      } else {
        folds = stratified_fold_assignment(labels, spec.split.fold_count, spec.split.split_seed);
      }
      return make_split(labels, folds, spec.split.fold_index, spec.split.val_ratio, spec.split.split_seed);
    });
    const std::vector<Bag> standardized =
        spec.dataset.standardize ? standardize_with(data->bags, split.train) : std::vector<Bag>{};
    const std::vector<Bag>& bags = spec.dataset.standardize ? standardized : data->bags;
    log("fold " + std::to_string(spec.split.fold_index) + ": " + std::to_string(split.train.size()) + " train, " +
        std::to_string(split.val.size()) + " val, " + std::to_string(split.test.size()) + " test bags");

    seed_torch(spec.seed);
    const auto model = stage("building model", [&] {
      return make_model(spec.model, data->feature_dim, data->class_count);
    });
    result.history = nlohmann::json::array();
    const auto history = stage("training", [&] {
      return fit(*model, spec.train, bags, split.train, spec.seed, [&](const EpochRecord& r) {
        result.history.push_back({{"epoch", r.epoch},
                                  {"loss", r.mean_loss},
                                  {"lr", r.lr},
                                  {"seconds", r.seconds},
                                  {"instances_per_second", r.instances_per_second},
                                  {"skipped_steps", r.skipped_steps}});
        if (r.epoch == 0 || (r.epoch + 1) % 5 == 0 || r.epoch + 1 == spec.train.epochs) {
          char line[160];
          std::snprintf(line, sizeof line, "epoch %d/%d loss %.4f %.0f inst/s", r.epoch + 1, spec.train.epochs,
                        r.mean_loss, r.instances_per_second);
          log(line);
        }
      });
    });
    stage("evaluating", [&] {
      result.metrics["train"] = metrics_json(predict(*model, bags, split.train));
      if (!split.val.empty()) result.metrics["val"] = metrics_json(predict(*model, bags, split.val));
      result.metrics["test"] = metrics_json(predict(*model, bags, split.test));
      return 0;
    });
    result.metrics["parameters"] = count_trainable_parameters(*model);
    result.status = "ok";
  } catch (const std::exception& e) {
    result.status = "failed";
    result.error = e.what();
    log("failed: " + result.error);
  }
  result.runtime["finished_at"] = utc_now();
  result.runtime["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return result;
}

}  // namespace mil::worker
