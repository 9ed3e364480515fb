#pragma once
// The Global Recycle Network (the reference's `Merge`, modules/mhim_modules/merge.py): of the
// instances that survive hard masking, a random share is kept as is and the rest are compressed by
// cross-attention from k global queries into k tokens, so randomly dropped instances still inform
// the student. Keys: norm.*, attn.to_kv.weight, attn.to_q.weight, attn.to_out.0.*, global_q_mm.
#include <torch/arg.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/dropout.h>

#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include "mil/models/fast_dropout.h"

namespace mil {

struct GlobalRecycleOptions {
  explicit GlobalRecycleOptions(int64_t dim) : dim_(dim) {}
  /// d, the instance embedding width.
  TORCH_ARG(int64_t, dim);
  /// k, the number of global queries and of recycled tokens (`merge_k`; README grid 1, 5, 10).
  TORCH_ARG(int64_t, tokens) = 1;
  /// Share of the survivors KEPT as they are (`merge_ratio`: the kept, not the merged share; README
  /// grid 0.8, 0.9); in (0, 1).
  TORCH_ARG(double, keep_ratio) = 0.2;
  /// Momentum of the global queries' EMA toward the recycled tokens (`merge_mm`); 1 = zero queries,
  /// no EMA.
  TORCH_ARG(double, momentum) = 0.9998;
  /// Attention heads × head width = inner width of the cross-attention.
  TORCH_ARG(int64_t, heads) = 8;
  TORCH_ARG(int64_t, head_dim) = 64;
  /// Attention and output dropout.
  TORCH_ARG(double, dropout) = 0.1;
};

/// Multi-head cross-attention from queries to a set of instances (the reference's `MCA`).
class CrossAttentionImpl : public torch::nn::Module {
 public:
  CrossAttentionImpl(int64_t dim, int64_t heads, int64_t head_dim, double dropout);
  /// instances [L, d], queries [k, d] -> [k, d].
  at::Tensor forward(const at::Tensor& instances, const at::Tensor& queries);

  int64_t heads;
  int64_t head_dim;
  torch::nn::Linear to_kv{nullptr};
  torch::nn::Linear to_q{nullptr};
  torch::nn::Sequential to_out{nullptr};
  FastDropout attention_dropout{nullptr};
};
TORCH_MODULE(CrossAttention);

class GlobalRecycleImpl : public torch::nn::Module {
 public:
  explicit GlobalRecycleImpl(GlobalRecycleOptions options);
  /// Training: survivors [L, d] -> [floor(L·keep_ratio) + k, d]: a random keep followed by the k
  /// recycled tokens; updates the queries' EMA. The keep follows `order`, a permutation of 0..L-1
  /// whose first floor(L·keep_ratio) entries are kept (a replay passes a recorded one); undefined:
  /// a random order from LibTorch's default generator. Eval: [L + k, d], every instance plus k
  /// summary tokens, no update, `order` unused. L must exceed floor(L·keep_ratio) (it does for
  /// ratio < 1).
  at::Tensor forward(const at::Tensor& survivors, const at::Tensor& order = {});
  /// Kept count for L survivors: floor(L · keep_ratio) in double arithmetic, as the reference's
  /// int().
  int64_t kept_count(int64_t survivors) const;

  GlobalRecycleOptions options;
  torch::nn::LayerNorm norm{nullptr};
  CrossAttention attn{nullptr};
  at::Tensor global_q_mm;  ///< [1, k, d] non-trainable queries (a parameter without grad, as the
                           ///< reference).
};
TORCH_MODULE(GlobalRecycle);

}  // namespace mil
