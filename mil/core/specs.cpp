#include "mil/core/specs.h"

#include <algorithm>
#include <stdexcept>
#include <type_traits>

#include "mil/core/sha256.h"

namespace mil {
namespace {

using nlohmann::json;

/// Reads an optional field, keeping `out` (the default) when absent; a wrong type names the field.
template <typename T>
void read_optional(const json& j, const char* key, T& out, const std::string& context) {
  auto it = j.find(key);
  if (it == j.end()) return;
  // nlohmann converts 2.7 -> 2, true -> 1 and -1 -> 2^64-1 without complaint; a config must not.
  const auto reject = [&](const char* expected) {
    throw std::runtime_error(context + "." + key + ": expected " + expected + ", got " +
                             it->dump());
  };
  if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean()) reject("true or false");
  } else if constexpr (std::is_integral_v<T>) {
    if (!it->is_number_integer()) reject("an integer");
    if (std::is_unsigned_v<T> && !it->is_number_unsigned()) reject("a non-negative integer");
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!it->is_number()) reject("a number");
  }
  try {
    out = it->get<T>();
  } catch (const json::exception& e) {
    throw std::runtime_error(context + "." + key + ": " + e.what());
  }
}

void require_object(const json& j, const std::string& context) {
  if (!j.is_object()) {
    throw std::runtime_error(context + ": expected a JSON object, got " +
                             std::string(j.type_name()));
  }
}

std::string short_hash(const json& j) { return sha256_hex(j.dump()).substr(0, 16); }

}  // namespace

void require_known_keys(const json& j, const std::vector<std::string>& allowed,
                        const std::string& context) {
  require_object(j, context);
  for (const auto& item : j.items()) {
    if (std::find(allowed.begin(), allowed.end(), item.key()) == allowed.end()) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      throw std::runtime_error(context + ": unknown key '" + item.key() + "' (allowed: " + list +
                               ")");
    }
  }
}

void to_json(json& j, const DatasetSpec& s) {
  j = json{{"name", s.name},
           {"kind", s.kind},
           {"root", s.root},
           {"class_count", s.class_count},
           {"standardize", s.standardize},
           {"labels", s.labels},
           {"label_map", s.label_map},
           {"slide_match", s.slide_match},
           {"features", s.features}};
  // Added later: emitted only when set, so the ids of specs written before it stay the same.
  if (s.ram_budget_gb != 0.0) j["ram_budget_gb"] = s.ram_budget_gb;
}

void from_json(const json& j, DatasetSpec& s) {
  const std::string ctx = "dataset";
  require_known_keys(j,
                     {"name", "kind", "root", "class_count", "standardize", "labels", "label_map",
                      "slide_match", "features", "ram_budget_gb"},
                     ctx);
  if (!j.contains("name") || !j.contains("root")) {
    throw std::runtime_error(ctx + ": 'name' and 'root' are required");
  }
  read_optional(j, "name", s.name, ctx);
  read_optional(j, "kind", s.kind, ctx);
  read_optional(j, "root", s.root, ctx);
  read_optional(j, "class_count", s.class_count, ctx);
  read_optional(j, "standardize", s.standardize, ctx);
  read_optional(j, "labels", s.labels, ctx);
  read_optional(j, "label_map", s.label_map, ctx);
  read_optional(j, "slide_match", s.slide_match, ctx);
  read_optional(j, "features", s.features, ctx);
  read_optional(j, "ram_budget_gb", s.ram_budget_gb, ctx);
  require_object(s.label_map, ctx + " '" + s.name + "'.label_map");
  for (const auto& item : s.label_map.items()) {
    if (!item.value().is_number_integer() || item.value().get<int>() < 0 ||
        item.value().get<int>() >= s.class_count) {
      throw std::runtime_error(ctx + " '" + s.name + "'.label_map['" + item.key() +
                               "']: expected a class in [0, " + std::to_string(s.class_count) +
                               ")");
    }
  }
  if (s.slide_match != "exact" && s.slide_match != "substring") {
    throw std::runtime_error(ctx + " '" + s.name + "'.slide_match: '" + s.slide_match +
                             "' is not one of exact, substring");
  }
  if (s.features != "auto" && s.features != "pt" && s.features != "h5" && s.features != "packed") {
    throw std::runtime_error(ctx + " '" + s.name + "'.features: '" + s.features +
                             "' is not one of auto, pt, h5, packed");
  }
  if (!(s.ram_budget_gb >= 0.0))
    throw std::runtime_error(ctx + " '" + s.name + "'.ram_budget_gb must be >= 0 (0 = no limit)");
  if (s.kind != "bags" && s.kind != "musk" && s.kind != "survival") {
    throw std::runtime_error(ctx + " '" + s.name + "'.kind: '" + s.kind +
                             "' is not one of bags, musk, survival");
  }
  if (s.class_count < 2)
    throw std::runtime_error(ctx + " '" + s.name + "'.class_count must be >= 2");
}

