#include "mil/models/nystrom_attention.h"

#include <ATen/ATen.h>

#include <torch/nn/modules/dropout.h>
#include <cmath>

#include "mil/models/depthwise_conv.h"
#include "mil/models/fast_dropout.h"
#include "mil/models/newton_polynomial.h"
#include "mil/runtime/autocast.h"

namespace mil {

NystromAttentionImpl::NystromAttentionImpl(NystromAttentionOptions options_)
    : options(std::move(options_)) {
  TORCH_CHECK(
      options.dim() > 0 && options.heads() > 0 && options.head_dim() > 0 && options.landmarks() > 0,
      "NystromAttention needs positive dim, heads, head_dim and landmarks, got ", options.dim(),
      ", ", options.heads(), ", ", options.head_dim(), ", ", options.landmarks());
  TORCH_CHECK(options.residual_kernel() > 0 && options.residual_kernel() % 2 == 1,
              "NystromAttention residual_kernel must be odd, got ", options.residual_kernel());
  TORCH_CHECK(options.pinv_iterations() >= 0, "NystromAttention pinv_iterations must be >= 0, got ",
              options.pinv_iterations());
  TORCH_CHECK(options.dropout() >= 0.0 && options.dropout() < 1.0,
              "NystromAttention dropout must be in [0, 1), got ", options.dropout());
  const int64_t inner = options.heads() * options.head_dim();
  to_qkv = register_module(
      "to_qkv", torch::nn::Linear(torch::nn::LinearOptions(options.dim(), 3 * inner).bias(false)));
  to_out = register_module("to_out", torch::nn::Sequential(torch::nn::Linear(inner, options.dim()),
                                                           FastDropout(options.dropout())));
  const int64_t k = options.residual_kernel();
  res_conv = register_module(
      "res_conv",
      torch::nn::Conv2d(torch::nn::Conv2dOptions(options.heads(), options.heads(), {k, 1})
                            .padding({k / 2, 0})
                            .groups(options.heads())
                            .bias(false)));
}

at::Tensor moore_penrose_pinv(const at::Tensor& x, int64_t iterations) {
  TORCH_CHECK(x.dim() >= 2 && x.size(-1) == x.size(-2),
              "moore_penrose_pinv expects [..., m, m], got ", x.sizes());
  const at::Tensor magnitude = x.abs();
  const at::Tensor normaliser = magnitude.sum(-1).max() * magnitude.sum(-2).max();
  at::Tensor z = x.transpose(-1, -2) / normaliser;
  // Training on CPU in float32: the same function and gradient through one eigendecomposition of
  // X·Z0 (see newton_polynomial.h), instead of autograd through 24 matmuls forward and 48 backward.
  // X·Z0 is formed in double: the reference's iteration recomputes X·Z_k each step and so corrects
  // the rounding of its first product, while r(X·Z0) would amplify it on small eigenvalues
  // (measured: 6e-6 relative in float32, 5e-7 in double, the reference's own float32 iteration
  // 9e-7). Without gradients the matrix iteration is as fast, and under autocast it keeps the
  // reference's bf16 matmuls.
  if (x.device().is_cpu() && x.scalar_type() == at::kFloat && at::GradMode::is_enabled() &&
      x.requires_grad() && iterations <= kNewtonPolynomialMaxIterations &&
      !autocast_is_enabled(c10::DeviceType::CPU)) {
    const at::Tensor z64 = z.to(at::kDouble);
    return newton_pinv_polynomial(z64, x.to(at::kDouble).matmul(z64), iterations).to(at::kFloat);
  }
  // float32 whatever x is, as the reference's torch.eye: under bf16 autocast the matmuls return
  // bf16 and each 13I - XZ(...) step is promoted back to float32 (eye has no bf16 kernel anyway);
  // double stays double.
  const at::Tensor identity = at::eye(x.size(-1), x.options().dtype(at::kFloat));
  for (int64_t i = 0; i < iterations; ++i) {
    const at::Tensor xz = x.matmul(z);
    z = (0.25 * z).matmul(13 * identity - xz.matmul(15 * identity - xz.matmul(7 * identity - xz)));
  }
  return z;
}

NystromAttentionOutput NystromAttentionImpl::forward(const at::Tensor& x, bool want_attention) {
  TORCH_CHECK(x.dim() == 2 && x.size(1) == options.dim(), "NystromAttention expects [n, ",
              options.dim(), "] tokens, got ", x.sizes());
  TORCH_CHECK(x.size(0) > 0, "NystromAttention needs at least one token");
  TORCH_CHECK(!want_attention || x.size(0) > 1,
              "NystromAttention attention rows need a token 0 and others");
  const int64_t n = x.size(0), m = options.landmarks(), heads = options.heads(),
                head_dim = options.head_dim();
  const int64_t group = (n + m - 1) / m;  // l = ceil(n / m) tokens per landmark
  const int64_t padded = group * m;
  const int64_t front =
      padded - n;  // zero tokens in front; the real tokens are rows front..padded-1

  const at::Tensor tokens = front > 0 ? at::constant_pad_nd(x, {0, 0, front, 0}) : x;  // [n', dim]
  const std::vector<at::Tensor> qkv = to_qkv->forward(tokens).chunk(3, /*dim=*/-1);
  const auto split_heads = [&](const at::Tensor& t) {
    return t.view({padded, heads, head_dim}).transpose(0, 1);
  };
  const at::Tensor q =
      split_heads(qkv[0]) * std::pow(static_cast<double>(head_dim), -0.5);  // [H, n', dh]
  const at::Tensor k = split_heads(qkv[1]);
  const at::Tensor v = split_heads(qkv[2]);

  // Landmarks: means of consecutive groups of l padded tokens (sum, then divide, as the reference).
  const at::Tensor q_landmarks =
      q.reshape({heads, m, group, head_dim}).sum(2) / static_cast<double>(group);
  const at::Tensor k_landmarks =
      k.reshape({heads, m, group, head_dim}).sum(2) / static_cast<double>(group);

  // Only the real tokens' query rows are ever used, so kernel 1 skips the padded rows (O(n·m)
  // memory).
  const at::Tensor kernel1 =
      q.slice(1, front).matmul(k_landmarks.transpose(-1, -2)).softmax(-1);  // [H, n, m]
  const at::Tensor kernel2 =
      q_landmarks.matmul(k_landmarks.transpose(-1, -2)).softmax(-1);               // [H, m, m]
  const at::Tensor kernel3 = q_landmarks.matmul(k.transpose(-1, -2)).softmax(-1);  // [H, m, n']
  const at::Tensor kernel2_pinv = moore_penrose_pinv(kernel2, options.pinv_iterations());

  const at::Tensor residual = depthwise_conv2d(v.unsqueeze(0), res_conv->weight, res_conv->bias)
                                  .squeeze(0)
                                  .slice(1, front);  // [H, n, dh]
  // kernel1·(pinv·(kernel3·v)): the reference's (kernel1·pinv)·(kernel3·v) re-associated, which
  // avoids the [H, n, m]·[H, m, m] product (about 2·H·n·m² flops forward, twice that backward).
  const at::Tensor mixed =
      kernel1.matmul(kernel2_pinv.matmul(kernel3.matmul(v))) + residual;  // [H, n, dh]
  NystromAttentionOutput out;
  out.output = to_out->forward(mixed.transpose(0, 1).reshape({n, heads * head_dim}));
  if (want_attention) {
    // Token 0's row of kernel1 (the first real row), through the pseudo-inverse and kernel 3.
    out.attention =
        kernel1.slice(1, 0, 1).matmul(kernel2_pinv).matmul(kernel3).squeeze(1).slice(1, front + 1);
    out.values = v.slice(1, front + 1);
  }
  return out;
}

}  // namespace mil
