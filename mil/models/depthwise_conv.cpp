#include "mil/models/depthwise_conv.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <vector>

#include "mil/runtime/autocast.h"

namespace mil {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// Shapes of one depth-wise convolution: planes of h x w, kernel kh x kw centred (padding kh/2,
/// kw/2).
struct Geometry {
  int64_t batch, channels, h, w, kh, kw;
  int64_t plane() const { return h * w; }
};

Geometry geometry_of(const at::Tensor& input, const at::Tensor& weight) {
  return {input.size(0), input.size(1),  input.size(2),
          input.size(3), weight.size(2), weight.size(3)};
}

/// Output rows y whose input row y + di lies inside [0, h): y in [max(0, -di), min(h, h - di)).
inline int64_t first_valid(int64_t offset) { return std::max<int64_t>(0, -offset); }
inline int64_t end_valid(int64_t size, int64_t offset) {
  return std::min<int64_t>(size, size - offset);
}

/// One plane of the forward pass (transpose = false): out = bias + Σ_taps w[i][j] · shift(in, i -
/// ph, j - pw); or of the input gradient (transpose = true): the same with every shift negated, no
/// bias. Row by row, every tap added into one output row while it sits in L1; each output element
/// sums bias, then the taps in (i, j) order.
template <typename T>
[[gnu::always_inline]] inline void convolve_plane_body(const T* __restrict in,
                                                       const T* __restrict taps, T bias,
                                                       T* __restrict out, const Geometry& g,
                                                       bool transpose) {
  const int64_t ph = g.kh / 2, pw = g.kw / 2;
  for (int64_t y = 0; y < g.h; ++y) {
    T* __restrict dst = out + y * g.w;
    for (int64_t x = 0; x < g.w; ++x) dst[x] = bias;
    for (int64_t i = 0; i < g.kh; ++i) {
      const int64_t di = transpose ? ph - i : i - ph;
      if (y + di < 0 || y + di >= g.h) continue;
      for (int64_t j = 0; j < g.kw; ++j) {
        const int64_t dj = transpose ? pw - j : j - pw, x0 = first_valid(dj),
                      x1 = end_valid(g.w, dj);
        const T wt = taps[i * g.kw + j];
        const T* __restrict src = in + (y + di) * g.w + dj;
        for (int64_t x = x0; x < x1; ++x) dst[x] += wt * src[x];
      }
    }
  }
}

/// One channel's weight (and bias) gradient: per tap and column x, Σ_n Σ_y grad_out · shifted input
/// into double accumulators `columns` [taps][w] and `bias_columns` [w] (zeroed here), then each row
/// summed in order. Each grad_out row is read once for all taps, against the input rows around it,
/// while both sit in L1. `plane_stride` separates images of the batch.
template <typename T>
[[gnu::always_inline]] inline void weight_gradient_channel_body(
    const T* __restrict in, const T* __restrict grad_out, int64_t plane_stride, const Geometry& g,
    double* __restrict columns, double* __restrict bias_columns, T* grad_weight, T* grad_bias) {
  const int64_t ph = g.kh / 2, pw = g.kw / 2, taps = g.kh * g.kw;
  for (int64_t t = 0; t < taps * g.w; ++t) columns[t] = 0.0;
  for (int64_t x = 0; x < g.w; ++x) bias_columns[x] = 0.0;
  for (int64_t n = 0; n < g.batch; ++n) {
    const T* plane_in = in + n * plane_stride;
    const T* plane_grad = grad_out + n * plane_stride;
    for (int64_t y = 0; y < g.h; ++y) {
      const T* __restrict go = plane_grad + y * g.w;
      for (int64_t i = 0; i < g.kh; ++i) {
        const int64_t di = i - ph;
        if (y + di < 0 || y + di >= g.h) continue;
        for (int64_t j = 0; j < g.kw; ++j) {
          const int64_t dj = j - pw, x0 = first_valid(dj), x1 = end_valid(g.w, dj);
          const T* __restrict src = plane_in + (y + di) * g.w + dj;
          double* __restrict acc = columns + (i * g.kw + j) * g.w;
          for (int64_t x = x0; x < x1; ++x) acc[x] += double(go[x]) * double(src[x]);
        }
      }
      if (grad_bias != nullptr) {
        for (int64_t x = 0; x < g.w; ++x) bias_columns[x] += double(go[x]);
      }
    }
  }
  for (int64_t t = 0; t < taps; ++t) {
    const int64_t dj = t % g.kw - pw, x0 = first_valid(dj), x1 = end_valid(g.w, dj);
    double sum = 0.0;
    for (int64_t x = x0; x < x1; ++x) sum += columns[t * g.w + x];
    grad_weight[t] = T(sum);
  }
  if (grad_bias != nullptr) {
    double sum = 0.0;
    for (int64_t x = 0; x < g.w; ++x) sum += bias_columns[x];
    *grad_bias = T(sum);
  }
}

// The loops above run at a few GFLOP/s when compiled for baseline x86-64 (SSE2): the build targets
// any x86-64, so they are also compiled for AVX2 and AVX-512 and the loader picks the best this CPU
// runs (GCC function multi-versioning). Results are identical across runs and thread counts on one
// machine; across instruction sets they may differ in the last bit (AVX-512 fuses multiply-adds).
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define MIL_MULTIVERSIONED __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MIL_MULTIVERSIONED
#endif

MIL_MULTIVERSIONED void convolve_plane(const float* in, const float* taps, float bias, float* out,
                                       const Geometry& g, bool transpose) {
  convolve_plane_body(in, taps, bias, out, g, transpose);
}
MIL_MULTIVERSIONED void convolve_plane(const double* in, const double* taps, double bias,
                                       double* out, const Geometry& g, bool transpose) {
  convolve_plane_body(in, taps, bias, out, g, transpose);
}
MIL_MULTIVERSIONED void weight_gradient_channel(const float* in, const float* grad_out,
                                                int64_t plane_stride, const Geometry& g,
                                                double* columns, double* bias_columns,
                                                float* grad_weight, float* grad_bias) {
  weight_gradient_channel_body(in, grad_out, plane_stride, g, columns, bias_columns, grad_weight,
                               grad_bias);
}
MIL_MULTIVERSIONED void weight_gradient_channel(const double* in, const double* grad_out,
                                                int64_t plane_stride, const Geometry& g,
                                                double* columns, double* bias_columns,
                                                double* grad_weight, double* grad_bias) {
  weight_gradient_channel_body(in, grad_out, plane_stride, g, columns, bias_columns, grad_weight,
                               grad_bias);
}

/// Every plane of the forward pass or of the input gradient (see convolve_plane_body).
template <typename T>
void convolve(const T* in, const T* weight, const T* bias, T* out, const Geometry& g,
              bool transpose) {
  at::parallel_for(0, g.batch * g.channels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const int64_t c = p % g.channels;
      convolve_plane(in + p * g.plane(), weight + c * g.kh * g.kw, bias != nullptr ? bias[c] : T(0),
                     out + p * g.plane(), g, transpose);
    }
  });
}

