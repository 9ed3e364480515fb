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

/// Clears the epoch's partial counters that reduce_epoch_counters sums over the group.
void clear_epoch_counters(TrainingState& state) {
  state.loss_sum = 0.0;
  state.finite_steps = state.skipped_steps = 0;
  state.instances = 0;
}

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

/// `metrics[name]`, or 0 (the reference's starting best score) when it was not computed.
double metric_or_zero(const std::map<std::string, double>& metrics, const std::string& name) {
  const auto found = metrics.find(name);
  return found == metrics.end() ? 0.0 : found->second;
}

/// One call of fit(): the run's settings, its TrainingState (what a checkpoint holds) and this
/// rank's place in its group, with one method per stage of the reference's epoch loop: train an
/// epoch, validate and keep the best weights, stop early, checkpoint. The state lets a resumed run
/// re-enter the loop at any bag. In a group, every method runs on every rank in the same order, so
/// their collectives pair up; local work goes through run_local and meets the group in agree.
class FitRun {
 public:
  FitRun(MilModelImpl& model, const TrainSpec& spec, const std::vector<Bag>& bags,
         const std::vector<int>& train_indices, const std::vector<int>& val_indices,
         std::uint64_t seed, const FitOptions& options);
  /// Resumes from the checkpoint when there is one, trains to the end (or to a stop request) and
  /// returns what happened.
  FitResult run();

 private:
  void resume();
  void check_ranks_resume_at_one_step();
  void broadcast_resumed_state();
  bool run_epoch();
  void start_epoch_order();
  bool train_epoch(Clock::time_point start);
  void train_bag(const Bag& stored, int64_t step);
  at::Tensor bag_loss(const Bag& bag, int64_t step);
  bool step_optimizer(int64_t step);
  EpochRecord close_training(double lr, Clock::time_point start);
  void validate(EpochRecord& record);
  void keep_best_student(double score);
  void validate_teacher(EpochRecord& record);
  bool end_epoch();
  void checkpoint();
  bool stop_requested() const;
  FitResult finish();

  MilModelImpl& model_;
  const TrainSpec& spec_;
  const std::vector<Bag>& bags_;
  const std::vector<int>& train_indices_;
  const std::vector<int>& val_indices_;
  const FitOptions& options_;
  const bool survival_;
  const bool bf16_;
  const c10::Device device_;
  GradientSync* const sync_;  ///< options.sync when it has peers, else null.
  const int ranks_;
  const int my_rank_;
  const bool writes_checkpoints_;  ///< Only the group's first rank writes the checkpoint.
  /// Bags per optimizer step over the whole group; the bag at position p belongs to rank
  /// (p mod group_) mod ranks_.
  const std::size_t group_;
  torch::optim::Adam optimizer_;
  const StateDict extra_state_;  ///< The objective's tensors, checkpointed and resumed in place.
  MilModelImpl* const teacher_;  ///< The objective's teacher model, or null.
  EarlyStopping stopper_;
  TrainingState state_;
  FitResult result_;
  std::vector<at::Tensor> parameters_;  ///< The model's, once resumed.
  std::string local_error_;  ///< This rank's failure since the group's last agreement (run_local).
  Bag scratch_;              ///< The bag in training when it had to be copied to device_.
  StepReport last_step_;     ///< What on_step reports: the losses of the step's last bag.
};

FitRun::FitRun(MilModelImpl& model, const TrainSpec& spec, const std::vector<Bag>& bags,
               const std::vector<int>& train_indices, const std::vector<int>& val_indices,
               std::uint64_t seed, const FitOptions& options)
    : model_(model),
      spec_(spec),
      bags_(bags),
      train_indices_(train_indices),
      val_indices_(val_indices),
      options_(options),
      survival_(spec.loss == "nll_surv"),
      bf16_(spec.precision == "bf16"),
      device_(options.device),
      sync_(options.sync != nullptr && options.sync->size() > 1 ? options.sync : nullptr),
      ranks_(sync_ ? sync_->size() : 1),
      my_rank_(sync_ ? sync_->rank() : 0),
      writes_checkpoints_(!options.checkpoint_path.empty() && my_rank_ == 0),
      group_(std::size_t(spec.accumulation) * std::size_t(ranks_)),
      optimizer_(model.parameters(),
                 torch::optim::AdamOptions(spec.lr).weight_decay(spec.weight_decay)),
      extra_state_(options.objective ? options.objective->extra_state() : StateDict{}),
      teacher_(options.objective ? options.objective->teacher_model() : nullptr),
      stopper_(spec.patience, spec.stop_epoch) {
  state_.order = train_indices;
  state_.order_rng.seed(seed ^ 0x5851f42d4c957f2dULL);
}

