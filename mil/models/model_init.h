#pragma once
// Building blocks shared by the aggregators, kept in one place so every model embeds and
// initialises instances the way the reference's `initialize_weights` does.
#include <string>

#include <torch/nn/module.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/normalization.h>

#include "mil/core/model_catalog.h"
#include "mil/core/specs.h"

namespace mil {

/// Linear(input_dim, embed_dim) + activation ("gelu" or "relu") + Dropout(dropout) when dropout >
/// 0: the reference's `feature` block (so its parameters are feature.0.weight/bias). `model` names
/// the caller in errors.
torch::nn::Sequential embedding_block(int64_t input_dim, int64_t embed_dim,
                                      const std::string& activation, double dropout,
                                      const char* model);

/// Reads the options every attention aggregator shares (embed_dim, attention_dim, dropout,
/// activation) into `options` (an XxxOptions with those TORCH_ARG setters); keys outside the
/// catalogue entry of `model` are errors naming it.
template <typename Options>
Options attention_options_from_json(const nlohmann::json& j, Options options,
                                    const std::string& model) {
  require_known_keys(j, model_info(model).option_keys, "model '" + model + "'.options");
  if (j.contains("embed_dim")) options.embed_dim(j.at("embed_dim").get<int64_t>());
  if (j.contains("attention_dim")) options.attention_dim(j.at("attention_dim").get<int64_t>());
  if (j.contains("dropout")) options.dropout(j.at("dropout").get<double>());
  if (j.contains("activation")) options.activation(j.at("activation").get<std::string>());
  return options;
}

/// Xavier-normal weights and zero biases for every Linear below `module`, as the reference.
void xavier_normal_linears(torch::nn::Module& module);

/// Runs `x` through the first `count` modules of `sequential` (count <= its size), for models whose
/// reference names put the instance embedding and a later stage in one Sequential.
at::Tensor forward_sequential_prefix(torch::nn::Sequential& sequential, at::Tensor x,
                                     std::size_t count);

/// `norm` applied to `x` in the norm's own (fp32) precision. Under CPU autocast a bf16 activation
/// reaches the LayerNorm, and LibTorch 1.13's CPU kernel rejects bf16 input with fp32 weights
/// ("expected scalar type BFloat16 but found Float"); CUDA autocast and LibTorch 2.x compute layer
/// norms in fp32 anyway, which this matches.
at::Tensor layer_norm_fp32(torch::nn::LayerNormImpl& norm, const at::Tensor& x);

}  // namespace mil
