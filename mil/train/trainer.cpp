#include "mil/train/trainer.h"

#include <torch/nn/functional/loss.h>
#include <torch/nn/utils/clip_grad.h>
#include <torch/optim/adam.h>
#include <torch/utils.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <random>

#include <nlohmann/json.hpp>

#include "mil/data/splits.h"
#include "mil/eval/metrics.h"
#include "mil/models/mil_model.h"
#include "mil/runtime/autocast.h"
#include "mil/train/checkpoint.h"
#include "mil/train/gradient_sync.h"
#include "mil/train/survival.h"

namespace mil {
namespace {

using nlohmann::json;
constexpr double kPi = 3.14159265358979323846;

StateDict snapshot_state(const MilModelImpl& model) {
  StateDict out;
  for (const auto& p : model.named_parameters())
    out.emplace_back(p.key(), p.value().detach().clone());
  for (const auto& b : model.named_buffers()) out.emplace_back(b.key(), b.value().detach().clone());
  return out;
}

void restore_state(MilModelImpl& model, const StateDict& state) {
  torch::NoGradGuard no_grad;
  auto params = model.named_parameters();
  auto buffers = model.named_buffers();
  for (const auto& [name, value] : state) {
    if (auto* p = params.find(name)) {
      p->copy_(value);
    } else if (auto* b = buffers.find(name)) {
      b->copy_(value);
    } else {
      throw std::runtime_error("best weights name '" + name + "', which the model does not have");
    }
  }
}

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups())
    static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);
}

}  // namespace

void to_json(json& j, const EpochRecord& r) {
  j = json{{"epoch", r.epoch},
           {"loss", r.mean_loss},  // NaN (no finite step) is written as null
           {"lr", r.lr},
           {"seconds", r.seconds},
           {"instances_per_second", r.instances_per_second},
           {"skipped_steps", r.skipped_steps},
           {"val", r.val},
           {"improved", r.improved}};
  if (!r.train_stats.empty()) j["train_stats"] = r.train_stats;
  if (!r.teacher_val.empty()) {
    j["teacher_val"] = r.teacher_val;
    j["teacher_improved"] = r.teacher_improved;
  }
}

void from_json(const json& j, EpochRecord& r) {
  r.epoch = j.at("epoch").get<int>();
  r.mean_loss = j.at("loss").is_null() ? NAN : j.at("loss").get<double>();
  r.lr = j.at("lr").get<double>();
  r.seconds = j.at("seconds").get<double>();
  r.instances_per_second = j.at("instances_per_second").get<double>();
  r.skipped_steps = j.at("skipped_steps").get<int>();
  r.val = j.at("val").get<std::map<std::string, double>>();
  r.improved = j.at("improved").get<bool>();
  if (j.contains("train_stats"))
    r.train_stats = j.at("train_stats").get<std::map<std::string, double>>();
  if (j.contains("teacher_val"))
    r.teacher_val = j.at("teacher_val").get<std::map<std::string, double>>();
  r.teacher_improved = j.value("teacher_improved", false);
}

void seed_torch(std::uint64_t seed) { torch::manual_seed(seed); }

std::string selection_metric_for(int class_count, bool survival) {
  if (survival) return "c_index";
  return class_count == 2 ? "auc" : "balanced_accuracy";
}

std::map<std::string, double> evaluate(const Predictions& p, bool survival) {
  if (!survival) return classification_metrics(p.probabilities, p.labels);
  std::map<std::string, double> out;
  const double c_index = harrell_c_index(p.risks, p.event_times, p.event_observed);
  if (!std::isnan(c_index)) out["c_index"] = c_index;
  return out;
}

double learning_rate_at(const TrainSpec& spec, int epoch) {
  if (spec.warmup_epochs > 0 && epoch < spec.warmup_epochs) {
    return spec.warmup_lr + epoch * (spec.lr - spec.warmup_lr) / spec.warmup_epochs;
  }
  if (spec.schedule == "const") return spec.lr;
  if (spec.schedule == "step") return epoch >= spec.epochs / 2 ? spec.lr * 0.2 : spec.lr;
  return spec.lr_min + 0.5 * (spec.lr - spec.lr_min) * (1.0 + std::cos(kPi * epoch / spec.epochs));
}

bool EarlyStopping::update(int epoch, double score) {
  if (score >= best_) {
    best_ = score;
    counter_ = 0;
  } else {
    ++counter_;
  }
  return counter_ >= patience_ && epoch > stop_epoch_;
}

