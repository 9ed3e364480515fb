#include "mil/models/depthwise_conv.h"

#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/custom_function.h>

#include <algorithm>
#include <vector>

#include "mil/autocast.h"

namespace mil {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

/// Shapes of one depth-wise convolution: planes of h x w, kernel kh x kw centred (padding kh/2, kw/2).
struct Geometry {
  int64_t batch, channels, h, w, kh, kw;
  int64_t plane() const { return h * w; }
};

Geometry geometry_of(const at::Tensor& input, const at::Tensor& weight) {
  return {input.size(0), input.size(1), input.size(2), input.size(3), weight.size(2), weight.size(3)};
}

/// Output rows y whose input row y + di lies inside [0, h): y in [max(0, -di), min(h, h - di)).
inline int64_t first_valid(int64_t offset) { return std::max<int64_t>(0, -offset); }
inline int64_t end_valid(int64_t size, int64_t offset) { return std::min<int64_t>(size, size - offset); }

/// out[y][x] += wt · in[y + di][x + dj] over every (y, x) where both are inside the h x w plane: the
/// forward pass with in = input, and (with di, dj negated) the input gradient with in = grad_output.
template <typename T>
void accumulate_tap(const T* in, T* out, T wt, int64_t h, int64_t w, int64_t di, int64_t dj) {
  const int64_t x0 = first_valid(dj), x1 = end_valid(w, dj);
  for (int64_t y = first_valid(di); y < end_valid(h, di); ++y) {
    const T* src = in + (y + di) * w + dj;
    T* dst = out + y * w;
    for (int64_t x = x0; x < x1; ++x) dst[x] += wt * src[x];
  }
}

/// Forward (transpose = false): out = bias + Σ_taps w[i][j] · shift(in, i - ph, j - pw). Input gradient
/// (transpose = true): the same with every shift negated, no bias.
template <typename T>
void convolve(const T* in, const T* weight, const T* bias, T* out, const Geometry& g, bool transpose) {
  const int64_t ph = g.kh / 2, pw = g.kw / 2;
  at::parallel_for(0, g.batch * g.channels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const int64_t c = p % g.channels;
      T* dst = out + p * g.plane();
      std::fill(dst, dst + g.plane(), bias != nullptr ? bias[c] : T(0));
      for (int64_t i = 0; i < g.kh; ++i) {
        for (int64_t j = 0; j < g.kw; ++j) {
          const int64_t di = transpose ? ph - i : i - ph, dj = transpose ? pw - j : j - pw;
          accumulate_tap(in + p * g.plane(), dst, weight[(c * g.kh + i) * g.kw + j], g.h, g.w, di, dj);
        }
      }
    }
  });
}