FitResult FitRun::run() {
  resume();
  stopper_.restore(state_.stopper_counter, state_.stopper_best);
  parameters_ = model_.parameters();
  model_.train();
  optimizer_.zero_grad();
  while (state_.epoch < spec_.epochs && !state_.stopped_early) {
    if (run_epoch()) {
      result_.interrupted = true;
      break;
    }
  }
  return finish();
}

/// Reads the checkpoint, when there is one, on every rank; in a group, checks that all ranks resume
/// at the same step and gives them rank 0's weights.
void FitRun::resume() {
  run_local(sync_, local_error_, [&] {
    if (options_.checkpoint_path.empty() || !std::filesystem::exists(options_.checkpoint_path))
      return;
    state_ = read_checkpoint(options_.checkpoint_path, options_.run_fingerprint, model_, optimizer_,
                             extra_state_);
    result_.resumed_from_epoch = state_.epoch;
    // Rank 0's checkpoint holds the group's reduced partial counters: count them once.
    if (my_rank_ != 0) clear_epoch_counters(state_);
  });
  if (sync_) {
    agree(sync_, false, local_error_, [] { return std::string("while reading the checkpoint"); });
    check_ranks_resume_at_one_step();
    broadcast_resumed_state();
  }
}

/// Every rank must resume at the same step, or their collectives would not pair up: a rank that
/// found no checkpoint (a results folder that is not shared between nodes) would start over alone.
void FitRun::check_ranks_resume_at_one_step() {
  // Equal on every rank exactly when (sum x)^2 == R * sum x^2; integers this small sum exactly.
  const double epoch = state_.epoch, position = double(state_.position);
  std::vector<double> sums{epoch, epoch * epoch, position, position * position};
  sync_->allreduce_sum(sums);
  if (sums[0] * sums[0] != ranks_ * sums[1] || sums[2] * sums[2] != ranks_ * sums[3]) {
    throw GroupFailure("the job's " + std::to_string(ranks_) +
                       " ranks would resume at different steps (this rank: epoch " +
                       std::to_string(state_.epoch) + ", bag " + std::to_string(state_.position) +
                       " of its checkpoint '" + options_.checkpoint_path +
                       "'): every rank must see the same results folder");
  }
}

void FitRun::broadcast_resumed_state() {
  std::vector<at::Tensor> shared;
  for (const auto& p : model_.parameters()) shared.push_back(p);
  for (const auto& b : model_.buffers()) shared.push_back(b);
  for (const auto& [name, t] : extra_state_) shared.push_back(t);
  sync_->broadcast_parameters(shared);
}

/// Trains epoch state_.epoch from state_.position on, validates it and checkpoints when due. True
/// when a stop request ended the run, inside the epoch or at its end.
bool FitRun::run_epoch() {
  const double lr = learning_rate_at(spec_, state_.epoch);
  set_learning_rate(optimizer_, lr);
  if (state_.position == 0) start_epoch_order();
  const auto start = Clock::now();
  if (train_epoch(start)) return true;
  EpochRecord record = close_training(lr, start);
  if (!val_indices_.empty()) validate(record);
  record.seconds = seconds_since(start);
  state_.history.push_back(record);
  if (options_.on_epoch) run_local(sync_, local_error_, [&] { options_.on_epoch(record); });
  return end_epoch();
}

/// The new epoch's bag order: options.epoch_order's when given (replaying a recorded run), else the
/// seeded shuffle of the last one.
void FitRun::start_epoch_order() {
  if (options_.epoch_order) {
    state_.order =
        checked_epoch_order(options_.epoch_order(state_.epoch), train_indices_, state_.epoch);
  } else {
    deterministic_shuffle(state_.order, state_.order_rng);
  }
}

/// Trains the epoch's remaining bags, each rank its share. True when the group stopped on request
/// before the epoch's last bag; the checkpoint then holds the state to resume from.
bool FitRun::train_epoch(Clock::time_point start) {
  while (state_.position < state_.order.size()) {
    const int64_t step =
        int64_t(state_.epoch) * int64_t(state_.order.size()) + int64_t(state_.position);
    const bool mine =
        sync_ == nullptr || int((state_.position % group_) % std::size_t(ranks_)) == my_rank_;
    if (mine) {
      run_local(sync_, local_error_,
                [&] { train_bag(bags_.at(state_.order[state_.position]), step); });
    }
    ++state_.position;
    if (options_.on_bag) {
      run_local(sync_, local_error_, [&] {
        options_.on_bag(state_.epoch, int(state_.position), int(state_.order.size()));
      });
    }
    const bool group_done = state_.position % group_ == 0 || state_.position == state_.order.size();
    if (!group_done) continue;
    const bool stop = step_optimizer(step);
    if (stop && state_.position < state_.order.size()) {
      state_.train_seconds += seconds_since(start);
      reduce_epoch_counters(state_, sync_);
      checkpoint();
      return true;
    }
  }
  return false;
}