namespace {

/// A bag whose features live on `device` (the same bag when they already do).
const Bag& bag_on(const Bag& bag, c10::Device device, Bag& scratch) {
  if (bag.features.device() == device) return bag;
  scratch = bag;
  scratch.features = bag.features.to(device, /*non_blocking=*/false);
  return scratch;
}

/// In a group, local work between two collectives (a forward pass, a callback, a file write) must
/// not throw past the next collective, or the peers would wait in it forever and only an abort of
/// the whole MPI world would free them. So run_local keeps this rank's first failure in `error` for
/// the group's next agreement (agree) and skips further local work until then. Without a group it
/// just runs `local`.
template <typename Fn>
void run_local(GradientSync* sync, std::string& error, Fn&& local) {
  if (sync == nullptr) {
    local();
    return;
  }
  if (!error.empty()) return;
  try {
    local();
  } catch (const std::exception& e) {
    error = *e.what() != '\0' ? e.what() : "an exception without a message";
  } catch (...) {
    error = "an exception that is not a std::exception";
  }
}

/// The group's verdict on the local work since its last agreement: true on every rank when any rank
/// asked to stop (so the group stops at the same step); throws GroupFailure, with the failed rank's
/// error, on every rank when any rank failed. `during` names the place for the message. Alone:
/// `stop`.
template <typename During>
bool agree(GradientSync* sync, bool stop, std::string& error, During&& during) {
  if (sync == nullptr) return stop;
  const std::string failure = agree_on_failure(*sync, error, during(), &stop);
  error.clear();
  if (!failure.empty()) throw GroupFailure(failure);
  return stop;
}

/// `order` when it is a permutation of `train_indices`; otherwise an error naming the epoch.
std::vector<int> checked_epoch_order(std::vector<int> order, const std::vector<int>& train_indices,
                                     int epoch) {
  std::vector<int> sorted_order = order, sorted_indices = train_indices;
  std::sort(sorted_order.begin(), sorted_order.end());
  std::sort(sorted_indices.begin(), sorted_indices.end());
  if (sorted_order != sorted_indices) {
    throw std::invalid_argument("fit: epoch_order(" + std::to_string(epoch) +
                                ") is not a permutation of the training bags");
  }
  return order;
}

/// Sums the epoch's partial counters over the group (each rank trained its own share of the bags).
void reduce_epoch_counters(TrainingState& state, GradientSync* sync) {
  if (!sync) return;
  std::vector<double> v{state.loss_sum, double(state.finite_steps), double(state.skipped_steps),
                        double(state.instances)};
  sync->allreduce_sum(v);
  state.loss_sum = v[0];
  state.finite_steps = int(v[1]);
  state.skipped_steps = int(v[2]);
  state.instances = int64_t(v[3]);
}

}  // namespace