void to_json(json& j, const SplitSpec& s) {
  j = json{{"protocol", s.protocol},     {"fold_count", s.fold_count},
           {"fold_index", s.fold_index}, {"split_seed", s.split_seed},
           {"val_ratio", s.val_ratio},   {"repetition", s.repetition}};
  if (!s.dir.empty()) j["dir"] = s.dir;  // added later: see JobSpec::id
}

void from_json(const json& j, SplitSpec& s) {
  const std::string ctx = "split";
  require_known_keys(
      j, {"protocol", "fold_count", "fold_index", "split_seed", "val_ratio", "repetition", "dir"},
      ctx);
  read_optional(j, "protocol", s.protocol, ctx);
  read_optional(j, "fold_count", s.fold_count, ctx);
  read_optional(j, "fold_index", s.fold_index, ctx);
  read_optional(j, "split_seed", s.split_seed, ctx);
  read_optional(j, "val_ratio", s.val_ratio, ctx);
  read_optional(j, "repetition", s.repetition, ctx);
  read_optional(j, "dir", s.dir, ctx);
  if (s.protocol != "kfold" && s.protocol != "file" && s.protocol != "legacy") {
    throw std::runtime_error(ctx + ".protocol: '" + s.protocol +
                             "' is not one of kfold, file, legacy");
  }
  if (s.fold_count < 2) throw std::runtime_error(ctx + ".fold_count must be >= 2");
  if (s.fold_index < 0 || s.fold_index >= s.fold_count) {
    throw std::runtime_error(ctx + ".fold_index " + std::to_string(s.fold_index) +
                             " is outside [0, " + std::to_string(s.fold_count) + ")");
  }
  if (!(s.val_ratio >= 0.0 && s.val_ratio < 1.0))
    throw std::runtime_error(ctx + ".val_ratio must be in [0, 1)");
  if (s.protocol == "legacy" && s.val_ratio != 0.0) {
    throw std::runtime_error(
        ctx +
        ".val_ratio must be 0 with protocol legacy (validation is the test fold); "
        "use protocol kfold for a held-out validation set");
  }
}

void to_json(json& j, const ModelSpec& s) {
  j = json{{"name", s.name}, {"options", s.options}};
  if (!s.method.empty()) j["method"] = s.method;  // absent when unset: older ids stay valid
}

void from_json(const json& j, ModelSpec& s) {
  const std::string ctx = "model";
  require_known_keys(j, {"name", "options", "method"}, ctx);
  read_optional(j, "name", s.name, ctx);
  read_optional(j, "options", s.options, ctx);
  read_optional(j, "method", s.method, ctx);
  if (j.contains("method") && s.method.empty())
    throw std::runtime_error(ctx + " '" + s.name + "'.method: must not be empty");
  require_object(s.options, ctx + " '" + s.name + "'.options");
}

