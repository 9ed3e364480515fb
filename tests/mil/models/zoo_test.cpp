// Behaviour every model of the zoo (dsmil, clam_sb, clam_mb, dtfd, meanmil, maxmil) shares, checked
// through make_model: the reference's state_dict keys (and those of MHIM's dsmil aggregator) and
// parameter counts, gradients against finite differences, seeding, dropout in train vs eval mode,
// the auxiliary-loss default, training through fit() in fp32 and bf16, and strict options.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <set>

#include "mil/data/bag_dataset.h"
#include "mil/mhim/aggregator.h"
#include "mil/models/mil_model.h"
#include "mil/models/model_registry.h"
#include "mil/models/state_dict.h"
#include "mil/train/trainer.h"
#include "tests/support/expect_throw.h"

namespace mil {
namespace {

const std::vector<std::string> kZoo = {"dsmil", "clam_sb", "clam_mb", "dtfd", "meanmil", "maxmil"};

std::shared_ptr<MilModelImpl> build(const std::string& name, nlohmann::json options,
                                    int64_t input_dim, int64_t class_count) {
  ModelSpec spec;
  spec.name = name;
  spec.options = std::move(options);
  return make_model(spec, input_dim, class_count);
}

/// Narrow widths so double-precision finite differences stay cheap; aux_alpha where the model has
/// one.
nlohmann::json small_options(const std::string& name, double aux_alpha) {
  if (name == "dsmil") return {{"embed_dim", 8}, {"query_dim", 4}, {"aux_alpha", aux_alpha}};
  if (name == "clam_sb" || name == "clam_mb") {
    return {{"embed_dim", 8}, {"attention_dim", 4}, {"k_sample", 2}, {"aux_alpha", aux_alpha}};
  }
  if (name == "dtfd") return {{"embed_dim", 8}, {"attention_dim", 4}};
  return {{"hidden_dim", 8}};
}

TEST(Zoo, HasTheReferenceParameterCountsForEveryFeatureWidthAndClassCount) {
  // The reference's counts (instantiating its classes), columns (D, C) = (1024, 2), (1024, 4),
  // (1536, 2), (768, 2), (512, 2).
  const std::vector<std::pair<int64_t, int64_t>> columns = {
      {1024, 2}, {1024, 4}, {1536, 2}, {768, 2}, {512, 2}};
  const std::map<std::string, std::vector<int64_t>> rows = {
      {"dsmil", {872708, 879880, 1134852, 741636, 610564}},
      {"clam_sb", {790791, 793869, 1052935, 659719, 528647}},
      {"clam_mb", {791048, 794640, 1053192, 659976, 528904}},
      {"dtfd", {789254, 791306, 1051398, 658182, 527110}},
      {"meanmil", {525826, 526852, 787970, 394754, 263682}},
      {"maxmil", {525826, 526852, 787970, 394754, 263682}}};
  for (const auto& [name, counts] : rows) {
    for (std::size_t i = 0; i < columns.size(); ++i) {
      const auto [d, c] = columns[i];
      EXPECT_EQ(count_trainable_parameters(*build(name, nlohmann::json::object(), d, c)), counts[i])
          << name << " D=" << d << " C=" << c;
    }
  }
}

TEST(Zoo, NamesStateLikeTheReferenceStateDicts) {
  // The reference's keys (modules/dsmil.py, clam.py, dtfd.py, mean_max.py,
  // mhim_modules/baseline.py); without dropout the reference's Sequentials shift (clam
  // attention_net.2, meanmil head.2).
  const auto names = [](const torch::nn::Module& module) {
    std::set<std::string> out;
    for (const auto& [name, tensor] : state_dict_of(module)) out.insert(name);
    return out;
  };
  const auto zoo = [&](const std::string& name, nlohmann::json options) {
    return names(*build(name, std::move(options), 16, 2));
  };
  const std::set<std::string> b_classifier{"b_classifier.q.0.weight", "b_classifier.q.0.bias",
                                           "b_classifier.q.2.weight", "b_classifier.q.2.bias",
                                           "b_classifier.v.1.weight", "b_classifier.v.1.bias",
                                           "b_classifier.fcc.weight", "b_classifier.fcc.bias"};
  std::set<std::string> dsmil{"feature.0.weight", "feature.0.bias", "i_classifier.weight",
                              "i_classifier.bias"};
  dsmil.insert(b_classifier.begin(), b_classifier.end());
  EXPECT_EQ(zoo("dsmil", nlohmann::json::object()), dsmil);
  std::set<std::string> mhim_dsmil{"i_classifier.0.weight", "i_classifier.0.bias"};
  mhim_dsmil.insert(b_classifier.begin(), b_classifier.end());
  EXPECT_EQ(names(*make_mhim_aggregator("dsmil", 512, 2, nlohmann::json::object())), mhim_dsmil);
  const auto clam = [](const std::string& gate, std::vector<std::string> classifiers) {
    std::set<std::string> keys{"attention_net.0.weight",        "attention_net.0.bias",
                               gate + ".attention_a.0.weight",  gate + ".attention_a.0.bias",
                               gate + ".attention_b.0.weight",  gate + ".attention_b.0.bias",
                               gate + ".attention_c.weight",    gate + ".attention_c.bias",
                               "instance_classifiers.0.weight", "instance_classifiers.0.bias",
                               "instance_classifiers.1.weight", "instance_classifiers.1.bias",
                               "instance_loss_fn.labels"};
    keys.insert(classifiers.begin(), classifiers.end());
    return keys;
  };
  EXPECT_EQ(zoo("clam_sb", nlohmann::json::object()),
            clam("attention_net.3", {"classifiers.weight", "classifiers.bias"}));
  EXPECT_EQ(zoo("clam_mb", {{"dropout", 0.0}}),
            clam("attention_net.2", {"classifiers.0.weight", "classifiers.0.bias",
                                     "classifiers.1.weight", "classifiers.1.bias"}));
  std::set<std::string> dtfd{"classifier.fc.weight", "classifier.fc.bias",
                             "dimReduction.fc1.weight", "UClassifier.classifier.fc.weight",
                             "UClassifier.classifier.fc.bias"};
  for (const std::string prefix : {"attention.", "UClassifier.attention."}) {
    for (const char* key :
         {"attention_V.0.weight", "attention_V.0.bias", "attention_U.0.weight",
          "attention_U.0.bias", "attention_weights.weight", "attention_weights.bias"}) {
      dtfd.insert(prefix + key);
    }
  }
  EXPECT_EQ(zoo("dtfd", nlohmann::json::object()), dtfd);
  EXPECT_EQ(
      zoo("meanmil", nlohmann::json::object()),
      (std::set<std::string>{"head.0.weight", "head.0.bias", "head.3.weight", "head.3.bias"}));
  EXPECT_EQ(
      zoo("maxmil", {{"dropout", 0.0}}),
      (std::set<std::string>{"head.0.weight", "head.0.bias", "head.2.weight", "head.2.bias"}));
}

TEST(Zoo, GradientsMatchCentralFiniteDifferencesInDoublePrecision) {
  for (const std::string& name : kZoo) {
    SCOPED_TRACE(name);
    seed_torch(11);
    auto model =
        build(name, small_options(name, /*aux_alpha=*/0.7), /*input_dim=*/5, /*class_count=*/3);
    model->to(at::kDouble);
    model->eval();
    const at::Tensor bag = at::randn({7, 5}, at::kDouble);
    const at::Tensor weights = at::randn({1, 3}, at::kDouble);
    const int64_t label = 2;
    const auto objective = [&] {
      const MilOutput out = model->forward(bag);
      at::Tensor value = (out.logits * weights).sum();
      if (const at::Tensor aux = model->auxiliary_loss(out, label); aux.defined())
        value = value + aux;
      return value;
    };
    model->zero_grad();
    objective().backward();
    int checked = 0;
    for (auto& item : model->named_parameters()) {
      at::Tensor p = item.value();
      if (!p.grad().defined()) continue;  // DTFD's tier-1 classifier: no path to the output
      // Three entries per parameter tensor: the first, the middle and the last.
      for (int64_t index : {int64_t{0}, p.numel() / 2, p.numel() - 1}) {
        const double eps = 1e-6;
        double plus = 0.0, minus = 0.0;
        {
          torch::NoGradGuard no_grad;
          at::Tensor flat = p.view({-1});
          const double original = flat[index].item<double>();
          flat[index].fill_(original + eps);
          plus = objective().item<double>();
          flat[index].fill_(original - eps);
          minus = objective().item<double>();
          flat[index].fill_(original);
        }
        const double numeric = (plus - minus) / (2 * eps);
        const double analytic = p.grad().view({-1})[index].item<double>();
        EXPECT_NEAR(analytic, numeric, 1e-6 + 1e-5 * std::abs(numeric))
            << item.key() << "[" << index << "]";
        ++checked;
      }
    }
    EXPECT_GE(checked, 12) << "too few parameters reached by the gradient";
  }
}

TEST(Zoo, SameSeedGivesIdenticalWeightsAndTrainingOutputs) {
  for (const std::string& name : kZoo) {
    SCOPED_TRACE(name);
    const auto run = [&] {
      seed_torch(5);
      auto model = build(name, small_options(name, 0.5), 6, 2);
      model->train();
      const at::Tensor bag = at::randn({9, 6});
      return model->forward(bag).logits.detach();
    };
    EXPECT_TRUE(run().equal(run()));
  }
}

TEST(Zoo, DropoutActsInTrainModeOnlyAndEvalIsRepeatable) {
  for (const std::string& name : kZoo) {
    SCOPED_TRACE(name);
    seed_torch(6);
    auto model = build(name, small_options(name, 0.0), 6, 2);
    const at::Tensor bag = at::randn({40, 6});
    model->eval();
    EXPECT_TRUE(model->forward(bag).logits.equal(model->forward(bag).logits));
    model->train();
    EXPECT_FALSE(model->forward(bag).logits.equal(model->forward(bag).logits));
    nlohmann::json options = small_options(name, 0.0);
    options["dropout"] = 0.0;
    auto no_dropout = build(name, options, 6, 2);
    no_dropout->train();
    EXPECT_TRUE(no_dropout->forward(bag).logits.equal(no_dropout->forward(bag).logits));
  }
}

TEST(Zoo, AuxiliaryLossIsOffByDefaultAndPositiveWhenWeighted) {
  seed_torch(7);
  const at::Tensor bag = at::randn({12, 6});
  for (const std::string& name : kZoo) {
    SCOPED_TRACE(name);
    auto plain = build(name, nlohmann::json::object(), 6, 2);
    EXPECT_FALSE(plain->auxiliary_loss(plain->forward(bag), 1).defined());
  }
  for (const std::string name : {"dsmil", "clam_sb", "clam_mb"}) {
    SCOPED_TRACE(name);
    const auto aux_with = [&](double alpha) {
      seed_torch(8);  // same weights for both weights of the loss
      auto model = build(name, {{"aux_alpha", alpha}}, 6, 2);
      model->eval();
      return model->auxiliary_loss(model->forward(bag), 1).item<double>();
    };
    const double unit = aux_with(1.0);
    EXPECT_GT(unit, 0.0);
    EXPECT_NEAR(aux_with(0.3), 0.3 * unit, 1e-6 * unit);
  }
}

TEST(Zoo, TrainsThroughTheTrainerInFp32AndBf16WithTheAuxiliaryLossOn) {
  // fit() runs forward under bf16 autocast and auxiliary_loss outside it; every model must take
  // both.
  seed_torch(9);
  std::vector<Bag> bags;
  for (int i = 0; i < 6; ++i)
    bags.push_back(Bag{"b" + std::to_string(i), at::randn({10 + i, 6}), i % 2});
  for (const char* precision : {"fp32", "bf16"}) {
    for (const std::string& name : kZoo) {
      SCOPED_TRACE(name + " " + std::string(precision));
      auto model = build(name, small_options(name, /*aux_alpha=*/0.5), 6, 2);
      TrainSpec spec;
      spec.epochs = 2;
      spec.early_stopping = false;
      spec.precision = precision;
      const FitResult result = fit(*model, spec, bags, {0, 1, 2, 3, 4, 5}, {}, /*seed=*/1);
      ASSERT_EQ(result.history.size(), 2u);
      EXPECT_TRUE(std::isfinite(result.history.back().mean_loss));
      EXPECT_EQ(result.history.back().skipped_steps, 0);
    }
  }
}

TEST(Zoo, RejectsMisshapenBagsUnknownOptionsAndMistypedValuesNamingThem) {
  for (const std::string& name : kZoo) {
    SCOPED_TRACE(name);
    MIL_EXPECT_THROW_WITH(build(name, {{"bogus", 1}}, 8, 2), "unknown key 'bogus'");
    auto model = build(name, nlohmann::json::object(), 8, 2);
    MIL_EXPECT_THROW_WITH(model->forward(at::randn({2, 3, 8})),
                          "expects [N, D] bag features, got [2, 3, 8]");
    MIL_EXPECT_THROW_WITH(model->forward(at::randn({4, 9})), "expects D = 8, got [4, 9]");
    MIL_EXPECT_THROW_WITH(model->forward(at::randn({0, 8})), "at least one instance");
  }
  MIL_EXPECT_THROW_WITH(build("clam_sb", {{"k_sample", 2.5}}, 8, 2),
                        "k_sample: expected an integer, got 2.5");
  MIL_EXPECT_THROW_WITH(build("dsmil", {{"aux_alpha", "0.5"}}, 8, 2),
                        "aux_alpha: expected a number");
  MIL_EXPECT_THROW_WITH(build("maxmil", {{"activation", "tanh"}}, 8, 2),
                        "activation must be gelu or relu");
  MIL_EXPECT_THROW_WITH(build("dtfd", {{"pseudo_bag_count", 0}}, 8, 2),
                        "pseudo_bag_count must be > 0");
}

}  // namespace
}  // namespace mil