FitResult fit(MilModelImpl& model, const TrainSpec& spec, const std::vector<Bag>& bags,
              const std::vector<int>& train_indices, const std::vector<int>& val_indices,
              std::uint64_t seed, const FitOptions& options) {
  TORCH_CHECK(!train_indices.empty(), "fit: no training bags");
  TORCH_CHECK(spec.accumulation >= 1, "fit: accumulation must be >= 1, got ", spec.accumulation);
  const bool survival = spec.loss == "nll_surv";
  const bool bf16 = spec.precision == "bf16";
  const c10::Device device = options.device;
  GradientSync* const sync =
      options.sync != nullptr && options.sync->size() > 1 ? options.sync : nullptr;
  const int ranks = sync ? sync->size() : 1;
  const int my_rank = sync ? sync->rank() : 0;
  const bool writes_checkpoints = !options.checkpoint_path.empty() && my_rank == 0;
  // Bags per optimizer step over the whole group; bag at position p belongs to rank (p mod group)
  // mod S.
  const std::size_t group = std::size_t(spec.accumulation) * std::size_t(ranks);
  torch::optim::Adam optimizer(model.parameters(),
                               torch::optim::AdamOptions(spec.lr).weight_decay(spec.weight_decay));
  FitResult result;
  TrainingState state;
  state.order = train_indices;
  state.order_rng.seed(seed ^ 0x5851f42d4c957f2dULL);
  const StateDict extra_state = options.objective ? options.objective->extra_state() : StateDict{};
  MilModelImpl* const teacher = options.objective ? options.objective->teacher_model() : nullptr;
  std::string local_error;  // this rank's failure since the group's last agreement (run_local)
  run_local(sync, local_error, [&] {
    if (options.checkpoint_path.empty() || !std::filesystem::exists(options.checkpoint_path))
      return;
    state = read_checkpoint(options.checkpoint_path, options.run_fingerprint, model, optimizer,
                            extra_state);
    result.resumed_from_epoch = state.epoch;
    if (my_rank !=
        0) {  // rank 0's checkpoint holds the group's reduced partial counters: count them once
      state.loss_sum = 0.0;
      state.finite_steps = state.skipped_steps = 0;
      state.instances = 0;
    }
  });
  if (sync) {
    agree(sync, false, local_error, [] { return std::string("while reading the checkpoint"); });
    // Every rank must resume at the same step, or their collectives would not pair up: a rank that
    // found no checkpoint (a results folder that is not shared between nodes) would start over
    // alone. Equal on every rank exactly when (sum x)^2 == R * sum x^2; integers this small sum
    // exactly.
    const double epoch = state.epoch, position = double(state.position);
    std::vector<double> sums{epoch, epoch * epoch, position, position * position};
    sync->allreduce_sum(sums);
    if (sums[0] * sums[0] != ranks * sums[1] || sums[2] * sums[2] != ranks * sums[3]) {
      throw GroupFailure("the job's " + std::to_string(ranks) +
                         " ranks would resume at different steps (this rank: epoch " +
                         std::to_string(state.epoch) + ", bag " + std::to_string(state.position) +
                         " of its checkpoint '" + options.checkpoint_path +
                         "'): every rank must see the same results folder");
    }
    std::vector<at::Tensor> shared;
    for (const auto& p : model.parameters()) shared.push_back(p);
    for (const auto& b : model.buffers()) shared.push_back(b);
    for (const auto& [name, t] : extra_state) shared.push_back(t);
    sync->broadcast_parameters(shared);
  }
  EarlyStopping stopper(spec.patience, spec.stop_epoch);
  stopper.restore(state.stopper_counter, state.stopper_best);
  const auto checkpoint = [&] {
    state.stopper_counter = stopper.counter();
    state.stopper_best = stopper.best();
    if (writes_checkpoints) {
      write_checkpoint(options.checkpoint_path, options.run_fingerprint, state, model, optimizer,
                       extra_state);
    }
  };
  const auto stop_now = [&] { return options.stop_requested && options.stop_requested->load(); };
  const std::vector<at::Tensor> parameters = model.parameters();
  const auto checkpoint_together = [&] {
    run_local(sync, local_error,
              checkpoint);  // only the first rank writes: the others learn how it went
    agree(sync, false, local_error, [] { return std::string("while writing the checkpoint"); });
  };

  model.train();
  optimizer.zero_grad();
  Bag scratch;
  StepReport last_step;  // what on_step reports: the last bag's losses
  while (state.epoch < spec.epochs && !state.stopped_early) {
    const double lr = learning_rate_at(spec, state.epoch);
    set_learning_rate(optimizer, lr);
    if (state.position == 0) {
      if (options.epoch_order) {
        state.order =
            checked_epoch_order(options.epoch_order(state.epoch), train_indices, state.epoch);
      } else {
        deterministic_shuffle(state.order, state.order_rng);
      }
    }
    const auto start = std::chrono::steady_clock::now();
    while (state.position < state.order.size()) {
      const int64_t step =
          int64_t(state.epoch) * int64_t(state.order.size()) + int64_t(state.position);
      const bool mine =
          sync == nullptr || int((state.position % group) % std::size_t(ranks)) == my_rank;
      if (mine)
        run_local(sync, local_error, [&] {
          const Bag& bag = bag_on(bags.at(state.order[state.position]), device, scratch);
          const auto task_loss = [&](const at::Tensor& raw_logits) {
            const at::Tensor logits = raw_logits.to(
                at::kFloat);  // losses in fp32, as the reference computes them outside autocast
            return survival ? survival_nll(logits, bag.label, bag.censored, spec.surv_alpha)
                            : torch::nn::functional::cross_entropy(
                                  logits,
                                  torch::full({1}, bag.label,
                                              torch::dtype(torch::kLong).device(logits.device())));
          };
          at::Tensor loss;
          last_step = StepReport{};
          {
            AutocastGuard autocast(device.type(), bf16);
            if (options.objective) {
              loss = options.objective->loss(bag, step, task_loss);
            } else {
              const MilOutput output = model.forward(bag.features);
              loss = task_loss(output.logits);
              if (options.on_step) last_step.task_loss = loss.item<double>();
              if (const at::Tensor extra = model.auxiliary_loss(output, bag.label);
                  extra.defined()) {
                loss = loss + extra.to(at::kFloat);
                if (options.on_step) last_step.auxiliary_loss = extra.item<double>();
              }
            }
          }
          const double value = loss.item<double>();
          last_step.loss = value;
          state.instances += bag.features.size(0);
          if (std::isfinite(value)) {
            (spec.accumulation > 1 ? loss / spec.accumulation : loss).backward();
            state.loss_sum += value;
            ++state.finite_steps;
          } else {
            ++state.skipped_steps;
          }
        });
      ++state.position;
      if (options.on_bag) {
        run_local(sync, local_error, [&] {
          options.on_bag(state.epoch, int(state.position), int(state.order.size()));
        });
      }
      const bool group_done = state.position % group == 0 || state.position == state.order.size();
      if (group_done) {
        if (sync) sync->allreduce_gradients(parameters);  // every rank takes part, a failed one too
        run_local(sync, local_error, [&] {
          if (spec.clip_grad > 0.0) torch::nn::utils::clip_grad_norm_(parameters, spec.clip_grad);
          optimizer.step();
          optimizer.zero_grad();
          if (options.objective) options.objective->after_optimizer_step(step);
          if (options.on_step) {
            last_step.epoch = state.epoch;
            last_step.bags_done = int(state.position);
            last_step.step = step;
            options.on_step(last_step);
          }
        });
        const bool stop = agree(sync, stop_now(), local_error, [&] {
          return "in epoch " + std::to_string(state.epoch + 1) + " at bag " +
                 std::to_string(state.position) + " of " + std::to_string(state.order.size());
        });
        if (state.position < state.order.size() && stop) {
          state.train_seconds +=
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          reduce_epoch_counters(state, sync);
          checkpoint_together();
          result.interrupted = true;
          break;
        }
      }
    }
    if (result.interrupted) break;

    reduce_epoch_counters(state, sync);
    EpochRecord record;
    record.epoch = state.epoch;
    record.mean_loss = state.finite_steps ? state.loss_sum / state.finite_steps : NAN;
    record.lr = lr;
    record.skipped_steps = state.skipped_steps;
    if (options.objective)
      run_local(sync, local_error,
                [&] { record.train_stats = options.objective->take_epoch_stats(); });
    state.train_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    record.instances_per_second =
        state.train_seconds > 0 ? double(state.instances) / state.train_seconds : 0.0;
    if (!val_indices.empty()) {
      // Every rank predicts and decides (the same weights and predictions give the same decisions);
      // its local work is kept for the agreement at the end of the epoch.
      const Predictions p = predict_sharded(model, bags, val_indices, device, sync);
      run_local(sync, local_error, [&] {
        record.val = evaluate(p, survival);
        state.selection_metric =
            selection_metric_for(int(p.probabilities.front().size()), survival);
        auto it = record.val.find(state.selection_metric);
        const double score = it == record.val.end() ? 0.0 : it->second;
        if (score > state.best_score) {  // strict, from 0, as the reference
          state.best_score = score;
          state.best_epoch = state.epoch;
          state.best_model = snapshot_state(model);
          if (teacher)
            state.teacher_at_best =
                snapshot_state(*teacher);  // its weights now, not at its own best
          record.improved = true;
        }
        state.stopped_early = spec.early_stopping && stopper.update(state.epoch, score);
      });
      if (teacher) {
        // Validated like the student, after it (predict draws nothing from the generator), and
        // selected by its own metric; it never drives early stopping.
        const Predictions t = predict_sharded(*teacher, bags, val_indices, device, sync);
        run_local(sync, local_error, [&] {
          record.teacher_val = evaluate(t, survival);
          const auto found = record.teacher_val.find(state.selection_metric);
          const double teacher_score = found == record.teacher_val.end() ? 0.0 : found->second;
          if (teacher_score > state.teacher_best_score) {
            state.teacher_best_score = teacher_score;
            state.teacher_best_epoch = state.epoch;
            state.teacher_best = snapshot_state(*teacher);
            record.teacher_improved = true;
          }
        });
      }
    }
    record.seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    state.history.push_back(record);
    if (options.on_epoch) run_local(sync, local_error, [&] { options.on_epoch(record); });

    ++state.epoch;
    state.position = 0;
    state.loss_sum = 0.0;
    state.finite_steps = state.skipped_steps = 0;
    state.instances = 0;
    state.train_seconds = 0.0;
    const bool last = state.epoch == spec.epochs || state.stopped_early;
    const bool stop = agree(sync, stop_now(), local_error,
                            [&] { return "at the end of epoch " + std::to_string(state.epoch); }) &&
                      !last;
    if (last || stop || state.epoch % std::max(1, options.checkpoint_every) == 0)
      checkpoint_together();
    if (stop) {
      result.interrupted = true;
      break;
    }
  }
  result.history = std::move(state.history);
  result.stopped_early = state.stopped_early;
  result.selection_metric = state.selection_metric;
  result.best_epoch = state.best_epoch;
  result.best_score = state.best_score;
  result.teacher_best_epoch = state.teacher_best_epoch;
  result.teacher_best_score = state.teacher_best_score;
  if (!result.interrupted && teacher) {
    // Taken before the teacher's own best is restored below: without a best epoch the student keeps
    // its last weights, and the teacher's match them as they are now.
    result.teacher_at_best_epoch =
        state.best_epoch >= 0 ? std::move(state.teacher_at_best) : snapshot_state(*teacher);
  }
  if (!result.interrupted && state.best_epoch >= 0) restore_state(model, state.best_model);
  if (!result.interrupted && teacher && state.teacher_best_epoch >= 0)
    restore_state(*teacher, state.teacher_best);
  return result;
}

