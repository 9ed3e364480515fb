#include "mil/models/mean_max.h"

#include <ATen/ATen.h>
#include <torch/nn/modules/linear.h>

#include "mil/core/model_catalog.h"
#include "mil/models/model_init.h"
#include "mil/models/model_options.h"

namespace mil {

MeanMaxMilImpl::MeanMaxMilImpl(MeanMaxMilOptions options_) : options(std::move(options_)) {
  TORCH_CHECK(options.input_dim() > 0 && options.class_count() > 1,
              "MeanMaxMil needs input_dim > 0 and class_count > 1, got ", options.input_dim(),
              " and ", options.class_count());
  TORCH_CHECK(options.pooling() == "mean" || options.pooling() == "max",
              "MeanMaxMil pooling must be mean or max, got '", options.pooling(), "'");
  TORCH_CHECK(options.dropout() >= 0.0 && options.dropout() < 1.0,
              "MeanMaxMil dropout must be in [0, 1), got ", options.dropout());
  head = embedding_block(options.input_dim(), options.hidden_dim(), options.activation(),
                         options.dropout(), "MeanMaxMil");
  head->push_back(torch::nn::Linear(options.hidden_dim(), options.class_count()));
  register_module("head", head);
  reset_parameters();
}

void MeanMaxMilImpl::reset_parameters() { xavier_normal_linears(*this); }

MilOutput MeanMaxMilImpl::forward(const at::Tensor& bag) {
  TORCH_CHECK(bag.dim() == 2, "MeanMaxMil expects [N, D] bag features, got ", bag.sizes());
  TORCH_CHECK(bag.size(1) == options.input_dim(), "MeanMaxMil expects D = ", options.input_dim(),
              ", got ", bag.sizes());
  TORCH_CHECK(bag.size(0) > 0, "MeanMaxMil needs at least one instance");
  const std::size_t last = head->size() - 1;
  const at::Tensor hidden = forward_sequential_prefix(head, bag, last);  // [N, h]
  const at::Tensor instance_logits =
      head->ptr<torch::nn::LinearImpl>(last)->forward(hidden);  // [N, C]
  const int64_t n = bag.size(0);
  MilOutput out;
  out.instance_logits = instance_logits;
  out.instance_embeddings = hidden;
  if (options.pooling() == "mean") {
    out.logits = instance_logits.mean(0, /*keepdim=*/true);
    out.instance_scores = at::full({n}, 1.0 / static_cast<double>(n), instance_logits.options());
    out.embedding = hidden.mean(0, /*keepdim=*/true);
  } else {
    const auto [values, winners] = instance_logits.max(0, /*keepdim=*/true);  // [1, C] each
    out.logits = values;
    const double share = 1.0 / static_cast<double>(options.class_count());
    out.instance_scores =
        at::bincount(winners.squeeze(0), /*weights=*/{}, n).to(instance_logits.scalar_type()) *
        share;
  }
  return out;
}

MeanMaxMilOptions mean_max_mil_options_from_json(const nlohmann::json& j, int64_t input_dim,
                                                 int64_t class_count, const std::string& pooling) {
  const std::string ctx = "model '" + pooling + "mil'.options";
  require_known_keys(j, model_info(pooling + "mil").option_keys, ctx);
  MeanMaxMilOptions o(input_dim, class_count);
  o.pooling(pooling);
  if (auto x = model_option<int64_t>(j, "hidden_dim", ctx)) o.hidden_dim(*x);
  if (auto x = model_option<double>(j, "dropout", ctx)) o.dropout(*x);
  if (auto x = model_option<std::string>(j, "activation", ctx)) o.activation(*x);
  return o;
}

}  // namespace mil
