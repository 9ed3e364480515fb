#include "orchestrator/schedule/cost_model.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace mil::orch {

double expected_epochs(const TrainSpec& train, const SplitSpec& split) {
  const double epochs = std::max(1, train.epochs);
  const bool validated = split.val_ratio > 0 || !split.dir.empty();
  if (!train.early_stopping || !validated) return epochs;
  // Stopping may fire once the 0-based epoch index exceeds stop_epoch: after stop_epoch + 2 epochs.
  const double earliest = std::min(epochs, double(std::max(0, train.stop_epoch)) + 2);
  return (earliest + epochs) / 2;
}

std::optional<JobWork> job_work(const JobSpec& job, const DatasetSize& size) {
  if (!size.bags || !size.instances_per_bag) return std::nullopt;
  const double k = std::max(1, job.split.fold_count);
  const double instances = *size.bags * *size.instances_per_bag;
  const double outside_test = k > 1 ? instances * (k - 1) / k : instances;
  const double val_ratio = std::clamp(job.split.val_ratio, 0.0, 1.0);
  JobWork work;
  work.epochs = expected_epochs(job.train, job.split);
  work.val_instances = outside_test * val_ratio;
  work.train_instances = outside_test - work.val_instances;
  work.final_instances = instances;  // train, validation and test, once each
  work.largest_bag = size.largest_bag.value_or(0);
  return work;
}

std::string cost_key(const ModelSpec& model) {
  const std::string aggregator = model_aggregator(model);
  return aggregator.empty() ? model.name : model.name + ":" + aggregator;
}

CostModel::CostModel(std::vector<InstanceCost> table, RunContext context, Probe probe)
    : table_(std::move(table)), context_(std::move(context)), probe_(std::move(probe)) {
  context_.threads = std::max(1, context_.threads);
}

const DatasetSize& CostModel::size(const DatasetSpec& spec) const {
  const std::string key = nlohmann::json(spec).dump();
  auto it = sizes_.find(key);
  if (it == sizes_.end()) it = sizes_.emplace(key, probe_(spec)).first;
  return it->second;
}

const InstanceCost* CostModel::row(const JobSpec& job, const std::string& device) const {
  const std::string& on = device.empty() ? context_.device : device;
  const std::string key = cost_key(job.model);
  const auto colon = key.find(':');
  const std::string model = key.substr(0, colon);
  const std::string variant = colon == std::string::npos ? "" : key.substr(colon + 1);
  for (const InstanceCost& r : table_) {
    if (r.model == model && r.variant == variant && r.device == on &&
        r.precision == job.train.precision) {
      return &r;
    }
  }
  return nullptr;
}

JobPrediction CostModel::predict(const JobSpec& job) const {
  JobPrediction p;
  p.seconds = kUnknownJobSeconds;
  const InstanceCost* r = row(job);
  std::optional<InstanceCost> derived;
  if (r == nullptr && context_.device == "cuda" && context_.cuda_speedup > 0) {
    if (const InstanceCost* cpu = row(job, "cpu")) {
      derived = *cpu;
      derived->train_s /= context_.cuda_speedup;
      derived->eval_s /= context_.cuda_speedup;
      r = &*derived;
    }
  }
  if (r == nullptr) {
    p.basis = "no cost row for " + cost_key(job.model) + " on " + context_.device + " " +
              job.train.precision;
    return p;
  }
  const DatasetSize& dataset = size(job.dataset);
  const std::optional<JobWork> work = job_work(job, dataset);
  if (!work) {
    p.basis = "size of '" + job.dataset.name + "' unknown" +
              (dataset.error.empty() ? "" : ": " + dataset.error);
    return p;
  }
  // CPU rows are per thread; a GPU's time does not depend on the host threads.
  const double speedup = r->device == "cpu" && !derived ? double(context_.threads) : 1.0;
  const double per_epoch = work->train_instances * r->train_s + work->val_instances * r->eval_s;
  p.seconds = context_.overhead_s +
              (work->epochs * per_epoch + work->final_instances * r->eval_s) / speedup;
  if (work->largest_bag > 0 && r->bytes_per_instance > 0) {
    p.device_bytes = kJobFixedDeviceBytes + work->largest_bag * r->bytes_per_instance;
  }
  p.known = true;
  p.basis =
      derived ? "cpu row / assumed GPU speed-up " + std::to_string(context_.cuda_speedup) : "table";
  return p;
}

}  // namespace mil::orch