/// grad_weight[c][i][j] = Σ_n Σ_(y,x) grad_out[n][c][y][x] · in[n][c][y + i - ph][x + j - pw] and
/// grad_bias[c] = Σ grad_out[n][c], accumulated in double in a fixed order (see
/// weight_gradient_channel_body).
template <typename T>
void weight_gradients(const T* in, const T* grad_out, T* grad_weight, T* grad_bias,
                      const Geometry& g) {
  at::parallel_for(0, g.channels, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> columns(g.kh * g.kw * g.w), bias_columns(g.w);
    for (int64_t c = begin; c < end; ++c) {
      weight_gradient_channel(in + c * g.plane(), grad_out + c * g.plane(), g.channels * g.plane(),
                              g, columns.data(), bias_columns.data(), grad_weight + c * g.kh * g.kw,
                              grad_bias != nullptr ? grad_bias + c : nullptr);
    }
  });
}

class DepthwiseConv2d : public torch::autograd::Function<DepthwiseConv2d> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& input, const at::Tensor& weight,
                            const at::Tensor& bias) {
    const at::Tensor in = input.contiguous(), w = weight.contiguous();
    const bool has_bias = bias.numel() > 0;
    const at::Tensor b = bias.contiguous();
    const Geometry g = geometry_of(in, w);
    at::Tensor out = at::empty_like(in, at::MemoryFormat::Contiguous);
    AT_DISPATCH_FLOATING_TYPES(in.scalar_type(), "depthwise_conv2d", [&] {
      convolve<scalar_t>(in.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(),
                         has_bias ? b.data_ptr<scalar_t>() : nullptr, out.data_ptr<scalar_t>(), g,
                         /*transpose=*/false);
    });
    ctx->save_for_backward({in, w});
    ctx->saved_data["has_bias"] = has_bias;
    return out;
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    const variable_list saved = ctx->get_saved_variables();
    const at::Tensor& in = saved[0];
    const at::Tensor& w = saved[1];
    const bool has_bias = ctx->saved_data["has_bias"].toBool();
    const at::Tensor grad_out = grads[0].contiguous();
    const Geometry g = geometry_of(in, w);
    at::Tensor grad_in, grad_weight, grad_bias;
    if (ctx->needs_input_grad(0)) grad_in = at::empty_like(in);
    if (ctx->needs_input_grad(1)) grad_weight = at::empty_like(w);
    if (has_bias && ctx->needs_input_grad(2)) grad_bias = at::empty({g.channels}, w.options());
    AT_DISPATCH_FLOATING_TYPES(in.scalar_type(), "depthwise_conv2d_backward", [&] {
      if (grad_in.defined()) {
        convolve<scalar_t>(grad_out.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(), nullptr,
                           grad_in.data_ptr<scalar_t>(), g,
                           /*transpose=*/true);
      }
      if (grad_weight.defined() || grad_bias.defined()) {
        at::Tensor weight_sink = grad_weight.defined() ? grad_weight : at::empty_like(w);
        weight_gradients<scalar_t>(in.data_ptr<scalar_t>(), grad_out.data_ptr<scalar_t>(),
                                   weight_sink.data_ptr<scalar_t>(),
                                   grad_bias.defined() ? grad_bias.data_ptr<scalar_t>() : nullptr,
                                   g);
      }
    });
    return {grad_in, grad_weight, grad_bias};
  }
};

}  // namespace

