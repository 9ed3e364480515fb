#include "mil/models/fast_dropout.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/autograd.h>

#include <cstring>
#include <mutex>

namespace mil {
namespace {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;
constexpr int kThresholdBits =
    24;  // keep decisions compare 24 uniform bits, a resolution of 6e-8 in p

inline uint64_t splitmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

inline uint32_t drop_threshold(double p) {
  return static_cast<uint32_t>(p * double(1u << kThresholdBits) + 0.5);
}

inline bool keeps(uint64_t seed, int64_t index, uint32_t threshold) {
  return static_cast<uint32_t>(splitmix64(seed + static_cast<uint64_t>(index) * kGolden) >>
                               (64 - kThresholdBits)) >= threshold;
}

// The element loops below are compiled for several instruction sets and chosen at load time: with
// AVX-512 DQ the 64-bit multiplies of splitmix64 vectorise (vpmullq), 8 or 16 elements at a time.
// Every clone computes the same bits: integer hashing, one float multiply, and bf16 rounding
// written out as c10::BFloat16 does it.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MIL_MASK_CLONES \
  __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define MIL_MASK_CLONES
#endif

MIL_MASK_CLONES
void mask_float(const float* source, float* target, int64_t begin, int64_t end, uint64_t seed,
                uint32_t threshold, float scale) {
  for (int64_t i = begin; i < end; ++i) {
    target[i] = keeps(seed, i, threshold) ? source[i] * scale : 0.0f;
  }
}

inline float bf16_bits_to_float(uint16_t bits) {
  const uint32_t widened = uint32_t(bits) << 16;
  float value;
  std::memcpy(&value, &widened, sizeof value);
  return value;
}

/// c10::BFloat16's round-to-nearest-even, NaN kept as a quiet NaN.
inline uint16_t float_to_bf16_bits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  if (value != value) return 0x7FC0;
  return static_cast<uint16_t>((bits + (((bits >> 16) & 1u) + 0x7FFFu)) >> 16);
}

MIL_MASK_CLONES
void mask_bf16(const uint16_t* source, uint16_t* target, int64_t begin, int64_t end, uint64_t seed,
               uint32_t threshold, float scale) {
  for (int64_t i = begin; i < end; ++i) {
    target[i] = keeps(seed, i, threshold)
                    ? float_to_bf16_bits(bf16_bits_to_float(source[i]) * scale)
                    : uint16_t(0);
  }
}

/// out[i] = in[i] · scale where kept, 0 elsewhere; in and out contiguous, same dtype.
void apply_mask(const at::Tensor& in, at::Tensor& out, uint64_t seed, double p) {
  const uint32_t threshold = drop_threshold(p);
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  const int64_t count = in.numel();
  if (in.scalar_type() == at::kFloat || in.scalar_type() == at::kBFloat16) {
    const bool bf16 = in.scalar_type() == at::kBFloat16;
    const void* source = in.data_ptr();
    void* target = out.data_ptr();
    at::parallel_for(0, count, 1 << 14, [&](int64_t begin, int64_t end) {
      if (bf16) {
        mask_bf16(static_cast<const uint16_t*>(source), static_cast<uint16_t*>(target), begin, end,
                  seed, threshold, scale);
      } else {
        mask_float(static_cast<const float*>(source), static_cast<float*>(target), begin, end, seed,
                   threshold, scale);
      }
    });
    return;
  }
  AT_DISPATCH_FLOATING_TYPES_AND(at::kHalf, in.scalar_type(), "fast_dropout", [&] {
    const scalar_t* source = in.data_ptr<scalar_t>();
    scalar_t* target = out.data_ptr<scalar_t>();
    at::parallel_for(0, count, 1 << 14, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        target[i] = keeps(seed, i, threshold)
                        ? static_cast<scalar_t>(static_cast<float>(source[i]) * scale)
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
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& input,
                            double p) {
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

bool fast_dropout_keeps(uint64_t seed, int64_t index, double p) {
  return keeps(seed, index, drop_threshold(p));
}

at::Tensor fast_dropout(const at::Tensor& input, double p, bool training) {
  TORCH_CHECK(p >= 0.0 && p < 1.0, "fast_dropout: p must be in [0, 1), got ", p);
  if (!training || p == 0.0 || input.numel() == 0) return input;
  if (!input.device().is_cpu()) return at::dropout(input, p, /*train=*/true);
  TORCH_CHECK(input.is_floating_point(), "fast_dropout needs a floating tensor, got ",
              input.scalar_type());
  return FastDropoutFunction::apply(input, p);
}

FastDropoutImpl::FastDropoutImpl(double p_) : p(p_) {
  TORCH_CHECK(p >= 0.0 && p < 1.0, "FastDropout: p must be in [0, 1), got ", p);
}

at::Tensor FastDropoutImpl::forward(const at::Tensor& input) {
  return fast_dropout(input, p, is_training());
}

}  // namespace mil
