#pragma once
// Depth-wise 2-D convolution (groups = channels, one filter per channel, stride 1, "same" zero
// padding) as direct loops: TransMIL's PPEG (7x7, 5x5, 3x3 over a side x side grid of 512 channels)
// and Nyström's residual convolution (33 x 1 over the sequence, one channel per head).
// LibTorch 1.13 on CPU runs these through oneDNN forward but a slow grouped path backward
// (convolution_backward was 10% of a TransMIL training step, more than the convolutions' arithmetic
// warrants); these loops do the same sums.
#include <ATen/core/Tensor.h>

namespace mil {

/// at::conv2d(input, weight, bias, /*stride=*/1, /*padding=*/{kh / 2, kw / 2}, /*dilation=*/1,
/// /*groups=*/C) for input [N, C, H, W], weight [C, 1, kh, kw] (odd kh, kw) and bias [C] or
/// undefined, differentiable in all three. CPU float32/float64 outside autocast take the direct
/// loops, parallel over channels and deterministic at any thread count; anything else (CUDA, bf16,
/// autocast) calls conv2d.
at::Tensor depthwise_conv2d(const at::Tensor& input, const at::Tensor& weight,
                            const at::Tensor& bias);

/// Whether depthwise_conv2d(input, weight, ...) takes the direct loops rather than at::conv2d.
bool depthwise_conv2d_is_direct(const at::Tensor& input, const at::Tensor& weight);

}  // namespace mil
