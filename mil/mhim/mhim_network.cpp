#include "mil/mhim/mhim_network.h"

#include <algorithm>
#include <iterator>
#include <stdexcept>

#include "mil/models/model_init.h"

namespace mil {

MhimNetworkImpl::MhimNetworkImpl(MhimNetworkOptions options_) : options(std::move(options_)) {
  TORCH_CHECK(options.input_dim() > 0 && options.class_count() > 1,
              "MHIM needs input_dim > 0 and class_count > 1, got ", options.input_dim(), " and ",
              options.class_count());
  TORCH_CHECK(options.dropout() >= 0.0 && options.dropout() < 1.0,
              "MHIM dropout must be in [0, 1), got ", options.dropout());
  feature = register_module(
      "feature", embedding_block(options.input_dim(), options.embed_dim(), options.activation(),
                                 /*dropout=*/0.0, "MHIM"));
  dp = register_module("dp", FastDropout(options.dropout()));
  if (options.merge()) {
    merge = register_module("merge", GlobalRecycle(GlobalRecycleOptions(options.embed_dim())
                                                       .tokens(options.merge_k())
                                                       .keep_ratio(options.merge_ratio())
                                                       .momentum(options.merge_mm())));
  }
  online_encoder = register_module(
      "online_encoder", make_mhim_aggregator(options.baseline(), options.embed_dim(),
                                             options.class_count(), options.aggregator_options()));
  predictor =
      register_module("predictor", torch::nn::Linear(options.embed_dim(), options.class_count()));
  reset_parameters();
}

void MhimNetworkImpl::reset_parameters() { xavier_normal_linears(*this); }

at::Tensor MhimNetworkImpl::embed(const at::Tensor& bag) {
  TORCH_CHECK(bag.dim() == 2 && bag.size(1) == options.input_dim(), "MHIM expects [N, ",
              options.input_dim(), "] bag features, got ", bag.sizes());
  TORCH_CHECK(bag.size(0) > 0, "MHIM got an empty bag");
  return dp->forward(feature->forward(bag));
}

at::Tensor MhimNetworkImpl::logits_of(const AggregatorOutput& output) {
  return output.logits.defined() ? output.logits : predictor->forward(output.embedding);
}

MilOutput MhimNetworkImpl::forward(const at::Tensor& bag) {
  at::Tensor h = embed(bag);
  const int64_t n = h.size(0);
  if (merge && options.merge_test() && !is_training()) h = merge->forward(h);
  // Scores cost extra work (TransMIL's attention rows), so training forwards skip them.
  AggregatorOutput aggregated = online_encoder->forward(h, /*want_scores=*/!is_training());
  MilOutput out;
  out.logits = logits_of(aggregated);
  out.embedding = aggregated.embedding;
  out.instance_embeddings = h.narrow(0, 0, n);
  out.instance_logits = aggregated.instance_logits;
  at::Tensor attention = aggregated.attention;
  if (attention.defined() && attention.dim() == 2) attention = attention.mean(0);
  if (attention.defined()) out.instance_scores = attention.narrow(0, 0, n);
  return out;
}

at::Tensor MhimNetworkImpl::instance_scores(const AggregatorOutput& output, bool class_aware) {
  if (!class_aware) {
    TORCH_CHECK(output.attention.defined(),
                "MHIM scores need the aggregator's attention (want_scores)");
    return output.attention;
  }
  if (output.instance_logits.defined())
    return std::get<0>(output.instance_logits.max(1));  // DSMIL: raw logits
  TORCH_CHECK(output.contributions.defined(),
              "class-aware MHIM scores need the aggregator's contributions");
  // u_i = W c_i + b_0 for every class (the reference adds class 0's bias to all: it cancels in
  // the softmax), p_i = softmax_c(u_i), score_i = max_c p_i.
  const at::Tensor u = output.contributions.matmul(predictor->weight.t()) + predictor->bias[0];
  return std::get<0>(u.softmax(1).max(1));
}

StateDict with_reference_aliases(StateDict state) {
  const auto query = std::find_if(state.begin(), state.end(),
                                  [](const auto& e) { return e.first == "merge.global_q_mm"; });
  if (query != state.end()) state.insert(std::next(query), {"merge.global_q", query->second});
  return state;
}

StateDict from_reference_names(StateDict state) {
  const auto named = [&](const std::string& key) {
    return std::find_if(state.begin(), state.end(), [&](const auto& e) { return e.first == key; });
  };
  const auto alias = named("merge.global_q");
  if (alias != state.end()) {
    const auto query = named("merge.global_q_mm");
    if (query != state.end() && !query->second.equal(alias->second)) {
      throw std::runtime_error(
          "merge.global_q differs from merge.global_q_mm: not the reference's alias");
    }
    state.erase(alias);
  }
  const std::string v1_embedding = "patch_to_emb.";  // v1's name of the instance embedding
  for (auto& [name, tensor] : state) {
    if (name.rfind(v1_embedding, 0) == 0) name = "feature." + name.substr(v1_embedding.size());
  }
  return state;
}

MhimNetworkOptions mhim_network_options_from_json(const nlohmann::json& j, int64_t input_dim,
                                                  int64_t class_count) {
  MhimNetworkOptions o(input_dim, class_count);
  if (j.contains("embed_dim")) o.embed_dim(j.at("embed_dim").get<int64_t>());
  if (j.contains("activation")) o.activation(j.at("activation").get<std::string>());
  if (j.contains("dropout")) o.dropout(j.at("dropout").get<double>());
  if (j.contains("baseline")) o.baseline(j.at("baseline").get<std::string>());
  nlohmann::json aggregator = nlohmann::json::object();
  if (j.contains("da_act")) aggregator["da_act"] = j.at("da_act");
  o.aggregator_options(aggregator);
  if (j.contains("merge")) o.merge(j.at("merge").get<bool>());
  if (j.contains("merge_k")) o.merge_k(j.at("merge_k").get<int64_t>());
  if (j.contains("merge_ratio")) o.merge_ratio(j.at("merge_ratio").get<double>());
  if (j.contains("merge_mm")) o.merge_mm(j.at("merge_mm").get<double>());
  if (j.contains("merge_test")) o.merge_test(j.at("merge_test").get<bool>());
  if (aggregator.contains("da_act") && o.baseline() != "attn") {
    throw std::runtime_error("option da_act applies only to baseline 'attn', not '" + o.baseline() +
                             "'");
  }
  return o;
}

}  // namespace mil
