#include "mil/models/transmil_blocks.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>

#include "mil/models/depthwise_conv.h"

namespace mil {
namespace {

/// The grid side below which MHIM's PPEG pads with zero tokens (its 7 x 7 minimum).
constexpr int64_t kMhimMinimumSide = 7;

torch::nn::Conv2d depthwise(int64_t dim, int64_t kernel) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(dim, dim, kernel).padding(kernel / 2).groups(dim));
}

}  // namespace

TransLayerImpl::TransLayerImpl(const NystromAttentionOptions& attention) {
  norm =
      register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({attention.dim()})));
  attn = register_module("attn", NystromAttention(attention));
}

NystromAttentionOutput TransLayerImpl::forward(const at::Tensor& x, bool want_attention) {
  NystromAttentionOutput out = attn->forward(norm->forward(x), want_attention);
  out.output = x + out.output;
  return out;
}

PpegImpl::PpegImpl(PpegOptions options_) : options(std::move(options_)) {
  TORCH_CHECK(options.dim() > 0 && options.kernel() > 0 && options.kernel() % 2 == 1,
              "Ppeg needs dim > 0 and an odd kernel, got ", options.dim(), " and ",
              options.kernel());
  proj = register_module("proj", depthwise(options.dim(), options.kernel()));
  proj1 = register_module("proj1", depthwise(options.dim(), 5));
  proj2 = register_module("proj2", depthwise(options.dim(), 3));
}

at::Tensor PpegImpl::forward(const at::Tensor& grid, int64_t side) {
  TORCH_CHECK(grid.dim() == 2 && grid.size(0) == side * side && grid.size(1) == options.dim(),
              "Ppeg expects [", side * side, ", ", options.dim(), "] grid tokens for side ", side,
              ", got ", grid.sizes());
  const at::Tensor image = grid.t().reshape({1, options.dim(), side, side}).contiguous();
  if (!depthwise_conv2d_is_direct(image,
                                  proj->weight)) {  // CUDA, autocast: torch's own convolutions
    const at::Tensor mixed =
        proj->forward(image) + image + proj1->forward(image) + proj2->forward(image);
    return mixed.flatten(2).squeeze(0).t();  // [side², dim]
  }
  // The three convolutions and the identity are linear in the image: one convolution with the sum
  // of the kernels (centred, zero-padded to the largest) and of the biases does the same sums in
  // one pass.
  const int64_t kernel = std::max<int64_t>(options.kernel(), 5);
  const auto centred = [kernel](const at::Tensor& w) {
    const int64_t pad = (kernel - w.size(2)) / 2;
    return at::constant_pad_nd(w, {pad, pad, pad, pad});
  };
  const at::Tensor identity = centred(at::ones({options.dim(), 1, 1, 1}, image.options()));
  const at::Tensor weight =
      centred(proj->weight) + identity + centred(proj1->weight) + centred(proj2->weight);
  const at::Tensor mixed = depthwise_conv2d(image, weight, proj->bias + proj1->bias + proj2->bias);
  return mixed.flatten(2).squeeze(0).t();  // [side², dim]
}

at::Tensor PpegImpl::forward_padded(const at::Tensor& tokens) {
  TORCH_CHECK(tokens.dim() == 2 && tokens.size(1) == options.dim() && tokens.size(0) > 0,
              "Ppeg expects [n, ", options.dim(), "] tokens with n >= 1, got ", tokens.sizes());
  const int64_t n = tokens.size(0);
  at::Tensor grid = pad_to_square_by_repeating(tokens);
  int64_t side = grid_side(n);
  if (side < kMhimMinimumSide) {
    side = kMhimMinimumSide;
    grid = at::constant_pad_nd(grid, {0, 0, 0, side * side - grid.size(0)});
  }
  return forward(grid, side).slice(0, 0, n);
}

int64_t grid_side(int64_t n) {
  TORCH_CHECK(n >= 0, "grid_side needs n >= 0, got ", n);
  int64_t side = static_cast<int64_t>(std::sqrt(static_cast<double>(n)));
  while (side * side < n) ++side;
  while (side > 0 && (side - 1) * (side - 1) >= n) --side;
  return side;
}

at::Tensor pad_to_square_by_repeating(const at::Tensor& tokens) {
  const int64_t n = tokens.size(0);
  const int64_t extra =
      grid_side(n) * grid_side(n) - n;  // < n for every n >= 2, so the slice is whole
  return extra > 0 ? at::cat({tokens, tokens.slice(0, 0, extra)}) : tokens;
}

}  // namespace mil
