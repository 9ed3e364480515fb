#pragma once
// The MHIM network (the reference's modules/mhim.py): instance embedding Linear(D, 512) +
// activation, Dropout, an optional Global Recycle Network, a baseline aggregator (`attn`,
// `selfattn`, `dsmil`) and a Linear(512, C) predictor. The same class is the student, the teacher,
// and the `mhim_pure` baseline that trains teacher checkpoints; parameter names match the
// reference's MHIM (feature.0.*, merge.*, online_encoder.*, predictor.*) so checkpoints move both
// ways.
#include <string>

#include <torch/arg.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <nlohmann/json.hpp>

#include "mil/mhim/aggregator.h"
#include "mil/mhim/grn.h"
#include "mil/models/fast_dropout.h"
#include "mil/models/mil_model.h"
#include "mil/models/state_dict.h"

namespace mil {

struct MhimNetworkOptions {
  MhimNetworkOptions(int64_t input_dim, int64_t class_count)
      : input_dim_(input_dim), class_count_(class_count) {}
  /// D, the input feature width.
  TORCH_ARG(int64_t, input_dim);
  /// C, classes (or survival time bins).
  TORCH_ARG(int64_t, class_count);
  /// d, the embedding width everywhere (`mlp_dim`).
  TORCH_ARG(int64_t, embed_dim) = 512;
  /// Embedding activation (`--act`): "gelu" as both reference YAMLs, or "relu".
  TORCH_ARG(std::string, activation) = "gelu";
  /// Dropout on every instance embedding (`--dropout`).
  TORCH_ARG(double, dropout) = 0.25;
  /// Aggregator (`--baseline`): "attn" (ABMIL-style), "selfattn" (TransMIL-style), "dsmil".
  TORCH_ARG(std::string, baseline) = "attn";
  /// The aggregator's own options (e.g. {"da_act": "relu"}).
  TORCH_ARG(nlohmann::json, aggregator_options) = nlohmann::json::object();
  /// Build the Global Recycle Network (`--merge_enable`).
  TORCH_ARG(bool, merge) = false;
  /// GRN settings (`--merge_k`, `--merge_ratio` = kept share, `--merge_mm`).
  TORCH_ARG(int64_t, merge_k) = 1;
  TORCH_ARG(double, merge_ratio) = 0.2;
  TORCH_ARG(double, merge_mm) = 0.9998;
  /// Also run the GRN's eval branch at inference (`--merge_test`; off in the reference).
  TORCH_ARG(bool, merge_test) = false;
};

class MhimNetworkImpl : public MilModelImpl {
 public:
  explicit MhimNetworkImpl(MhimNetworkOptions options);
  /// Plain forward (inference, and `mhim_pure` training): full bag, no masking; the GRN only with
  /// merge_test. In eval mode instance_scores holds the aggregator's attention ([N]; TransMIL: mean
  /// over heads); training forwards leave it undefined.
  MilOutput forward(const at::Tensor& bag) override;
  /// Instance embeddings after activation and dropout: bag [N, D] -> [N, d].
  at::Tensor embed(const at::Tensor& bag);
  /// Logits of an aggregator output: its own (DSMIL) or predictor(embedding).
  at::Tensor logits_of(const AggregatorOutput& output);
  /// Per-instance scores the teacher masks by (modules/mhim_modules/scoring.py), from an output
  /// computed with want_scores. class_aware (`--attn2score`): softmax over classes of
  /// W·contribution_i + b_0 (the reference adds class 0's bias to every class), max over classes;
  /// DSMIL: max raw instance logit. Otherwise the attention ([N] or TransMIL's [H, N]).
  at::Tensor instance_scores(const AggregatorOutput& output, bool class_aware);
  /// Xavier-normal Linear weights and zero biases everywhere; LayerNorms (1/0) and convs keep
  /// LibTorch's default init, which is the reference's.
  void reset_parameters();

  MhimNetworkOptions options;
  torch::nn::Sequential feature{nullptr};
  FastDropout dp{nullptr};
  GlobalRecycle merge{nullptr};  ///< Null unless options.merge().
  std::shared_ptr<MhimAggregatorImpl> online_encoder;
  torch::nn::Linear predictor{nullptr};
};
TORCH_MODULE(MhimNetwork);

/// `state` (an MHIM network's, ours or a teacher's) named as the reference's MHIM names it: the GRN
/// query also under its alias merge.global_q, right after merge.global_q_mm. The reference
/// registers the query twice, so PyTorch's strict load_state_dict wants both keys.
StateDict with_reference_aliases(StateDict state);

/// A reference MHIM state_dict (v2, or v1 with its patch_to_emb.* embedding keys) named as ours:
/// v1's patch_to_emb.* become feature.*, and the GRN query's alias merge.global_q is dropped (it
/// must equal merge.global_q_mm when both are present).
StateDict from_reference_names(StateDict state);

/// Reads the network keys of a `mhim`/`mhim_pure` model's options (embed_dim, activation, dropout,
/// baseline, da_act, merge, merge_k, merge_ratio, merge_mm, merge_test); other keys are left to the
/// caller.
MhimNetworkOptions mhim_network_options_from_json(const nlohmann::json& options, int64_t input_dim,
                                                  int64_t class_count);

}  // namespace mil
