#include "mil/models/model_init.h"

#include <torch/nn/init.h>
#include <torch/nn/modules/activation.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>
#include <torch/utils.h>

#include "mil/models/fast_dropout.h"

namespace mil {

torch::nn::Sequential embedding_block(int64_t input_dim, int64_t embed_dim,
                                      const std::string& activation, double dropout,
                                      const char* model) {
  torch::nn::Sequential block(torch::nn::Linear(input_dim, embed_dim));
  if (activation == "gelu") {
    block->push_back(torch::nn::GELU());
  } else if (activation == "relu") {
    block->push_back(torch::nn::ReLU());
  } else {
    TORCH_CHECK(false, model, " activation must be gelu or relu, got '", activation, "'");
  }
  if (dropout > 0.0) block->push_back(FastDropout(dropout));
  return block;
}

void xavier_normal_linears(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& child : module.modules(/*include_self=*/false)) {
    if (auto* linear = child->as<torch::nn::Linear>()) {
      torch::nn::init::xavier_normal_(linear->weight);
      if (linear->bias.defined()) linear->bias.zero_();
    }
  }
}

at::Tensor forward_sequential_prefix(torch::nn::Sequential& sequential, at::Tensor x,
                                     std::size_t count) {
  TORCH_CHECK(count <= sequential->size(), "forward_sequential_prefix: ", count,
              " modules requested of ", sequential->size());
  auto it = sequential->begin();
  for (std::size_t i = 0; i < count; ++i, ++it) x = it->forward(x);
  return x;
}

at::Tensor layer_norm_fp32(torch::nn::LayerNormImpl& norm, const at::Tensor& x) {
  const c10::ScalarType weight_type =
      norm.weight.defined() ? norm.weight.scalar_type() : at::kFloat;
  return norm.forward(x.scalar_type() == weight_type ? x : x.to(weight_type));
}

}  // namespace mil