/// Forward and backward of one bag; its gradient accumulates until the optimizer step. A bag whose
/// loss is not finite is counted and gives no gradient.
void FitRun::train_bag(const Bag& stored, int64_t step) {
  const Bag& bag = bag_on(stored, device_, scratch_);
  last_step_ = StepReport{};
  const at::Tensor loss = bag_loss(bag, step);
  const double value = loss.item<double>();
  last_step_.loss = value;
  state_.instances += bag.features.size(0);
  if (std::isfinite(value)) {
    (spec_.accumulation > 1 ? loss / spec_.accumulation : loss).backward();
    state_.loss_sum += value;
    ++state_.finite_steps;
  } else {
    ++state_.skipped_steps;
  }
}

/// The bag's training loss under autocast: the objective's when there is one, else the task loss
/// plus the model's auxiliary loss.
at::Tensor FitRun::bag_loss(const Bag& bag, int64_t step) {
  const auto task_loss = [&](const at::Tensor& raw_logits) {
    const at::Tensor logits = raw_logits.to(
        at::kFloat);  // losses in fp32, as the reference computes them outside autocast
    return survival_ ? survival_nll(logits, bag.label, bag.censored, spec_.surv_alpha)
                     : torch::nn::functional::cross_entropy(
                           logits, torch::full({1}, bag.label,
                                               torch::dtype(torch::kLong).device(logits.device())));
  };
  AutocastGuard autocast(device_.type(), bf16_);
  if (options_.objective) return options_.objective->loss(bag, step, task_loss);
  const MilOutput output = model_.forward(bag.features);
  at::Tensor loss = task_loss(output.logits);
  if (options_.on_step) last_step_.task_loss = loss.item<double>();
  if (const at::Tensor extra = model_.auxiliary_loss(output, bag.label); extra.defined()) {
    loss = loss + extra.to(at::kFloat);
    if (options_.on_step) last_step_.auxiliary_loss = extra.item<double>();
  }
  return loss;
}

/// Sums the group's gradients and takes the optimizer step (then the objective's, e.g. the teacher
/// EMA, then on_step). Returns the group's verdict on a stop request.
bool FitRun::step_optimizer(int64_t step) {
  if (sync_) sync_->allreduce_gradients(parameters_);  // every rank takes part, a failed one too
  run_local(sync_, local_error_, [&] {
    if (spec_.clip_grad > 0.0) torch::nn::utils::clip_grad_norm_(parameters_, spec_.clip_grad);
    optimizer_.step();
    optimizer_.zero_grad();
    if (options_.objective) options_.objective->after_optimizer_step(step);
    if (options_.on_step) {
      last_step_.epoch = state_.epoch;
      last_step_.bags_done = int(state_.position);
      last_step_.step = step;
      options_.on_step(last_step_);
    }
  });
  return agree(sync_, stop_requested(), local_error_, [&] {
    return "in epoch " + std::to_string(state_.epoch + 1) + " at bag " +
           std::to_string(state_.position) + " of " + std::to_string(state_.order.size());
  });
}

/// The epoch's record of its training: the group's summed counters, the objective's statistics and
/// the throughput.
EpochRecord FitRun::close_training(double lr, Clock::time_point start) {
  reduce_epoch_counters(state_, sync_);
  EpochRecord record;
  record.epoch = state_.epoch;
  record.mean_loss = state_.finite_steps ? state_.loss_sum / state_.finite_steps : NAN;
  record.lr = lr;
  record.skipped_steps = state_.skipped_steps;
  if (options_.objective) {
    run_local(sync_, local_error_,
              [&] { record.train_stats = options_.objective->take_epoch_stats(); });
  }
  state_.train_seconds += seconds_since(start);
  record.instances_per_second =
      state_.train_seconds > 0 ? double(state_.instances) / state_.train_seconds : 0.0;
  return record;
}

