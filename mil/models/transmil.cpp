#include "mil/models/transmil.h"

#include <ATen/ATen.h>
#include <torch/nn/init.h>
#include <torch/utils.h>

#include "mil/core/model_catalog.h"
#include "mil/models/model_init.h"

namespace mil {
namespace {

/// Standard deviation of the class token at init (the reference's nn.init.normal_(std=1e-6)).
constexpr double kClassTokenStd = 1e-6;

NystromAttentionOptions layer_attention(const TransMilOptions& o) {
  return NystromAttentionOptions(o.embed_dim())
      .heads(o.heads())
      .head_dim(o.embed_dim() / o.heads())
      .landmarks(o.embed_dim() / 2)
      .dropout(o.attention_dropout());
}

}  // namespace

TransMilImpl::TransMilImpl(TransMilOptions options_) : options(std::move(options_)) {
  TORCH_CHECK(options.input_dim() > 0 && options.class_count() > 1,
              "TransMil needs input_dim > 0 and class_count > 1, got ", options.input_dim(),
              " and ", options.class_count());
  TORCH_CHECK(
      options.heads() > 0 && options.embed_dim() % options.heads() == 0 && options.embed_dim() >= 2,
      "TransMil embed_dim must be a multiple of heads, got ", options.embed_dim(), " and ",
      options.heads());
  TORCH_CHECK(options.dropout() >= 0.0 && options.dropout() < 1.0,
              "TransMil dropout must be in [0, 1), got ", options.dropout());
  // Registration order is the reference's state_dict order (own parameter first, then children).
  cls_token = register_parameter("cls_token", at::empty({1, 1, options.embed_dim()}));
  pos_layer = register_module("pos_layer", Ppeg(PpegOptions(options.embed_dim())));
  feature = register_module(
      "feature", embedding_block(options.input_dim(), options.embed_dim(), options.activation(),
                                 options.dropout(), "TransMil"));
  layer1 = register_module("layer1", TransLayer(layer_attention(options)));
  layer2 = register_module("layer2", TransLayer(layer_attention(options)));
  norm = register_module("norm",
                         torch::nn::LayerNorm(torch::nn::LayerNormOptions({options.embed_dim()})));
  classifier =
      register_module("classifier", torch::nn::Linear(options.embed_dim(), options.class_count()));
  reset_parameters();
}

void TransMilImpl::reset_parameters() {
  torch::NoGradGuard no_grad;
  cls_token.normal_(0.0, kClassTokenStd);
  xavier_normal_linears(*this);
  for (auto& child : modules(/*include_self=*/false)) {
    if (auto* conv = child->as<torch::nn::Conv2d>()) {
      torch::nn::init::xavier_normal_(conv->weight);
      if (conv->bias.defined()) conv->bias.zero_();
    } else if (auto* layer_norm = child->as<torch::nn::LayerNorm>()) {
      layer_norm->weight.fill_(1.0);
      layer_norm->bias.zero_();
    }
  }
}

MilOutput TransMilImpl::forward(const at::Tensor& bag) {
  TORCH_CHECK(bag.dim() == 2, "TransMil expects [N, D] bag features, got ", bag.sizes());
  TORCH_CHECK(bag.size(1) == options.input_dim(), "TransMil expects D = ", options.input_dim(),
              ", got ", bag.sizes());
  TORCH_CHECK(bag.size(0) > 0, "TransMil needs at least one instance");
  const int64_t n = bag.size(0), side = grid_side(n);
  const at::Tensor grid = pad_to_square_by_repeating(feature->forward(bag));  // [side², d]
  at::Tensor x = at::cat({cls_token.view({1, options.embed_dim()}), grid});   // [1 + side², d]
  x = layer1->forward(x).output;
  x = at::cat({x.slice(0, 0, 1), pos_layer->forward(x.slice(0, 1), side)});
  const NystromAttentionOutput last = layer2->forward(x, /*want_attention=*/true);
  const at::Tensor embedding = norm->forward(last.output.slice(0, 0, 1));  // [1, d]
  MilOutput out;
  out.logits = classifier->forward(embedding);
  out.embedding = embedding;
  out.instance_scores = last.attention.slice(1, 0, n).mean(0);  // [N]
  return out;
}

TransMilOptions transmil_options_from_json(const nlohmann::json& j, int64_t input_dim,
                                           int64_t class_count) {
  require_known_keys(j, model_info("transmil").option_keys, "model 'transmil'.options");
  TransMilOptions options(input_dim, class_count);
  if (j.contains("embed_dim")) options.embed_dim(j.at("embed_dim").get<int64_t>());
  if (j.contains("heads")) options.heads(j.at("heads").get<int64_t>());
  if (j.contains("dropout")) options.dropout(j.at("dropout").get<double>());
  if (j.contains("attention_dropout"))
    options.attention_dropout(j.at("attention_dropout").get<double>());
  if (j.contains("activation")) options.activation(j.at("activation").get<std::string>());
  return options;
}

}  // namespace mil
