#include "mil/mhim/mhim_objective.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <stdexcept>

#include <ATen/ATen.h>
#include <torch/utils.h>
#include <nlohmann/json.hpp>

#include "mil/core/mhim_jobs.h"
#include "mil/core/model_catalog.h"
#include "mil/core/specs.h"
#include "mil/data/instance_labels.h"
#include "mil/eval/instance_metrics.h"
#include "mil/models/state_dict.h"

namespace mil {

MhimOptions mhim_options_from_json(const nlohmann::json& j) {
  require_known_keys(j, model_info("mhim").option_keys, "model 'mhim'.options");
  MhimOptions o;
  const auto ratio = [&](const char* key, double& value) {
    if (!j.contains(key)) return;
    value = j.at(key).get<double>();
    if (!(value >= 0.0 && value < 1.0))
      throw std::runtime_error(std::string("model 'mhim'.options.") + key + " must be in [0, 1)");
  };
  ratio("mask_ratio", o.mask.random_ratio);
  ratio("mask_ratio_l", o.mask.low_ratio);
  ratio("mask_ratio_h", o.mask.high_ratio);
  if (j.contains("mask_ratio_hr")) o.mask.high_random_ratio = j.at("mask_ratio_hr").get<double>();
  if (!(o.mask.high_random_ratio > 0.0 && o.mask.high_random_ratio <= 1.0)) {
    throw std::runtime_error(
        "model 'mhim'.options.mask_ratio_hr must be in (0, 1] (the mask ratio is divided by it)");
  }
  if (j.contains("mrh_sche")) o.mask_ratio_decay = j.at("mrh_sche").get<bool>();
  if (j.contains("attn2score")) o.class_aware_scores = j.at("attn2score").get<bool>();
  if (j.contains("temp_t")) o.temp_t = j.at("temp_t").get<double>();
  if (!(o.temp_t > 0.0)) throw std::runtime_error("model 'mhim'.options.temp_t must be > 0");
  if (j.contains("main_alpha")) o.main_alpha = j.at("main_alpha").get<double>();
  if (j.contains("aux_alpha")) o.aux_alpha = j.at("aux_alpha").get<double>();
  if (o.main_alpha < 0.0 || o.aux_alpha < 0.0)
    throw std::runtime_error("model 'mhim'.options: loss weights must be >= 0");
  if (j.contains("mm")) o.momentum = j.at("mm").get<double>();
  if (!(o.momentum >= 0.0 && o.momentum <= 1.0))
    throw std::runtime_error("model 'mhim'.options.mm must be in [0, 1]");
  if (j.contains("mm_sche")) o.momentum_ramp = j.at("mm_sche").get<bool>();
  if (j.contains("teacher_init")) o.teacher_init = j.at("teacher_init").get<std::string>();
  if (j.contains("teacher_epoch")) o.teacher_epoch = j.at("teacher_epoch").get<std::string>();
  if (o.teacher_epoch != "best" && o.teacher_epoch != "last") {
    throw std::runtime_error("model 'mhim'.options.teacher_epoch: '" + o.teacher_epoch +
                             "' is not one of best, last");
  }
  if (o.teacher_epoch == "last" && o.teacher_init != kTeacherFromBaseline) {
    throw std::runtime_error(
        "model 'mhim'.options.teacher_epoch 'last' needs teacher_init 'baseline' (the sweep's "
        "baseline job writes its last weights; a checkpoint file is taken as it is)");
  }
  if (j.contains("teacher_train_mode"))
    o.teacher_train_mode = j.at("teacher_train_mode").get<bool>();
  if (j.contains("student_init")) o.student_init = j.at("student_init").get<std::string>();
  if (j.contains("mask_stats")) o.mask_stats = j.at("mask_stats").get<bool>();
  if (o.student_init != "none" && o.student_init != "fc") {
    throw std::runtime_error("model 'mhim'.options.student_init: '" + o.student_init +
                             "' is not one of none, fc");
  }
  if (o.student_init == "fc" && o.teacher_init == "random") {
    throw std::runtime_error(
        "model 'mhim'.options.student_init 'fc' needs a teacher_init checkpoint");
  }
  return o;
}

std::string teacher_checkpoint_path(const std::string& teacher_init, int fold_index) {
  if (teacher_init.size() >= 3 && teacher_init.compare(teacher_init.size() - 3, 3, ".pt") == 0)
    return teacher_init;
  const std::filesystem::path folder(teacher_init);
  const std::string fold = "fold_" + std::to_string(fold_index);
  const std::filesystem::path v2 = folder / (fold + "_model_best.pt"),
                              v1 = folder / (fold + "_model_best_auc.pt");
  return (!std::filesystem::exists(v2) && std::filesystem::exists(v1) ? v1 : v2).string();
}

void load_mhim_checkpoint(MhimNetworkImpl& network, const std::string& path) {
  if (!std::filesystem::exists(path))
    throw std::runtime_error("MHIM checkpoint '" + path + "' does not exist");
  const StateDict state = from_reference_names(read_state_dict(path));
  StateDictReport report = load_state_dict(network, state, /*strict=*/false);
  report.missing.erase(
      std::remove_if(report.missing.begin(), report.missing.end(),
                     [](const std::string& k) { return k.rfind("merge.", 0) == 0; }),
      report.missing.end());
  if (!report.clean()) {
    throw std::runtime_error("MHIM checkpoint '" + path + "' does not fit the network (" +
                             network.options.baseline() + " aggregator): " + report.describe());
  }
}

at::Tensor soft_target_cross_entropy(const at::Tensor& student, const at::Tensor& target,
                                     double temp_t, double temp_s) {
  const int64_t width = student.size(-1);
  const at::Tensor s = student.reshape({-1, width}).to(at::kFloat);
  const at::Tensor t = target.detach().reshape({-1, width}).to(at::kFloat);
  TORCH_CHECK(s.size(0) == t.size(0), "consistency loss: student rows ", s.size(0),
              " vs teacher rows ", t.size(0));
  return (-(t / temp_t).softmax(-1) * (s / temp_s).log_softmax(-1)).sum(-1).mean();
}

MhimObjective::MhimObjective(MhimNetworkImpl& student, MhimOptions options, int fold_index,
                             int64_t total_steps)
    : student_(student), options_(std::move(options)), total_steps_(total_steps) {
  if (options_.teacher_init.empty()) {
    throw std::runtime_error(
        "MHIM needs a teacher: set model option teacher_init to a baseline checkpoint (a .pt file "
        "or a folder of "
        "fold_{k}_model_best.pt), or to \"random\" to start the teacher from the student's init on "
        "purpose");
  }
  MhimNetworkOptions teacher_options = student.options;
  teacher_options.merge_test(false);
  teacher_ = std::make_shared<MhimNetworkImpl>(teacher_options);
  {
    torch::NoGradGuard no_grad;
    const auto from = student.named_parameters();
    for (auto& p : teacher_->named_parameters()) p.value().copy_(*from.find(p.key()));
    const auto from_buffers = student.named_buffers();
    for (auto& b : teacher_->named_buffers()) b.value().copy_(*from_buffers.find(b.key()));
  }
  if (options_.teacher_init != "random") {
    teacher_checkpoint_ = teacher_checkpoint_path(options_.teacher_init, fold_index);
    load_mhim_checkpoint(*teacher_, teacher_checkpoint_);
    if (options_.student_init == "fc") {
      torch::NoGradGuard no_grad;
      const auto from = teacher_->feature->named_parameters();
      for (auto& p : student_.feature->named_parameters()) p.value().copy_(*from.find(p.key()));
    }
  }
  for (auto& p : teacher_->parameters()) p.set_requires_grad(false);
  // The teacher lives where the student does (a CUDA run moves the student before building this).
  const auto student_parameters = student.parameters();
  if (!student_parameters.empty()) teacher_->to(student_parameters.front().device());
}

std::vector<std::pair<std::string, std::string>> MhimObjective::input_files() const {
  if (teacher_checkpoint_.empty()) return {};
  return {{"teacher_checkpoint", teacher_checkpoint_}};
}

double MhimObjective::high_mask_ratio_at(int64_t step) const {
  return options_.mask_ratio_decay
             ? cosine_schedule(options_.mask.high_ratio, 0.0, step, total_steps_)
             : options_.mask.high_ratio;
}

double MhimObjective::momentum_at(int64_t step) const {
  return options_.momentum_ramp ? cosine_schedule(options_.momentum, 1.0, step, total_steps_)
                                : options_.momentum;
}

at::Tensor MhimObjective::loss(const Bag& bag, int64_t step,
                               const std::function<at::Tensor(const at::Tensor&)>& task_loss) {
  // Teacher: full bag, no gradient, train mode by default (a reference quirk we keep), so its
  // dropout is active.
  at::Tensor teacher_embedding, scores;
  {
    torch::NoGradGuard no_grad;
    teacher_->train(options_.teacher_train_mode);
    const AggregatorOutput t =
        teacher_->online_encoder->forward(teacher_->embed(bag.features), /*want_scores=*/true);
    teacher_embedding = t.embedding;
    scores = teacher_->instance_scores(t, options_.class_aware_scores);
  }
  at::Tensor h = student_.embed(bag.features);
  MaskPlan plan = options_.mask;
  plan.high_ratio = high_mask_ratio_at(step);
  const MaskSelection selection = apply_mask_plan(scores, plan, draws_.mask_subset);
  if (options_.mask_stats && bag.instance_labels.defined())
    mask_truth_.add(bag.instance_labels, scores, selection.masked);
  if (!selection.masked.empty()) {
    h = h.index_select(0, torch::tensor(selection.kept, torch::dtype(torch::kLong)).to(h.device()));
  }
  if (student_.merge)
    h = student_.merge->forward(h, draws_.grn_order ? draws_.grn_order(h.size(0)) : at::Tensor());
  const AggregatorOutput s = student_.online_encoder->forward(h, /*want_scores=*/false);
  const at::Tensor task = task_loss(student_.logits_of(s));
  at::Tensor total = options_.main_alpha * task;
  double consistency = 0.0;
  if (options_.aux_alpha > 0.0) {
    const at::Tensor c =
        soft_target_cross_entropy(s.embedding, teacher_embedding, options_.temp_t, options_.temp_s);
    total = total + options_.aux_alpha * c;
    consistency = c.item<double>();
  }
  last_step_.task_loss = task.item<double>();
  last_step_.consistency_loss = consistency;
  last_step_.instances = bag.features.size(0);
  last_step_.student_tokens = h.size(0);
  last_step_.masked = selection.masked;
  consistency_sum_ += consistency;
  task_sum_ += last_step_.task_loss;
  kept_sum_ += static_cast<double>(h.size(0));
  instance_sum_ += static_cast<double>(bag.features.size(0));
  ++bags_;
  return total;
}

void MhimObjective::after_optimizer_step(int64_t step) {
  const double m = momentum_at(step);
  torch::NoGradGuard no_grad;
  const auto student = student_.parameters();
  auto teacher = teacher_->parameters();
  TORCH_CHECK(student.size() == teacher.size(), "teacher and student parameter lists differ");
  for (std::size_t i = 0; i < teacher.size(); ++i)
    teacher[i].mul_(m).add_(student[i].detach(), 1.0 - m);
}

std::vector<std::pair<std::string, at::Tensor>> MhimObjective::extra_state() {
  std::vector<std::pair<std::string, at::Tensor>> state;
  for (const auto& p : teacher_->named_parameters())
    state.emplace_back("teacher." + p.key(), p.value());
  for (const auto& b : teacher_->named_buffers())
    state.emplace_back("teacher." + b.key(), b.value());
  return state;
}

std::map<std::string, double> MhimObjective::take_epoch_stats() {
  std::map<std::string, double> stats;
  if (bags_ > 0) {
    stats["consistency_loss"] = consistency_sum_ / bags_;
    stats["task_loss"] = task_sum_ / bags_;
    stats["student_tokens"] = kept_sum_ / bags_;
    stats["instances"] = instance_sum_ / bags_;
  }
  if (options_.mask_stats) {
    for (const auto& [key, value] : mask_truth_.means()) stats[key] = value;
    mask_truth_ = MaskTruthStats{};
  }
  consistency_sum_ = task_sum_ = kept_sum_ = instance_sum_ = 0.0;
  bags_ = 0;
  return stats;
}

void MaskTruthStats::add(const at::Tensor& codes_tensor, const at::Tensor& scores_tensor,
                         const std::vector<int64_t>& masked_instances) {
  const at::Tensor c = codes_tensor.to(at::kByte).contiguous().cpu();
  const std::vector<std::uint8_t> codes(c.data_ptr<std::uint8_t>(),
                                        c.data_ptr<std::uint8_t>() + c.numel());
  int64_t hard_count = 0, easy_count = 0;
  for (std::uint8_t code : codes) {
    hard_count += code == kRoleHardWitness;
    easy_count += code == kRoleEasyWitness;
  }
  if (hard_count + easy_count == 0) return;  // a negative bag: nothing to mask wrongly here
  int64_t hit_hard = 0, hit_easy = 0;
  for (int64_t i : masked_instances) {
    hit_hard += codes[std::size_t(i)] == kRoleHardWitness;
    hit_easy += codes[std::size_t(i)] == kRoleEasyWitness;
  }
  masked += double(masked_instances.size());
  masked_witnesses += double(hit_hard + hit_easy);
  hard += double(hard_count), masked_hard += double(hit_hard);
  easy += double(easy_count), masked_easy += double(hit_easy);
  if (easy_count == 0) {
    hard_in_hard_only += double(hard_count), masked_hard_in_hard_only += double(hit_hard);
    hard_only_bags += 1;
    hard_only_bags_emptied += hit_hard == hard_count ? 1 : 0;
  }
  const at::Tensor s =
      (scores_tensor.dim() == 2 ? scores_tensor.mean(0) : scores_tensor).to(at::kDouble).cpu();
  const std::vector<double> values(s.data_ptr<double>(), s.data_ptr<double>() + s.numel());
  const double auc_hard = within_slide_instance_auc(values, codes, WitnessKind::kHard);
  const double auc_easy = within_slide_instance_auc(values, codes, WitnessKind::kEasy);
  if (std::isfinite(auc_hard)) teacher_auc_hard_sum += auc_hard, teacher_auc_hard_bags += 1;
  if (std::isfinite(auc_easy)) teacher_auc_easy_sum += auc_easy, teacher_auc_easy_bags += 1;
}

std::map<std::string, double> MaskTruthStats::means() const {
  std::map<std::string, double> out;
  const auto put = [&out](const char* key, double part, double whole) {
    if (whole > 0) out[key] = part / whole;
  };
  put("mask_hard_share", masked_hard, hard);
  put("mask_hard_share_hard_only", masked_hard_in_hard_only, hard_in_hard_only);
  put("mask_easy_share", masked_easy, easy);
  put("mask_witness_precision", masked_witnesses, masked);
  put("mask_hard_only_bags_emptied", hard_only_bags_emptied, hard_only_bags);
  put("teacher_auc_hard", teacher_auc_hard_sum, teacher_auc_hard_bags);
  put("teacher_auc_easy", teacher_auc_easy_sum, teacher_auc_easy_bags);
  return out;
}

}  // namespace mil