/// grad_weight[c][i][j] = Σ_n Σ_(y,x) grad_out[n][c][y][x] · in[n][c][y + i - ph][x + j - pw] and
/// grad_bias[c] = Σ grad_out[n][c], in double: products are added per column x into a row of
/// accumulators (a loop the compiler vectorises), which are summed once at the end, in a fixed order.
template <typename T>
void weight_gradients(const T* in, const T* grad_out, T* grad_weight, T* grad_bias, const Geometry& g) {
  const int64_t ph = g.kh / 2, pw = g.kw / 2;
  at::parallel_for(0, g.channels, 1, [&](int64_t begin, int64_t end) {
    std::vector<double> columns(g.w);
    for (int64_t c = begin; c < end; ++c) {
      for (int64_t i = 0; i < g.kh; ++i) {
        for (int64_t j = 0; j < g.kw; ++j) {
          const int64_t di = i - ph, dj = j - pw, x0 = first_valid(dj), x1 = end_valid(g.w, dj);
          std::fill(columns.begin(), columns.end(), 0.0);
          for (int64_t n = 0; n < g.batch; ++n) {
            const int64_t p = n * g.channels + c;
            for (int64_t y = first_valid(di); y < end_valid(g.h, di); ++y) {
              const T* src = in + p * g.plane() + (y + di) * g.w + dj;
              const T* go = grad_out + p * g.plane() + y * g.w;
              for (int64_t x = x0; x < x1; ++x) columns[x] += double(go[x]) * double(src[x]);
            }
          }
          double sum = 0.0;
          for (int64_t x = x0; x < x1; ++x) sum += columns[x];
          grad_weight[(c * g.kh + i) * g.kw + j] = T(sum);
        }
      }
      if (grad_bias != nullptr) {
        std::fill(columns.begin(), columns.end(), 0.0);
        for (int64_t n = 0; n < g.batch; ++n) {
          const T* go = grad_out + (n * g.channels + c) * g.plane();
          for (int64_t y = 0; y < g.h; ++y) {
            for (int64_t x = 0; x < g.w; ++x) columns[x] += double(go[y * g.w + x]);
          }
        }
        double sum = 0.0;
        for (int64_t x = 0; x < g.w; ++x) sum += columns[x];
        grad_bias[c] = T(sum);
      }
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
      convolve<scalar_t>(in.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(), has_bias ? b.data_ptr<scalar_t>() : nullptr,
                         out.data_ptr<scalar_t>(), g, /*transpose=*/false);
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
        convolve<scalar_t>(grad_out.data_ptr<scalar_t>(), w.data_ptr<scalar_t>(), nullptr, grad_in.data_ptr<scalar_t>(), g,
                           /*transpose=*/true);
      }
      if (grad_weight.defined() || grad_bias.defined()) {
        at::Tensor weight_sink = grad_weight.defined() ? grad_weight : at::empty_like(w);
        weight_gradients<scalar_t>(in.data_ptr<scalar_t>(), grad_out.data_ptr<scalar_t>(), weight_sink.data_ptr<scalar_t>(),
                                   grad_bias.defined() ? grad_bias.data_ptr<scalar_t>() : nullptr, g);
      }
    });
    return {grad_in, grad_weight, grad_bias};
  }
};

}  // namespace

at::Tensor depthwise_conv2d(const at::Tensor& input, const at::Tensor& weight, const at::Tensor& bias) {
  TORCH_CHECK(input.dim() == 4 && weight.dim() == 4 && weight.size(0) == input.size(1) && weight.size(1) == 1,
              "depthwise_conv2d expects input [N, C, H, W] and weight [C, 1, kh, kw], got ", input.sizes(), " and ",
              weight.sizes());
  TORCH_CHECK(weight.size(2) % 2 == 1 && weight.size(3) % 2 == 1, "depthwise_conv2d needs an odd kernel, got ",
              weight.sizes());
  TORCH_CHECK(!bias.defined() || (bias.dim() == 1 && bias.size(0) == input.size(1)),
              "depthwise_conv2d expects bias [", input.size(1), "], got ", bias.sizes());
  if (!depthwise_conv2d_is_direct(input, weight) || (bias.defined() && bias.scalar_type() != input.scalar_type())) {
    return at::conv2d(input, weight, bias, /*stride=*/{1, 1}, /*padding=*/{weight.size(2) / 2, weight.size(3) / 2},
                      /*dilation=*/{1, 1}, /*groups=*/input.size(1));
  }
  // Function::apply cannot take an undefined tensor: no bias travels as an empty one.
  return DepthwiseConv2d::apply(input, weight, bias.defined() ? bias : at::empty({0}, weight.options()));
}

bool depthwise_conv2d_is_direct(const at::Tensor& input, const at::Tensor& weight) {
  return input.device().is_cpu() && weight.device().is_cpu() &&
         (input.scalar_type() == at::kFloat || input.scalar_type() == at::kDouble) &&
         weight.scalar_type() == input.scalar_type() && !autocast_is_enabled(c10::DeviceType::CPU);
}

}  // namespace mil
