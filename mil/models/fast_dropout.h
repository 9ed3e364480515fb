#pragma once
// Dropout whose CPU mask comes from a counter-based hash instead of torch's serial Bernoulli
// sampler.
//
// LibTorch's CPU bernoulli_ draws one mt19937 number per element on one thread (without MKL, as in
// Debian's build): 10 ms for a [1803 x 512] activation, as long as the layer's GEMM. FastDropout
// draws one 64-bit seed from torch's default CPU generator per call (so torch::manual_seed and
// checkpointed RNG states govern it, and a resumed run replays it), then keeps element i iff
// splitmix64(seed, i) falls above p, in parallel. The mask depends only on (seed, i): results are
// identical for any thread count. Backward recomputes the mask from the seed, so nothing is stored.
// The distribution is the same as torch::nn::Dropout's (independent Bernoulli(1 - p) keeps scaled
// by 1 / (1 - p)); the draws differ, as they already differ between PyTorch builds with and without
// MKL. Non-CPU tensors use torch's own dropout.
#include <torch/nn/cloneable.h>
#include <torch/nn/pimpl.h>

namespace mil {

/// The element-wise keep decision of FastDropout for element `index` under `seed`: a splitmix64
/// hash of seed + index·golden compared against p on 24 bits. Exposed for tests.
bool fast_dropout_keeps(uint64_t seed, int64_t index, double p);

/// Applies dropout with probability p to `input` (any floating dtype). With training false or p ==
/// 0 it returns `input` itself. Differentiable.
at::Tensor fast_dropout(const at::Tensor& input, double p, bool training);

/// Module form, a drop-in for torch::nn::Dropout (no parameters, so state_dicts are unchanged).
class FastDropoutImpl : public torch::nn::Cloneable<FastDropoutImpl> {
 public:
  explicit FastDropoutImpl(double p = 0.5);
  void reset() override {}
  at::Tensor forward(const at::Tensor& input);
  /// Probability of zeroing an element, in [0, 1).
  double p;
};
TORCH_MODULE(FastDropout);

}  // namespace mil
