#include "mil/mhim/attention_aggregator.h"

#include <stdexcept>

#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/linear.h>

namespace mil {

MhimAttentionInnerImpl::MhimAttentionInnerImpl(const MhimAttentionOptions& options) {
  attention = torch::nn::Sequential();
  attention->push_back(torch::nn::Linear(
      torch::nn::LinearOptions(options.dim(), options.attention_dim()).bias(false)));
  if (options.activation() == "relu") {
    attention->push_back(torch::nn::ReLU());
  } else if (options.activation() == "gelu") {
    attention->push_back(torch::nn::GELU());
  } else if (options.activation() == "tanh") {
    attention->push_back(torch::nn::Tanh());
  } else {
    throw std::runtime_error("attn aggregator: activation '" + options.activation() +
                             "' is not one of relu, gelu, tanh");
  }
  attention->push_back(
      torch::nn::Linear(torch::nn::LinearOptions(options.attention_dim(), 1).bias(false)));
  register_module("attention", attention);
}

MhimAttentionImpl::MhimAttentionImpl(MhimAttentionOptions options_) : options(std::move(options_)) {
  attention = register_module("attention", MhimAttentionInner(options));
}

AggregatorOutput MhimAttentionImpl::forward(const at::Tensor& instances, bool want_scores) {
  TORCH_CHECK(instances.dim() == 2 && instances.size(1) == options.dim(),
              "attn aggregator expects [N, ", options.dim(), "] instance embeddings, got ",
              instances.sizes());
  const at::Tensor weights = attention->attention->forward(instances).squeeze(1).softmax(0);  // [N]
  AggregatorOutput out;
  out.embedding = weights.unsqueeze(0).matmul(instances);  // [1, d]
  if (want_scores) {
    out.attention = weights;
    out.contributions = weights.unsqueeze(1) * instances;  // [N, d]
  }
  return out;
}

}  // namespace mil
