#pragma once
// MHIM's `selfattn` aggregator (the reference's modules/mhim_modules/baseline.py::SAttention): a
// class token in front of the unpadded instance sequence, TransLayer, MHIM's PPEG on the instance
// tokens only (square padding by repetition and at least 7 x 7 with zeros, both dropped
// afterwards), TransLayer, LayerNorm, the class token as the bag embedding. Keys: cls_token,
// norm.*, layer{1,2}.norm.*, layer{1,2}.attn.{to_qkv,to_out.0,res_conv}.*,
// pos_embedding.proj{,1,2}.*.
//
// Initialisation is MHIM's `initialize_weights` applied to this module: Xavier-normal Linear
// weights and zero biases, LayerNorm (1, 0), convolutions at LibTorch's default (as PyTorch's),
// class token N(0, 1). The MHIM network applies the same rule to all its Linears with
// xavier_normal_linears (model_init.h), which leaves this module's distribution unchanged.
#include <torch/arg.h>
#include <torch/nn/modules/normalization.h>

#include "mil/mhim/aggregator.h"
#include "mil/models/transmil_blocks.h"

namespace mil {

struct MhimSelfAttentionOptions {
  explicit MhimSelfAttentionOptions(int64_t dim) : dim_(dim) {}
  /// d, the width of the instance embeddings (the reference's mlp_dim); landmarks are d / 2.
  TORCH_ARG(int64_t, dim);
  /// Attention heads (`--n_heads`); each head is d / 8 wide whatever the count, as the reference.
  TORCH_ARG(int64_t, heads) = 8;
  /// Dropout after each attention output projection (the reference's fixed 0.1).
  TORCH_ARG(double, attention_dropout) = 0.1;
};

class MhimSelfAttentionImpl : public MhimAggregatorImpl {
 public:
  explicit MhimSelfAttentionImpl(MhimSelfAttentionOptions options);
  /// instances [N, d] -> embedding [1, d]. With scores: `attention` [H, N] is layer 1's class-token
  /// row (not normalised: the reference's leakage to padding and the class token is kept) and
  /// `contributions` [N, d] is layer1.attn.to_out(concat over heads of attention[h, i]·V[h, i, :]),
  /// including to_out's dropout (active in train mode, as the reference's teacher).
  AggregatorOutput forward(const at::Tensor& instances, bool want_scores) override;
  /// MHIM's init for this module (see the file comment).
  void reset_parameters();

  MhimSelfAttentionOptions options;
  at::Tensor cls_token;  ///< [1, 1, d], the reference's shape.
  torch::nn::LayerNorm norm{nullptr};
  TransLayer layer1{nullptr};
  TransLayer layer2{nullptr};
  Ppeg pos_embedding{nullptr};
};
TORCH_MODULE(MhimSelfAttention);

}  // namespace mil