/// Validates the student, keeps its weights on a strict improvement of the selection metric (from
/// 0, as the reference), updates early stopping, then validates the teacher.
void FitRun::validate(EpochRecord& record) {
  // Every rank predicts and decides (the same weights and predictions give the same decisions);
  // its local work is kept for the agreement at the end of the epoch.
  const Predictions p = predict_sharded(model_, bags_, val_indices_, device_, sync_);
  run_local(sync_, local_error_, [&] {
    record.val = evaluate(p, survival_);
    state_.selection_metric = selection_metric_for(int(p.probabilities.front().size()), survival_);
    const double score = metric_or_zero(record.val, state_.selection_metric);
    if (score > state_.best_score) {
      keep_best_student(score);
      record.improved = true;
    }
    state_.stopped_early = spec_.early_stopping && stopper_.update(state_.epoch, score);
  });
  if (teacher_) validate_teacher(record);
}

void FitRun::keep_best_student(double score) {
  state_.best_score = score;
  state_.best_epoch = state_.epoch;
  state_.best_model = snapshot_state(model_);
  // The teacher's weights now, not at its own best: the reference's best student checkpoint holds
  // the teacher of the same epoch.
  if (teacher_) state_.teacher_at_best = snapshot_state(*teacher_);
}

/// The teacher is validated like the student, after it (predict draws nothing from the generator),
/// and selected by its own metric; it never drives early stopping.
void FitRun::validate_teacher(EpochRecord& record) {
  const Predictions t = predict_sharded(*teacher_, bags_, val_indices_, device_, sync_);
  run_local(sync_, local_error_, [&] {
    record.teacher_val = evaluate(t, survival_);
    const double score = metric_or_zero(record.teacher_val, state_.selection_metric);
    if (score > state_.teacher_best_score) {
      state_.teacher_best_score = score;
      state_.teacher_best_epoch = state_.epoch;
      state_.teacher_best = snapshot_state(*teacher_);
      record.teacher_improved = true;
    }
  });
}

/// Moves the state to the next epoch and checkpoints when due (every checkpoint_every epochs, at
/// the end, and on a stop request). True when the group stops on request before the last epoch.
bool FitRun::end_epoch() {
  ++state_.epoch;
  state_.position = 0;
  clear_epoch_counters(state_);
  state_.train_seconds = 0.0;
  const bool last = state_.epoch == spec_.epochs || state_.stopped_early;
  const bool stop = agree(sync_, stop_requested(), local_error_,
                          [&] { return "at the end of epoch " + std::to_string(state_.epoch); }) &&
                    !last;
  if (last || stop || state_.epoch % std::max(1, options_.checkpoint_every) == 0) checkpoint();
  return stop;
}

/// Writes the checkpoint on the first rank; the others learn how it went.
void FitRun::checkpoint() {
  run_local(sync_, local_error_, [&] {
    state_.stopper_counter = stopper_.counter();
    state_.stopper_best = stopper_.best();
    if (writes_checkpoints_) {
      write_checkpoint(options_.checkpoint_path, options_.run_fingerprint, state_, model_,
                       optimizer_, extra_state_);
    }
  });
  agree(sync_, false, local_error_, [] { return std::string("while writing the checkpoint"); });
}

bool FitRun::stop_requested() const {
  return options_.stop_requested && options_.stop_requested->load();
}

/// The result; unless interrupted, the model (and the teacher) then hold their best weights.
FitResult FitRun::finish() {
  result_.history = std::move(state_.history);
  result_.stopped_early = state_.stopped_early;
  result_.selection_metric = state_.selection_metric;
  result_.best_epoch = state_.best_epoch;
  result_.best_score = state_.best_score;
  result_.teacher_best_epoch = state_.teacher_best_epoch;
  result_.teacher_best_score = state_.teacher_best_score;
  if (result_.interrupted) return std::move(result_);
  if (teacher_) {
    // Taken before the teacher's own best is restored below: without a best epoch the student keeps
    // its last weights, and the teacher's match them as they are now.
    result_.teacher_at_best_epoch =
        state_.best_epoch >= 0 ? std::move(state_.teacher_at_best) : snapshot_state(*teacher_);
  }
  if (options_.keep_last_weights) result_.last_weights = snapshot_state(model_);
  if (state_.best_epoch >= 0) restore_state(model_, state_.best_model);
  if (teacher_ && state_.teacher_best_epoch >= 0) restore_state(*teacher_, state_.teacher_best);
  return std::move(result_);
}

}  // namespace

FitResult fit(MilModelImpl& model, const TrainSpec& spec, const std::vector<Bag>& bags,
              const std::vector<int>& train_indices, const std::vector<int>& val_indices,
              std::uint64_t seed, const FitOptions& options) {
  TORCH_CHECK(!train_indices.empty(), "fit: no training bags");
  TORCH_CHECK(spec.accumulation >= 1, "fit: accumulation must be >= 1, got ", spec.accumulation);
  return FitRun(model, spec, bags, train_indices, val_indices, seed, options).run();
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
