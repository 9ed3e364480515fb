// DSMIL stand-alone (MILNet) and MHIM's `dsmil` aggregator: the critical-instance attention, the
// max-instance auxiliary loss, MHIM's averaged logits and its parameter decomposition.
#include "mil/models/dsmil.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/nn/functional/loss.h>
#include <nlohmann/json.hpp>

#include <cmath>

#include "mil/mhim/dsmil_aggregator.h"
#include "mil/train/trainer.h"
#include "tests/support/expect_throw.h"

namespace mil {
namespace {

TEST(Dsmil, AttentionColumnsAreSoftmaxesAndLogitsAreTheConv1dOfTheBagRepresentation) {
  seed_torch(21);
  Dsmil model(DsmilOptions(8, 3));
  model->eval();
  const MilOutput out = model->forward(at::randn({13, 8}));
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(out.instance_logits.sizes(), (std::vector<int64_t>{13, 3}));
  EXPECT_EQ(out.embedding.sizes(), (std::vector<int64_t>{1, 3 * 512}));
  EXPECT_EQ(out.class_attention.sizes(), (std::vector<int64_t>{3, 13}));
  EXPECT_TRUE(at::allclose(out.class_attention.sum(1), at::ones({3}), 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(out.instance_scores, out.class_attention.amax(0)));
  // As the reference's BClassifier: A[:, c] = softmax_i(q(h_i) · q(h_crit(c)) / √128), crit(c) =
  // argmax_i of instance logit c.
  const at::Tensor q = model->b_classifier->q->forward(out.instance_embeddings);
  const at::Tensor critical = q.index_select(0, out.instance_logits.argmax(0));
  EXPECT_TRUE(at::allclose(out.class_attention,
                           (q.mm(critical.t()) / std::sqrt(128.0)).softmax(0).t(), 1e-5, 1e-6));
  // B = Aᵀ v(h), and the Conv1d with kernel d is a dot product of each output class's filter with
  // B.
  const at::Tensor h = out.instance_embeddings;
  const at::Tensor representation = out.class_attention.mm(model->b_classifier->v->forward(h));
  EXPECT_TRUE(at::allclose(out.embedding, representation.reshape({1, -1}), 1e-5, 1e-6));
  const at::Tensor expected_logits =
      at::einsum("ocd,cd->o", {model->b_classifier->fcc->weight, representation}).unsqueeze(0) +
      model->b_classifier->fcc->bias;
  EXPECT_TRUE(at::allclose(out.logits, expected_logits, 1e-4, 1e-5));
}

TEST(Dsmil, SingleInstanceBagPoolsThatInstancesValue) {
  seed_torch(22);
  Dsmil model(DsmilOptions(8, 2));
  model->eval();
  const at::Tensor bag = at::randn({1, 8});
  const MilOutput out = model->forward(bag);
  EXPECT_TRUE(at::allclose(out.class_attention, at::ones({2, 1})));
  const at::Tensor value = model->b_classifier->v->forward(out.instance_embeddings);  // [1, 512]
  EXPECT_TRUE(at::allclose(out.embedding, value.repeat({1, 2}), 1e-5, 1e-6));
}

TEST(Dsmil, AuxiliaryLossIsWeightedCrossEntropyOfTheMaxInstanceLogits) {
  seed_torch(23);
  Dsmil model(DsmilOptions(8, 3).aux_alpha(0.5));
  model->eval();
  const MilOutput out = model->forward(at::randn({10, 8}));
  const at::Tensor max_logits = std::get<0>(out.instance_logits.max(0)).unsqueeze(0);
  const double expected =
      0.5 *
      torch::nn::functional::cross_entropy(max_logits, at::full({1}, 2, at::kLong)).item<double>();
  EXPECT_NEAR(model->auxiliary_loss(out, 2).item<double>(), expected, 1e-6);
  MIL_EXPECT_THROW_WITH(model->auxiliary_loss(out, 3), "label 3 is not in [0, 3)");
}

TEST(MhimDsmil, ParameterCountPlusFeatureAndPredictorIsTheReferenceTotal) {
  // The reference's MHIM-dsmil count (instantiating its MHIM): MHIM's feature Linear(D, 512) + this
  // aggregator + MHIM's (unused) predictor Linear(512, C).
  const std::vector<std::tuple<int64_t, int64_t, int64_t>> columns = {
      {1024, 2, 873734}, {1024, 4, 881932}, {1536, 2, 1135878}, {768, 2, 742662}, {512, 2, 611590}};
  for (const auto& [d, c, total] : columns) {
    const int64_t feature = d * 512 + 512;
    const int64_t predictor = 512 * c + c;
    MhimDsmil aggregator(MhimDsmilOptions(512, c));
    EXPECT_EQ(feature + count_trainable_parameters(*aggregator) + predictor, total)
        << "D=" << d << " C=" << c;
  }
}

TEST(MhimDsmil, LogitsAverageBagAndMaxInstanceLogitsAndScoresComeOnRequest) {
  seed_torch(24);
  auto aggregator = make_mhim_aggregator("dsmil", 32, 3, nlohmann::json::object());
  aggregator->eval();
  const at::Tensor instances = at::randn({11, 32});
  const AggregatorOutput plain = aggregator->forward(instances, /*want_scores=*/false);
  EXPECT_FALSE(plain.attention.defined());
  EXPECT_FALSE(plain.instance_logits.defined());
  EXPECT_EQ(plain.embedding.sizes(), (std::vector<int64_t>{1, 3, 32}));
  const AggregatorOutput scored = aggregator->forward(instances, /*want_scores=*/true);
  auto& dsmil = dynamic_cast<MhimDsmilImpl&>(*aggregator);
  const at::Tensor c = dsmil.i_classifier->forward(instances);
  const DsmilBagOutput bag = dsmil.b_classifier->forward(instances, c);
  EXPECT_TRUE(at::allclose(scored.logits, 0.5 * bag.logits + 0.5 * c.amax(0, true), 1e-5, 1e-6));
  EXPECT_TRUE(at::allclose(scored.instance_logits, c));
  EXPECT_TRUE(at::allclose(scored.attention, bag.attention.amax(1)));
  EXPECT_TRUE(plain.logits.equal(scored.logits));
  MIL_EXPECT_THROW_WITH(make_mhim_aggregator("dsmil", 32, 3, {{"da_act", "relu"}}),
                        "unknown key 'da_act'");
}

}  // namespace
}  // namespace mil