at::Tensor depthwise_conv2d(const at::Tensor& input, const at::Tensor& weight,
                            const at::Tensor& bias) {
  TORCH_CHECK(input.dim() == 4 && weight.dim() == 4 && weight.size(0) == input.size(1) &&
                  weight.size(1) == 1,
              "depthwise_conv2d expects input [N, C, H, W] and weight [C, 1, kh, kw], got ",
              input.sizes(), " and ", weight.sizes());
  TORCH_CHECK(weight.size(2) % 2 == 1 && weight.size(3) % 2 == 1,
              "depthwise_conv2d needs an odd kernel, got ", weight.sizes());
  TORCH_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == input.size(1)),
              "depthwise_conv2d expects bias [", input.size(1), "], got ", bias.sizes());
  if (!depthwise_conv2d_is_direct(input, weight) ||
      (bias.defined() && bias.scalar_type() != input.scalar_type())) {
    return at::conv2d(input, weight, bias, /*stride=*/{1, 1},
                      /*padding=*/{weight.size(2) / 2, weight.size(3) / 2},
                      /*dilation=*/{1, 1}, /*groups=*/input.size(1));
  }
  // Function::apply cannot take an undefined tensor: no bias travels as an empty one.
  return DepthwiseConv2d::apply(input, weight,
                                bias.defined() ? bias : at::empty({0}, weight.options()));
}

bool depthwise_conv2d_is_direct(const at::Tensor& input, const at::Tensor& weight) {
  return input.device().is_cpu() && weight.device().is_cpu() &&
         (input.scalar_type() == at::kFloat || input.scalar_type() == at::kDouble) &&
         weight.scalar_type() == input.scalar_type() && !autocast_is_enabled(c10::DeviceType::CPU);
}

}  // namespace mil