Predictions predict(MilModelImpl& model, const std::vector<Bag>& bags,
                    const std::vector<int>& indices, c10::Device device) {
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  Predictions out;
  Bag scratch;
  for (int index : indices) {
    const Bag& bag = bags.at(index);
    const at::Tensor logits =
        model.forward(bag_on(bag, device, scratch).features).logits.to(at::kCPU);
    const at::Tensor probabilities = logits.softmax(1).to(torch::kDouble).contiguous();
    const double* p = probabilities.data_ptr<double>();
    out.probabilities.emplace_back(p, p + probabilities.size(1));
    out.labels.push_back(bag.label);
    out.risks.push_back(survival_risk(logits));
    out.event_times.push_back(bag.event_time);
    out.event_observed.push_back(bag.censored ? 0 : 1);
  }
  model.train(was_training);
  return out;
}

Predictions predict_sharded(MilModelImpl& model, const std::vector<Bag>& bags,
                            const std::vector<int>& indices, c10::Device device,
                            GradientSync* sync) {
  if (sync == nullptr || sync->size() == 1 || indices.empty())
    return predict(model, bags, indices, device);
  const std::size_t n = indices.size();
  const auto ranks = std::size_t(sync->size());
  std::vector<int> mine;
  for (std::size_t i = std::size_t(sync->rank()); i < n; i += ranks) mine.push_back(indices[i]);
  Predictions part;
  std::string error;
  run_local(sync, error, [&] { part = predict(model, bags, mine, device); });
  agree(sync, false, error, [] { return std::string("while predicting"); });
  // A rank may hold no bag: learn the class count from the ranks that do.
  std::vector<double> width{
      part.probabilities.empty() ? 0.0 : double(part.probabilities.front().size()),
      part.probabilities.empty() ? 0.0 : 1.0};
  sync->allreduce_sum(width);
  const auto classes = std::size_t(width[0] / width[1] + 0.5);
  const std::size_t row = classes + 1;  // probabilities, then the survival risk
  std::vector<double> table(n * row, 0.0);
  for (std::size_t j = 0; j < mine.size(); ++j) {
    const std::size_t i = std::size_t(sync->rank()) + j * ranks;
    std::copy(part.probabilities[j].begin(), part.probabilities[j].end(),
              table.begin() + std::ptrdiff_t(i * row));
    table[i * row + classes] = part.risks[j];
  }
  sync->allreduce_sum(table);
  Predictions out;
  for (std::size_t i = 0; i < n; ++i) {
    const Bag& bag = bags.at(indices[i]);
    const auto first = table.begin() + std::ptrdiff_t(i * row);
    out.probabilities.emplace_back(first, first + std::ptrdiff_t(classes));
    out.risks.push_back(table[i * row + classes]);
    out.labels.push_back(bag.label);
    out.event_times.push_back(bag.event_time);
    out.event_observed.push_back(bag.censored ? 0 : 1);
  }
  return out;
}

}  // namespace mil
