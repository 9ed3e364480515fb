// The model catalogue (mil/core/model_catalog.h) and its builders (mil/models/model_registry.h):
// every model listed is built, every model built is listed, options are checked against the
// catalogue's keys, and each model gets the training objective its entry names.
#include "mil/models/model_registry.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "mil/core/model_catalog.h"
#include "mil/train/trainer.h"
#include "tests/support/expect_throw.h"

namespace mil {
namespace {

/// Options that make `name` buildable on its own: MHIM needs to be told where its teacher starts.
nlohmann::json minimal_options(const ModelInfo& info) {
  if (info.objective == ObjectiveKind::kMhim) return {{"teacher_init", "random"}};
  return nlohmann::json::object();
}

TEST(ModelRegistry, BuildsExactlyTheModelsOfTheCatalogue) {
  std::set<std::string> listed;
  for (const ModelInfo& info : model_catalog()) listed.insert(info.name);
  const std::vector<std::string> built = buildable_models();
  EXPECT_EQ(std::set<std::string>(built.begin(), built.end()), listed);
  EXPECT_EQ(listed.size(), model_catalog().size()) << "a name is listed twice";
}

TEST(ModelRegistry, EveryCatalogueModelBuildsAndRunsOneBag) {
  const at::Tensor bag = at::randn({7, 16});
  for (const ModelInfo& info : model_catalog()) {
    SCOPED_TRACE(info.name);
    const auto model = make_model(ModelSpec{info.name, minimal_options(info)}, 16, 2);
    model->eval();
    const MilOutput out = model->forward(bag);
    EXPECT_EQ(out.logits.sizes(), (at::IntArrayRef{1, 2}));
  }
}

TEST(ModelRegistry, RejectsAnOptionOutsideTheCatalogueEntryListingTheAllowedKeys) {
  for (const ModelInfo& info : model_catalog()) {
    SCOPED_TRACE(info.name);
    nlohmann::json options = minimal_options(info);
    options["no_such_option"] = 1;
    MIL_EXPECT_THROW_WITH(make_model(ModelSpec{info.name, options}, 16, 2),
                          "unknown key 'no_such_option' (allowed: " + info.option_keys.front());
  }
}

TEST(ModelRegistry, UnknownModelIsAnErrorListingTheCatalogue) {
  MIL_EXPECT_THROW_WITH(make_model(ModelSpec{"rrtmil", nlohmann::json::object()}, 16, 2),
                        "unknown model 'rrtmil' (available: abmil, gabmil, transmil");
}

TEST(ModelRegistry, OnlyMhimGetsAnObjectiveAndItCarriesATeacher) {
  for (const ModelInfo& info : model_catalog()) {
    SCOPED_TRACE(info.name);
    const ModelSpec spec{info.name, minimal_options(info)};
    const auto model = make_model(spec, 16, 2);
    const auto objective = make_training_objective(spec, *model, ObjectiveSetup{0, 10, ""});
    EXPECT_EQ(objective != nullptr, info.name == "mhim");
    if (objective) {
      EXPECT_NE(objective->teacher_model(), nullptr);
      EXPECT_TRUE(objective->input_files().empty()) << "a random teacher reads no file";
    }
  }
}

TEST(ModelRegistry, AnObjectiveForAModelOfAnotherKindIsRefusedNamingIt) {
  const ModelSpec mhim{"mhim", {{"teacher_init", "random"}}};
  const auto abmil = make_model(ModelSpec{"abmil", nlohmann::json::object()}, 16, 2);
  MIL_EXPECT_THROW_WITH(make_training_objective(mhim, *abmil, {}),
                        "model 'mhim' did not build an MHIM network");
}

TEST(ModelCatalogue, AbmilFlopsAreTheEmbeddingAttentionAndPoolingMultiplyAdds) {
  // Per instance at D = 1024: embedding 1024·512, attention 512·128 + 128·1 (tanh not counted),
  // pooling 512; FLOPs = 2 x multiply-adds.
  const double per_instance = 2.0 * (1024 * 512 + 512 * 128 + 128 + 512);
  EXPECT_DOUBLE_EQ(model_info("abmil").forward_flops(10, 1024), 10 * per_instance);
  EXPECT_EQ(model_info("dsmil").forward_flops, nullptr) << "not written down: no number";
}

TEST(ModelCatalogue, MhimAcceptsEveryNetworkKeyOfMhimPure) {
  const auto& network = model_info("mhim_pure").option_keys;
  const auto& mhim = model_info("mhim").option_keys;
  for (const std::string& key : network) {
    EXPECT_NE(std::find(mhim.begin(), mhim.end(), key), mhim.end()) << key;
  }
  EXPECT_GT(mhim.size(), network.size());
}

}  // namespace
}  // namespace mil
