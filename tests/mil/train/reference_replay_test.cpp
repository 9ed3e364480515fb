// Our training step against the unchanged reference (tests/fixtures/reference, written by
// make_reference_fixtures.py from DearCaat/MHIM-MIL's own builder and epoch loop). Each case builds
// our model from the same options, loads the same initial weights, and trains it with fit() (and
// the MHIM objective) on the same bags in the same order, handed the random draws the reference
// made; every one of the 8 Adam steps must give the reference's losses, masked instances, student
// tokens, gradient norms, parameters, teacher and GRN queries.
#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/utils.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "mil/mhim/mhim_objective.h"
#include "mil/models/fast_dropout.h"
#include "mil/models/mil_model.h"
#include "mil/models/model_registry.h"
#include "mil/train/trainer.h"
#include "tests/mil/train/reference_fixture.h"
#include "tests/support/temp_dir.h"

namespace mil {
namespace {

using nlohmann::json;
using testing::ReferenceCase;

constexpr double kTolerance = 1e-5;  ///< Relative, on losses, parameters, norms and sums.
/// Relative to its largest element, on the GRN query: an EMA over every step of cross-attention
/// outputs, so float32 rounding accumulates (ours reaches 1.8e-5 after 8 steps of mhim_selfattn;
/// the reference's own float32 run is 1.5e-4 away from its float64 fixture there).
constexpr double kQueryTolerance = 5e-5;

/// Every dropout of `module` at p = 0, as the generator sets every nn.Dropout of the reference.
void silence_dropout(torch::nn::Module& module) {
  for (const auto& m : module.modules()) {
    if (auto* d = dynamic_cast<FastDropoutImpl*>(m.get())) d->p = 0.0;
  }
}

/// Loads every parameter of `model` from `state`, which must hold exactly the model's parameters
/// (the init table has no buffers: CLAM's SVM labels keep their value).
void load_parameters(torch::nn::Module& model, const StateDict& state) {
  const StateDictReport report = load_state_dict(model, state, /*strict=*/false);
  const auto buffers = model.named_buffers();
  for (const auto& name : report.missing)
    EXPECT_TRUE(buffers.contains(name)) << "parameter " << name << " not in the init table";
  ASSERT_TRUE(report.unexpected.empty() && report.mismatched.empty()) << report.describe();
}

/// What our run produced at one optimizer step.
struct ObservedStep {
  StepReport report;
  std::map<std::string, double> grad_norms;
  StateDict student, teacher;
  MhimStepRecord mhim;
};

std::vector<at::Tensor> recorded_subsets(const json& step) {
  std::vector<at::Tensor> subsets;
  for (const auto& ids : step.at("random_subsets")) {
    subsets.push_back(torch::tensor(ids.get<std::vector<int64_t>>(), torch::kLong));
  }
  return subsets;
}

/// Hands the objective, step by step, the GRN orders and mask subsets the reference drew.
MhimDraws recorded_draws(const ReferenceCase& c, const std::size_t& step) {
  MhimDraws draws;
  auto next_subset = std::make_shared<std::size_t>(0);
  auto last_step = std::make_shared<std::size_t>(SIZE_MAX);
  draws.mask_subset = [&c, &step, next_subset, last_step](const at::Tensor& candidates,
                                                          int64_t count) {
    if (*last_step != step) *next_subset = 0, *last_step = step;
    const at::Tensor ids = recorded_subsets(c.step(step)).at((*next_subset)++);
    EXPECT_EQ(ids.numel(), count) << "step " << step;
    EXPECT_TRUE(at::isin(ids, candidates).all().item<bool>())
        << "step " << step << ": the reference's random subset is not among our candidates";
    return ids;
  };
  draws.grn_order = [&c, &step](int64_t survivors) {
    // The recorded order indexes the reference's survivors, which follow Python's set order (B14);
    // ours are ascending. Translate through the instance ids.
    const auto order = c.step(step).at("grn_order").get<std::vector<int64_t>>();
    const auto kept = c.step(step).at("kept_ids").get<std::vector<int64_t>>();
    EXPECT_EQ(static_cast<int64_t>(order.size()), survivors) << "step " << step;
    std::vector<int64_t> ascending = kept, ours;
    std::sort(ascending.begin(), ascending.end());
    for (int64_t position : order) {
      const int64_t id = kept.at(std::size_t(position));
      ours.push_back(std::lower_bound(ascending.begin(), ascending.end(), id) - ascending.begin());
    }
    return torch::tensor(ours, torch::kLong);
  };
  return draws;
}

StateDict parameters_of(const torch::nn::Module& module) {
  StateDict out;
  for (const auto& p : module.named_parameters())
    out.emplace_back(p.key(), p.value().detach().clone());
  return out;
}

/// Trains our model on the case as the reference did and returns what every step produced.
std::vector<ObservedStep> replay(const ReferenceCase& c) {
  torch::manual_seed(0);  // our init, replaced below; no later draw reaches the results
  const json& table = c.meta.at("init");
  testing::TempDir dir;
  const std::string teacher_path = dir / "teacher_init.pt";
  if (c.mhim) {
    const auto without_grn = [](const std::string& name) { return name.rfind("merge.", 0) != 0; };
    write_state_dict(
        testing::hashed_state(table, c.meta.at("teacher_seed").get<std::uint64_t>(), without_grn),
        teacher_path);
  }
  const ModelSpec model_spec = testing::our_model_spec(c, teacher_path);
  const int classes = c.option("n_classes").get<int>();
  auto model = make_model(model_spec, c.bags.front().features.size(1), classes);
  silence_dropout(*model);
  load_parameters(*model,
                  testing::hashed_state(table, c.meta.at("student_seed").get<std::uint64_t>()));

  const TrainSpec train = testing::our_train_spec(c);
  std::unique_ptr<MhimObjective> objective;
  std::size_t step = 0;
  if (c.mhim) {
    const int64_t steps = int64_t(train.epochs) * int64_t(c.bags.size());
    objective =
        std::make_unique<MhimObjective>(dynamic_cast<MhimNetworkImpl&>(*model),
                                        mhim_options_from_json(model_spec.options), 0, steps);
    silence_dropout(objective->teacher());
    objective->set_draws(recorded_draws(c, step));
  }
  std::vector<ObservedStep> observed;
  FitOptions options;
  options.objective = objective.get();
  options.epoch_order = [&c](int epoch) {
    return c.meta.at("epoch_orders").at(epoch).get<std::vector<int>>();
  };
  options.on_bag = [&](int, int, int) {
    ObservedStep s;
    for (const auto& p : model->named_parameters()) {
      if (p.value().grad().defined())
        s.grad_norms[p.key()] = p.value().grad().to(at::kDouble).norm().item<double>();
    }
    observed.push_back(std::move(s));
  };
  options.on_step = [&](const StepReport& report) {
    ObservedStep& s = observed.back();
    s.report = report;
    s.student = parameters_of(*model);
    if (objective) {
      s.teacher = parameters_of(objective->teacher());
      s.mhim = objective->last_step();
    }
    ++step;
  };
  std::vector<int> train_indices(c.bags.size());
  for (std::size_t i = 0; i < train_indices.size(); ++i) train_indices[i] = int(i);
  fit(*model, train, c.bags, train_indices, {}, /*seed=*/0, options);
  return observed;
}

// --- comparisons
// ------------------------------------------------------------------------------------

void expect_relative(double actual, double expected, const std::string& what,
                     double tolerance = kTolerance) {
  EXPECT_LE(std::abs(actual - expected), tolerance * std::max(std::abs(expected), 1e-6))
      << what << ": ours " << actual << ", reference " << expected;
}

/// A parameter's values at the recorded positions, and its norm and sum, against the reference's.
/// An element's error is relative to max(|value|, the tensor's RMS) so that elements near 0 are
/// judged on the tensor's scale.
void expect_parameter(const at::Tensor& ours, const at::Tensor& positions,
                      const at::Tensor& expected, const json& stats, const std::string& what) {
  const at::Tensor flat = ours.reshape({-1}).to(at::kDouble);
  const double norm = stats.at("norm").get<double>();
  expect_relative(flat.norm().item<double>(), norm, what + " norm");
  const double rms = norm / std::sqrt(double(flat.numel()));
  EXPECT_LE(std::abs(flat.sum().item<double>() - stats.at("sum").get<double>()),
            kTolerance * norm * std::sqrt(double(flat.numel())))
      << what << " sum: ours " << flat.sum().item<double>() << ", reference "
      << stats.at("sum").get<double>();
  const at::Tensor mine = flat.index_select(0, positions), theirs = expected.to(at::kDouble);
  const at::Tensor scale = at::clamp_min(theirs.abs(), rms);
  const double worst = ((mine - theirs).abs() / scale).max().item<double>();
  EXPECT_LE(worst, kTolerance) << what << ": worst sampled element off by " << worst
                               << " (relative)";
}

/// Parameters whose gradient is 0 in exact arithmetic: a bias added to every logit of a softmax
/// over instances. The reference's float64 run shows rounding noise of ~1e-17 of the step's largest
/// gradient.
std::set<std::string> zero_gradient_parameters(const ReferenceCase& c) {
  std::set<std::string> names;
  for (const auto& row : c.meta.at("init")) names.insert(row.at("name").get<std::string>());
  for (std::size_t k = 0; k < c.step_count(); ++k) {
    double largest = 0.0;
    for (const auto& [name, norm] : c.step(k).at("grad_norm").items())
      largest = std::max(largest, norm.get<double>());
    for (const auto& [name, norm] : c.step(k).at("grad_norm").items()) {
      if (norm.get<double>() > 1e-12 * largest) names.erase(name);
    }
  }
  return names;
}

/// Every parameter after step `k` against the reference's (`samples`: the sampled values
/// concatenated in init-table order). A zero-gradient parameter is moved by Adam from float32
/// rounding noise (Adam divides by the gradient's own size), by at most lr per step; the
/// reference's float64 noise is far below Adam's epsilon and leaves it in place. So for those the
/// bound is lr per step so far.
void expect_parameters(const ReferenceCase& c, std::size_t k, const StateDict& ours,
                       const at::Tensor& samples, const json& stats, const std::string& what) {
  const c10::IValue index = testing::dict_at(c.samples, "sample_index");
  const std::set<std::string> zero_gradient = zero_gradient_parameters(c);
  std::map<std::string, at::Tensor> by_name(ours.begin(), ours.end());
  ASSERT_EQ(by_name.size(), stats.size()) << what << ": parameter count";
  int64_t offset = 0;
  for (const auto& row : c.meta.at("init")) {
    const std::string name = row.at("name").get<std::string>();
    const at::Tensor positions = testing::dict_at(index, name).toTensor();
    const at::Tensor expected = samples.narrow(0, offset, positions.numel());
    offset += positions.numel();
    ASSERT_TRUE(by_name.count(name)) << what << ": we have no parameter " << name;
    if (zero_gradient.count(name)) {
      const double moved =
          (by_name.at(name).reshape({-1}).index_select(0, positions).to(at::kDouble) - expected)
              .abs()
              .max()
              .item<double>();
      EXPECT_LE(moved, c.option("lr").get<double>() * double(k + 1))
          << what << " " << name << " (zero gradient)";
      continue;
    }
    expect_parameter(by_name.at(name), positions, expected, stats.at(name), what + " " + name);
  }
  EXPECT_EQ(offset, samples.numel()) << what;
}

void expect_mhim_step(const ReferenceCase& c, const json& ref, const ObservedStep& s,
                      const c10::IValue& sample, const std::string& at) {
  EXPECT_EQ(s.mhim.masked, ref.at("masked_ids").get<std::vector<int64_t>>())
      << at << " masked instances";
  EXPECT_EQ(s.mhim.student_tokens, ref.at("student_tokens").get<int64_t>())
      << at << " student tokens";
  EXPECT_EQ(s.mhim.instances, ref.at("instances").get<int64_t>()) << at;
  expect_relative(s.mhim.task_loss, ref.at("task_loss"), at + " task loss");
  expect_relative(s.mhim.consistency_loss, ref.at("aux_loss"), at + " consistency loss");
  const at::Tensor query = testing::dict_at(sample, "grn_query").toTensor();
  const at::Tensor ours = [&] {
    for (const auto& [name, value] : s.student)
      if (name == "merge.global_q_mm") return value;
    return at::Tensor();
  }();
  ASSERT_TRUE(ours.defined()) << at << ": no GRN query";
  const double error = (ours - query).abs().max().item<double>() / query.abs().max().item<double>();
  EXPECT_LE(error, kQueryTolerance) << at << " GRN query after its EMA";
}

void expect_step(const ReferenceCase& c, std::size_t k, const ObservedStep& s) {
  const json& ref = c.step(k);
  const std::string at = c.name + " step " + std::to_string(k);
  EXPECT_EQ(s.report.epoch, ref.at("epoch").get<int>()) << at;
  expect_relative(s.report.loss, ref.at("loss"), at + " loss");
  if (!c.mhim) {
    expect_relative(s.report.task_loss, ref.at("task_loss"), at + " task loss");
    const double aux_alpha = c.option("aux_alpha").get<double>();
    if (aux_alpha > 0.0)
      expect_relative(s.report.auxiliary_loss, aux_alpha * ref.at("aux_loss").get<double>(),
                      at + " auxiliary loss");
  }
  const json& grads = ref.at("grad_norm");
  EXPECT_EQ(s.grad_norms.size(), grads.size()) << at << ": parameters with a gradient";
  const std::set<std::string> zero_gradient = zero_gradient_parameters(c);
  double largest = 0.0;
  for (const auto& [name, norm] : s.grad_norms) largest = std::max(largest, norm);
  for (const auto& [name, norm] : s.grad_norms) {
    if (!grads.contains(name)) {
      ADD_FAILURE() << at << ": " << name << " has a gradient here, none in the reference";
    } else if (zero_gradient.count(name)) {
      EXPECT_LE(norm, 1e-6 * largest)
          << at << ": " << name << "'s gradient is 0 in exact arithmetic";
    } else {
      expect_relative(norm, grads.at(name), at + " gradient norm of " + name);
    }
  }
  const c10::IValue sample = testing::dict_at(c.samples, "steps").toList().get(k);
  expect_parameters(c, k, s.student, testing::dict_at(sample, "student").toTensor(),
                    ref.at("param"), at + " student");
  if (c.mhim) {
    expect_parameters(c, k, s.teacher, testing::dict_at(sample, "teacher").toTensor(),
                      ref.at("teacher"), at + " teacher");
    expect_mhim_step(c, ref, s, sample, at);
  }
}

class ReferenceReplay : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceReplay, EveryAdamStepMatchesTheReference) {
  const ReferenceCase c = testing::load_reference_case(GetParam());
  const std::vector<ObservedStep> observed = replay(c);
  ASSERT_EQ(observed.size(), c.step_count());
  for (std::size_t k = 0; k < observed.size(); ++k) expect_step(c, k, observed[k]);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ReferenceReplay,
    ::testing::Values("abmil", "gabmil", "transmil", "dsmil", "clam_sb", "clam_mb", "dtfd",
                      "meanmil", "maxmil", "abmil_survival", "mhim_attn", "mhim_selfattn",
                      "mhim_dsmil", "mhim_attn_survival", "mhim_v1_attn", "mhim_v1_selfattn"),
    [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace mil