void to_json(json& j, const TrainSpec& s) {
  j = json{{"epochs", s.epochs},
           {"lr", s.lr},
           {"weight_decay", s.weight_decay},
           {"schedule", s.schedule},
           {"lr_min", s.lr_min},
           {"warmup_epochs", s.warmup_epochs},
           {"warmup_lr", s.warmup_lr},
           {"early_stopping", s.early_stopping},
           {"patience", s.patience},
           {"stop_epoch", s.stop_epoch},
           {"clip_grad", s.clip_grad},
           {"accumulation", s.accumulation},
           {"loss", s.loss},
           {"surv_alpha", s.surv_alpha},
           {"precision", s.precision},
           {"deterministic", s.deterministic}};
  if (s.ranks != 1) j["ranks"] = s.ranks;  // absent at 1: one-rank jobs keep their ids
}

void from_json(const json& j, TrainSpec& s) {
  const std::string ctx = "train";
  require_known_keys(j,
                     {"epochs", "lr", "weight_decay", "schedule", "lr_min", "warmup_epochs",
                      "warmup_lr", "early_stopping", "patience", "stop_epoch", "clip_grad",
                      "accumulation", "loss", "surv_alpha", "precision", "deterministic", "ranks"},
                     ctx);
  read_optional(j, "epochs", s.epochs, ctx);
  read_optional(j, "lr", s.lr, ctx);
  read_optional(j, "weight_decay", s.weight_decay, ctx);
  read_optional(j, "schedule", s.schedule, ctx);
  read_optional(j, "lr_min", s.lr_min, ctx);
  read_optional(j, "warmup_epochs", s.warmup_epochs, ctx);
  read_optional(j, "warmup_lr", s.warmup_lr, ctx);
  read_optional(j, "early_stopping", s.early_stopping, ctx);
  read_optional(j, "patience", s.patience, ctx);
  read_optional(j, "stop_epoch", s.stop_epoch, ctx);
  read_optional(j, "clip_grad", s.clip_grad, ctx);
  read_optional(j, "accumulation", s.accumulation, ctx);
  read_optional(j, "loss", s.loss, ctx);
  read_optional(j, "surv_alpha", s.surv_alpha, ctx);
  read_optional(j, "precision", s.precision, ctx);
  read_optional(j, "deterministic", s.deterministic, ctx);
  read_optional(j, "ranks", s.ranks, ctx);
  if (s.epochs < 1) throw std::runtime_error(ctx + ".epochs must be >= 1");
  if (!(s.lr > 0.0)) throw std::runtime_error(ctx + ".lr must be > 0");
  if (s.weight_decay < 0.0) throw std::runtime_error(ctx + ".weight_decay must be >= 0");
  if (s.schedule != "cosine" && s.schedule != "step" && s.schedule != "const") {
    throw std::runtime_error(ctx + ".schedule: '" + s.schedule +
                             "' is not one of cosine, step, const");
  }
  if (!(s.lr_min >= 0.0 && s.lr_min <= s.lr))
    throw std::runtime_error(ctx + ".lr_min must be in [0, lr]");
  if (s.warmup_epochs < 0 || s.warmup_epochs >= s.epochs) {
    throw std::runtime_error(ctx + ".warmup_epochs must be in [0, epochs)");
  }
  if (!(s.warmup_lr > 0.0)) throw std::runtime_error(ctx + ".warmup_lr must be > 0");
  if (s.patience < 1) throw std::runtime_error(ctx + ".patience must be >= 1");
  if (s.stop_epoch < 0) throw std::runtime_error(ctx + ".stop_epoch must be >= 0");
  if (s.clip_grad < 0.0) throw std::runtime_error(ctx + ".clip_grad must be >= 0 (0 = off)");
  if (s.accumulation < 1) throw std::runtime_error(ctx + ".accumulation must be >= 1");
  if (s.ranks < 1)
    throw std::runtime_error(ctx + ".ranks must be >= 1, got " + std::to_string(s.ranks));
  if (s.loss != "auto" && s.loss != "ce" && s.loss != "nll_surv") {
    throw std::runtime_error(ctx + ".loss: '" + s.loss + "' is not one of auto, ce, nll_surv");
  }
  if (s.precision != "fp32" && s.precision != "bf16") {
    throw std::runtime_error(ctx + ".precision: '" + s.precision + "' is not one of fp32, bf16");
  }
  if (!(s.surv_alpha >= 0.0 && s.surv_alpha <= 1.0))
    throw std::runtime_error(ctx + ".surv_alpha must be in [0, 1]");
}

