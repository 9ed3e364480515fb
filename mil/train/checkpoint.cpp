#include "mil/train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/optim/optimizer.h>
#include <torch/serialize/input-archive.h>
#include <torch/serialize/output-archive.h>

#include <mutex>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "mil/core/durable_file.h"
#include "mil/models/mil_model.h"

namespace mil {
namespace {

using nlohmann::json;
constexpr int kCheckpointVersion = 1;  ///< Bumped when the checkpoint layout changes.

std::string rng_to_string(const std::mt19937_64& rng) {
  std::ostringstream out;
  out << rng;
  return out.str();
}

/// Named tensors as one sub-archive of a checkpoint, and back in the order written.
void write_named_tensors(torch::serialize::OutputArchive& archive, const std::string& key,
                         const StateDict& tensors) {
  torch::serialize::OutputArchive part;
  for (const auto& [name, value] : tensors) part.write(name, value);
  archive.write(key, part);
}

StateDict read_named_tensors(torch::serialize::InputArchive& archive, const std::string& key) {
  torch::serialize::InputArchive part;
  archive.read(key, part);
  StateDict tensors;
  for (const auto& name : part.keys()) {
    at::Tensor value;
    part.read(name, value);
    tensors.emplace_back(name, value);
  }
  return tensors;
}

/// Everything of `state` besides its tensors, with the layout version and the run's fingerprint.
json meta_of(const TrainingState& state, const std::string& fingerprint) {
  json history = json::array();
  for (const auto& r : state.history) history.push_back(r);
  return {{"version", kCheckpointVersion},
          {"fingerprint", fingerprint},
          {"epoch", state.epoch},
          {"position", state.position},
          {"order", state.order},
          {"order_rng", rng_to_string(state.order_rng)},
          {"loss_sum", state.loss_sum},
          {"finite_steps", state.finite_steps},
          {"skipped_steps", state.skipped_steps},
          {"instances", state.instances},
          {"train_seconds", state.train_seconds},
          {"best_epoch", state.best_epoch},
          {"best_score", state.best_score},
          {"stopped_early", state.stopped_early},
          {"stopper_counter", state.stopper_counter},
          {"stopper_best", state.stopper_best},
          {"selection_metric", state.selection_metric},
          {"teacher_best_epoch", state.teacher_best_epoch},
          {"teacher_best_score", state.teacher_best_score},
          {"has_teacher_at_best", !state.teacher_at_best.empty()},
          {"history", history}};
}

/// The loop fields and the history of `meta` (meta_of's inverse, tensors aside).
void read_loop_fields(const json& meta, TrainingState& state) {
  state.epoch = meta.at("epoch").get<int>();
  state.position = meta.at("position").get<std::size_t>();
  state.order = meta.at("order").get<std::vector<int>>();
  std::istringstream(meta.at("order_rng").get<std::string>()) >> state.order_rng;
  state.loss_sum = meta.at("loss_sum").get<double>();
  state.finite_steps = meta.at("finite_steps").get<int>();
  state.skipped_steps = meta.at("skipped_steps").get<int>();
  state.instances = meta.at("instances").get<int64_t>();
  state.train_seconds = meta.at("train_seconds").get<double>();
  state.best_epoch = meta.at("best_epoch").get<int>();
  state.best_score = meta.at("best_score").get<double>();
  state.stopped_early = meta.at("stopped_early").get<bool>();
  state.stopper_counter = meta.at("stopper_counter").get<int>();
  state.stopper_best = meta.at("stopper_best").get<double>();
  state.selection_metric = meta.at("selection_metric").get<std::string>();
  // Absent from checkpoints written before the teacher was validated: it starts unselected then.
  state.teacher_best_epoch = meta.value("teacher_best_epoch", -1);
  state.teacher_best_score = meta.value("teacher_best_score", 0.0);
  state.history.clear();
  for (const auto& r : meta.at("history")) state.history.push_back(r.get<EpochRecord>());
}

/// The checkpoint's meta record, once its layout version and its run are the expected ones.
json read_meta(torch::serialize::InputArchive& archive, const std::string& path,
               const std::string& fingerprint) {
  c10::IValue meta_value;
  archive.read("meta", meta_value);
  json meta = json::parse(meta_value.toStringRef());
  if (meta.at("version").get<int>() != kCheckpointVersion) {
    throw std::runtime_error("checkpoint '" + path + "' has layout version " +
                             meta.at("version").dump() + ", this build reads " +
                             std::to_string(kCheckpointVersion));
  }
  if (meta.at("fingerprint").get<std::string>() != fingerprint) {
    throw std::runtime_error("checkpoint '" + path + "' belongs to run '" +
                             meta.at("fingerprint").get<std::string>() + "', not '" + fingerprint +
                             "'; remove it to start over");
  }
  return meta;
}

/// Copies the checkpoint's "extra" tensors into those of `extra`, by name.
void restore_extra(torch::serialize::InputArchive& archive, const StateDict& extra) {
  if (extra.empty()) return;
  torch::serialize::InputArchive extra_archive;
  archive.read("extra", extra_archive);
  torch::NoGradGuard no_grad;
  for (const auto& [name, target] : extra) {
    at::Tensor value;
    extra_archive.read(name, value);
    const_cast<at::Tensor&>(target).copy_(value);
  }
}

void write_generator_state(torch::serialize::OutputArchive& archive) {
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  archive.write("torch_rng", generator.get_state());
}

void read_generator_state(torch::serialize::InputArchive& archive) {
  at::Tensor rng_state;
  archive.read("torch_rng", rng_state);
  auto generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(rng_state);
}

}  // namespace

void write_checkpoint(const std::string& path, const std::string& fingerprint,
                      const TrainingState& state, const MilModelImpl& model,
                      const torch::optim::Optimizer& optimizer, const StateDict& extra) {
  torch::serialize::OutputArchive archive;
  torch::serialize::OutputArchive model_archive, optimizer_archive;
  model.save(model_archive);
  write_named_tensors(archive, "extra", extra);
  write_named_tensors(archive, "teacher_best", state.teacher_best);
  write_named_tensors(archive, "teacher_at_best", state.teacher_at_best);
  optimizer.save(optimizer_archive);
  archive.write("model", model_archive);
  write_named_tensors(archive, "best_model", state.best_model);
  archive.write("optimizer", optimizer_archive);
  write_generator_state(archive);
  archive.write("meta", c10::IValue(meta_of(state, fingerprint).dump()));
  const std::string temporary = temporary_path_for(path);
  archive.save_to(temporary);
  replace_file_atomic(temporary, path);
}

TrainingState read_checkpoint(const std::string& path, const std::string& fingerprint,
                              MilModelImpl& model, torch::optim::Optimizer& optimizer,
                              const StateDict& extra) {
  torch::serialize::InputArchive archive;
  archive.load_from(path);
  const json meta = read_meta(archive, path, fingerprint);
  torch::serialize::InputArchive model_archive, optimizer_archive;
  archive.read("model", model_archive);
  archive.read("optimizer", optimizer_archive);
  model.load(model_archive);
  optimizer.load(optimizer_archive);
  TrainingState state;
  state.best_model = read_named_tensors(archive, "best_model");
  restore_extra(archive, extra);
  state.teacher_best = meta.value("teacher_best_epoch", -1) >= 0
                           ? read_named_tensors(archive, "teacher_best")
                           : StateDict{};
  // Checkpoints written before the teacher was kept at the student's best lack it: it is then taken
  // at the student's next improvement.
  state.teacher_at_best = meta.value("has_teacher_at_best", false)
                              ? read_named_tensors(archive, "teacher_at_best")
                              : StateDict{};
  read_generator_state(archive);
  read_loop_fields(meta, state);
  return state;
}

}  // namespace mil
