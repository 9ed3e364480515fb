#pragma once
// Nyström self-attention (Xiong et al. 2021) exactly as the reference's
// `modules/nystrom_attention.py`: front zero-padding to a multiple of the landmark count, landmark
// means, three softmaxes, a Newton-iteration pseudo-inverse with global normalisers, and a
// depth-wise convolution residual on the values. Memory is O(n·m): no n x n matrix is ever formed.
// Parameter names match the reference: to_qkv.weight, to_out.0.{weight,bias}, res_conv.weight.
#include <torch/arg.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

namespace mil {

struct NystromAttentionOptions {
  explicit NystromAttentionOptions(int64_t dim) : dim_(dim) {}
  /// Width of the input and output tokens.
  TORCH_ARG(int64_t, dim);
  /// Number of attention heads H.
  TORCH_ARG(int64_t, heads) = 8;
  /// Width of each head; the q/k/v projection is Linear(dim, 3·heads·head_dim, no bias).
  TORCH_ARG(int64_t, head_dim) = 64;
  /// Landmarks m; sequences are front-padded with zeros to a multiple of m.
  TORCH_ARG(int64_t, landmarks) = 256;
  /// Newton steps of the Moore-Penrose pseudo-inverse (the reference's 6).
  TORCH_ARG(int64_t, pinv_iterations) = 6;
  /// Length of the depth-wise residual convolution over the sequence axis (odd; the reference's
  /// 33).
  TORCH_ARG(int64_t, residual_kernel) = 33;
  /// Dropout after the output projection (the reference's 0.1 in TransMIL).
  TORCH_ARG(double, dropout) = 0.1;
};

/// One Nyström attention pass over a sequence of n tokens.
struct NystromAttentionOutput {
  at::Tensor output;     ///< [n, dim] attention output (no residual with the input added).
  at::Tensor attention;  ///< Only when requested: [H, n-1] approximate attention of token 0 to
                         ///< tokens 1..n-1.
  at::Tensor values;     ///< Only when requested: [H, n-1, head_dim] the values of tokens 1..n-1.
};

class NystromAttentionImpl : public torch::nn::Module {
 public:
  explicit NystromAttentionImpl(NystromAttentionOptions options);
  /// x [n, dim] -> output [n, dim]; with `want_attention` also token 0's attention row and the
  /// values of the other tokens, as the reference's `return_attn` computes them (these rows do not
  /// sum to 1: mass leaks to padding and token 0).
  NystromAttentionOutput forward(const at::Tensor& x, bool want_attention = false);

  NystromAttentionOptions options;
  torch::nn::Linear to_qkv{nullptr};
  torch::nn::Sequential to_out{nullptr};  ///< Linear(heads·head_dim, dim) + Dropout.
  torch::nn::Conv2d res_conv{
      nullptr};  ///< Conv2d(H, H, (kernel, 1), groups = H, no bias) over [1, H, n, head_dim].
};
TORCH_MODULE(NystromAttention);

/// Approximate Moore-Penrose pseudo-inverse of every [m, m] matrix in x [..., m, m] by `iterations`
/// steps of Z <- Z(13I - XZ(15I - XZ(7I - XZ)))/4 from Z0 = Xᵀ / (max row abs-sum · max column
/// abs-sum), both maxima taken over the whole tensor (all heads together), as the reference.
at::Tensor moore_penrose_pinv(const at::Tensor& x, int64_t iterations);

}  // namespace mil