void to_json(json& j, const JobSpec& s) {
  j = json{{"dataset", s.dataset},
           {"model", s.model},
           {"train", s.train},
           {"split", s.split},
           {"seed", s.seed}};
}

void from_json(const json& j, JobSpec& s) {
  require_known_keys(j, {"dataset", "model", "train", "split", "seed"}, "job");
  if (!j.contains("dataset")) throw std::runtime_error("job: 'dataset' is required");
  s.dataset = j.at("dataset").get<DatasetSpec>();
  read_optional(j, "model", s.model, "job");
  read_optional(j, "train", s.train, "job");
  read_optional(j, "split", s.split, "job");
  read_optional(j, "seed", s.seed, "job");
}

namespace {
/// The spec as hashed: without what decides only whether a job can run, never what it computes.
json hashed_json(const JobSpec& spec) {
  json j = spec;
  j["dataset"].erase("ram_budget_gb");
  return j;
}
}  // namespace

std::string JobSpec::id() const { return short_hash(hashed_json(*this)); }

json JobSpec::config_json() const {
  json j = hashed_json(*this);
  j.erase("seed");
  for (const char* key : {"fold_index", "split_seed", "repetition"}) j["split"].erase(key);
  return j;
}

std::string JobSpec::config_id() const { return short_hash(config_json()); }

std::string JobSpec::replicate_key() const {
  return "seed=" + std::to_string(seed) + ",split_seed=" + std::to_string(split.split_seed) +
         ",repetition=" + std::to_string(split.repetition);
}

json result_json_without_spec(const JobResult& r) {
  return json{{"job_id", r.job_id},   {"config_id", r.config_id}, {"status", r.status},
              {"error", r.error},     {"metrics", r.metrics},     {"inputs", r.inputs},
              {"history", r.history}, {"runtime", r.runtime}};
}

void to_json(json& j, const JobResult& r) {
  j = result_json_without_spec(r);
  j["spec"] = r.spec;
}

namespace {
void read_result_fields(const json& j, JobResult& r) {
  r.job_id = j.at("job_id").get<std::string>();
  r.config_id = j.at("config_id").get<std::string>();
  r.status = j.at("status").get<std::string>();
  r.error = j.at("error").get<std::string>();
  r.metrics = j.at("metrics");
  r.inputs = j.at("inputs");
  r.history = j.at("history");
  r.runtime = j.at("runtime");
  if (r.status != "ok" && r.status != "failed" && r.status != "interrupted" &&
      r.status != "quarantined") {
    throw std::runtime_error("result " + r.job_id + ": status '" + r.status +
                             "' is not one of ok, failed, interrupted, quarantined");
  }
}
}  // namespace

void from_json(const json& j, JobResult& r) {
  require_known_keys(
      j,
      {"job_id", "config_id", "status", "error", "spec", "metrics", "inputs", "history", "runtime"},
      "result");
  read_result_fields(j, r);
  r.spec = j.at("spec").get<JobSpec>();
}

JobResult result_from_json_without_spec(const json& j, const JobSpec& spec) {
  require_known_keys(
      j, {"job_id", "config_id", "status", "error", "metrics", "inputs", "history", "runtime"},
      "result (as a worker reports it)");
  JobResult r;
  read_result_fields(j, r);
  r.spec = spec;
  return r;
}

}  // namespace mil
