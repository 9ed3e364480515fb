#include "mil/mhim/dsmil_aggregator.h"

#include <torch/nn/modules/linear.h>

#include "mil/models/model_init.h"

namespace mil {

MhimDsmilImpl::MhimDsmilImpl(MhimDsmilOptions options_) : options(std::move(options_)) {
  TORCH_CHECK(options.dim() > 0 && options.class_count() > 1,
              "dsmil aggregator needs dim > 0 and class_count > 1, got ", options.dim(), " and ",
              options.class_count());
  i_classifier = register_module("i_classifier", torch::nn::Sequential(torch::nn::Linear(
                                                     options.dim(), options.class_count())));
  b_classifier = register_module(
      "b_classifier", DsmilBClassifier(options.dim(), options.class_count(), options.query_dim()));
  reset_parameters();
}

void MhimDsmilImpl::reset_parameters() { xavier_normal_linears(*this); }

AggregatorOutput MhimDsmilImpl::forward(const at::Tensor& instances, bool want_scores) {
  TORCH_CHECK(instances.dim() == 2 && instances.size(1) == options.dim() && instances.size(0) > 0,
              "dsmil aggregator expects [N, ", options.dim(),
              "] instance embeddings with N > 0, got ", instances.sizes());
  const at::Tensor instance_logits = i_classifier->forward(instances);  // [N, C]
  const DsmilBagOutput bag = b_classifier->forward(instances, instance_logits);
  AggregatorOutput out;
  out.logits = 0.5 * bag.logits + 0.5 * instance_logits.amax(0, /*keepdim=*/true);
  out.embedding = bag.representation.unsqueeze(0);  // [1, C, d]
  if (want_scores) {
    out.attention = bag.attention.amax(1);
    out.instance_logits = instance_logits;
  }
  return out;
}

}  // namespace mil
