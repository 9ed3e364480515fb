#pragma once
// The two blocks TransMIL (stand-alone `transmil`) and MHIM's `selfattn` aggregator share: the
// pre-norm Nyström layer (the reference's TransLayer: x + attn(LayerNorm(x)), no feed-forward) and
// PPEG, the depth-wise 7/5/3 convolutional position encoding over a square grid of tokens.
// Parameter names match the reference: norm.*, attn.* for TransLayer; proj.*, proj1.*, proj2.* for
// PPEG.
#include <torch/arg.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/normalization.h>

#include "mil/models/nystrom_attention.h"

namespace mil {

class TransLayerImpl : public torch::nn::Module {
 public:
  /// LayerNorm(dim) then Nyström attention with `attention` options (whose dim must equal theirs).
  explicit TransLayerImpl(const NystromAttentionOptions& attention);
  /// x [n, dim] -> output = x + attn(norm(x)); with `want_attention` also attn's token-0 row and
  /// values.
  NystromAttentionOutput forward(const at::Tensor& x, bool want_attention = false);

  torch::nn::LayerNorm norm{nullptr};
  NystromAttention attn{nullptr};
};
TORCH_MODULE(TransLayer);

struct PpegOptions {
  explicit PpegOptions(int64_t dim) : dim_(dim) {}
  /// Channels (token width); every convolution is depth-wise (groups = dim) with a bias.
  TORCH_ARG(int64_t, dim);
  /// Kernel of the first convolution `proj` (the reference's peg_k, 7); proj1 and proj2 are 5
  /// and 3.
  TORCH_ARG(int64_t, kernel) = 7;
};

class PpegImpl : public torch::nn::Module {
 public:
  explicit PpegImpl(PpegOptions options);
  /// grid [side·side, dim], tokens in row-major grid order -> grid + proj(grid) + proj1(grid) +
  /// proj2(grid) with "same" zero padding, same shape.
  at::Tensor forward(const at::Tensor& grid, int64_t side);
  /// MHIM's PPEG (modules/emb_position.py) on any n tokens [n, dim]: appends copies of the first
  /// side² - n tokens (side = ceil(√n)), then zero tokens up to a 7 x 7 grid when side < 7, runs
  /// forward, and returns the first n rows.
  at::Tensor forward_padded(const at::Tensor& tokens);

  PpegOptions options;
  torch::nn::Conv2d proj{nullptr};
  torch::nn::Conv2d proj1{nullptr};
  torch::nn::Conv2d proj2{nullptr};
};
TORCH_MODULE(Ppeg);

/// ceil(√n) computed exactly in integers (the side of the smallest square grid holding n tokens).
int64_t grid_side(int64_t n);

/// `tokens` [n, dim] followed by copies of its first side² - n rows: the reference's square
/// padding.
at::Tensor pad_to_square_by_repeating(const at::Tensor& tokens);

}  // namespace mil
