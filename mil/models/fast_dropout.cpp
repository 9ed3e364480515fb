#include "mil/models/fast_dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include <mutex>

namespace mil {
namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;
constexpr int kThresholdBits = 24;  // keep decisions compare 24 uniform bits, a resolution of 6e-8 in p

inline uint64_t splitmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

inline uint32_t drop_threshold(double p) { return static_cast<uint32_t>(p * double(1u << kThresholdBits) + 0.5); }

inline bool keeps(uint64_t seed, int64_t index, uint32_t threshold) {
  return static_cast<uint32_t>(splitmix64(seed + static_cast<uint64_t>(index) * kGolden) >> (64 - kThresholdBits)) >=
         threshold;
}

/// out[i] = in[i] · scale where kept, 0 elsewhere; in and out contiguous, same dtype.
void apply_mask(const at::Tensor& in, at::Tensor& out, uint64_t seed, double p) {
  const uint32_t threshold = drop_threshold(p);
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  const int64_t count = in.numel();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kBFloat16, at::kHalf, in.scalar_type(), "fast_dropout", [&] {
    const scalar_t* source = in.data_ptr<scalar_t>();
    scalar_t* target = out.data_ptr<scalar_t>();
    at::parallel_for(0, count, 1 << 14, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        target[i] = keeps(seed, i, threshold) ? static_cast<scalar_t>(static_cast<float>(source[i]) * scale)
                                              : static_cast<scalar_t>(0);
      }
    });
  });
}

uint64_t draw_seed() {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return at::check_generator<at::CPUGeneratorImpl>(generator)->random64();
}

struct FastDropoutFunction : public torch::autograd::Function<FastDropoutFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input, double p) {
    const uint64_t seed = draw_seed();
    ctx->saved_data["seed"] = static_cast<int64_t>(seed);
    ctx->saved_data["p"] = p;
    const at::Tensor source = input.contiguous();
    at::Tensor output = at::empty_like(source);
    apply_mask(source, output, seed, p);
    return output;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_outputs) {
    const auto seed = static_cast<uint64_t>(ctx->saved_data["seed"].toInt());
    const double p = ctx->saved_data["p"].toDouble();
    const at::Tensor grad = grad_outputs[0].contiguous();
    at::Tensor grad_input = at::empty_like(grad);
    apply_mask(grad, grad_input, seed, p);
    return {grad_input, at::Tensor()};
  }
};

}  // namespace

bool fast_dropout_keeps(uint64_t seed, int64_t index, double p) { return keeps(seed, index, drop_threshold(p)); }

at::Tensor fast_dropout(const at::Tensor& input, double p, bool training) {
  TORCH_CHECK(p >= 0.0 && p < 1.0, "fast_dropout: p must be in [0, 1), got ", p);
  if (!training || p == 0.0 || input.numel() == 0) return input;
  if (!input.device().is_cpu()) return at::dropout(input, p, /*train=*/true);
  TORCH_CHECK(input.is_floating_point(), "fast_dropout needs a floating tensor, got ", input.scalar_type());
  return FastDropoutFunction::apply(input, p);
}

FastDropoutImpl::FastDropoutImpl(double p_) : p(p_) {
  TORCH_CHECK(p >= 0.0 && p < 1.0, "FastDropout: p must be in [0, 1), got ", p);
}

at::Tensor FastDropoutImpl::forward(const at::Tensor& input) { return fast_dropout(input, p, is_training()); }

}  // namespace mil
