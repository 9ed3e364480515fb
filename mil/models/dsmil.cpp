#include "mil/models/dsmil.h"

#include <cmath>

#include <torch/nn/functional/loss.h>
#include <torch/nn/modules/activation.h>

#include "mil/core/model_catalog.h"
#include "mil/models/model_init.h"
#include "mil/models/model_options.h"

namespace mil {

DsmilBClassifierImpl::DsmilBClassifierImpl(int64_t dim_, int64_t class_count_, int64_t query_dim)
    : dim(dim_), class_count(class_count_) {
  TORCH_CHECK(dim > 0 && class_count > 0 && query_dim > 0,
              "DsmilBClassifier needs positive sizes, got dim ", dim, ", class_count ", class_count,
              ", query_dim ", query_dim);
  q = torch::nn::Sequential(torch::nn::Linear(dim, query_dim), torch::nn::ReLU(),
                            torch::nn::Linear(query_dim, query_dim), torch::nn::Tanh());
  v = torch::nn::Sequential(FastDropout(0.0), torch::nn::Linear(dim, dim), torch::nn::ReLU());
  fcc = torch::nn::Conv1d(torch::nn::Conv1dOptions(class_count, class_count, dim));
  register_module("q", q);
  register_module("v", v);
  register_module("fcc", fcc);
}

DsmilBagOutput DsmilBClassifierImpl::forward(const at::Tensor& instances,
                                             const at::Tensor& instance_logits) {
  TORCH_CHECK(instances.dim() == 2 && instances.size(1) == dim && instances.size(0) > 0,
              "DsmilBClassifier expects [N, ", dim, "] instances with N > 0, got ",
              instances.sizes());
  TORCH_CHECK(instance_logits.dim() == 2 && instance_logits.size(0) == instances.size(0) &&
                  instance_logits.size(1) == class_count,
              "DsmilBClassifier expects [N, ", class_count, "] instance logits, got ",
              instance_logits.sizes());
  const at::Tensor values = v->forward(instances);   // [N, d]
  const at::Tensor queries = q->forward(instances);  // [N, q]
  // The critical instance of class c is the one with the highest instance logit for c (the
  // reference sorts descending and takes the first; ties are measure-zero for real features).
  const at::Tensor critical = instances.index_select(0, instance_logits.argmax(0));  // [C, d]
  const at::Tensor critical_queries = q->forward(critical);                          // [C, q]
  const double scale = std::sqrt(static_cast<double>(queries.size(1)));
  const at::Tensor attention = (queries.mm(critical_queries.t()) / scale).softmax(0);  // [N, C]
  const at::Tensor representation = attention.t().mm(values);                          // [C, d]
  const at::Tensor logits = fcc->forward(representation.unsqueeze(0)).squeeze(-1);     // [1, C]
  return DsmilBagOutput{logits, attention, representation};
}

DsmilImpl::DsmilImpl(DsmilOptions options_) : options(std::move(options_)) {
  TORCH_CHECK(options.input_dim() > 0 && options.class_count() > 1,
              "Dsmil needs input_dim > 0 and class_count > 1, got ", options.input_dim(), " and ",
              options.class_count());
  TORCH_CHECK(options.dropout() >= 0.0 && options.dropout() < 1.0,
              "Dsmil dropout must be in [0, 1), got ", options.dropout());
  TORCH_CHECK(options.aux_alpha() >= 0.0, "Dsmil aux_alpha must be >= 0, got ",
              options.aux_alpha());
  feature = embedding_block(options.input_dim(), options.embed_dim(), options.activation(),
                            /*dropout=*/0.0, "Dsmil");
  dp = FastDropout(options.dropout());
  i_classifier = torch::nn::Linear(options.embed_dim(), options.class_count());
  b_classifier = DsmilBClassifier(options.embed_dim(), options.class_count(), options.query_dim());
  register_module("feature", feature);
  register_module("dp", dp);
  register_module("i_classifier", i_classifier);
  register_module("b_classifier", b_classifier);
  reset_parameters();
}

void DsmilImpl::reset_parameters() { xavier_normal_linears(*this); }

MilOutput DsmilImpl::forward(const at::Tensor& bag) {
  TORCH_CHECK(bag.dim() == 2, "Dsmil expects [N, D] bag features, got ", bag.sizes());
  TORCH_CHECK(bag.size(1) == options.input_dim(), "Dsmil expects D = ", options.input_dim(),
              ", got ", bag.sizes());
  TORCH_CHECK(bag.size(0) > 0, "Dsmil needs at least one instance");
  const at::Tensor h = dp->forward(feature->forward(bag));      // [N, d]
  const at::Tensor instance_logits = i_classifier->forward(h);  // [N, C]
  const DsmilBagOutput bag_out = b_classifier->forward(h, instance_logits);
  MilOutput out;
  out.logits = bag_out.logits;
  out.instance_scores = bag_out.attention.amax(1);
  out.embedding = bag_out.representation.reshape({1, -1});
  out.instance_embeddings = h;
  out.instance_logits = instance_logits;
  out.class_attention = bag_out.attention.t();
  return out;
}

at::Tensor DsmilImpl::auxiliary_loss(const MilOutput& output, int64_t label) {
  if (options.aux_alpha() == 0.0) return {};
  TORCH_CHECK(output.instance_logits.defined() && output.instance_logits.dim() == 2,
              "Dsmil auxiliary_loss needs this model's forward output (instance_logits [N, C])");
  TORCH_CHECK(label >= 0 && label < options.class_count(), "Dsmil auxiliary_loss: label ", label,
              " is not in [0, ", options.class_count(), ")");
  at::Tensor max_instance = output.instance_logits.amax(0, /*keepdim=*/true);  // [1, C]
  if (max_instance.element_size() < 4)
    max_instance = max_instance.to(at::kFloat);  // bf16 forward: the loss in fp32
  const at::Tensor target =
      at::full({1}, label, at::TensorOptions().dtype(at::kLong).device(max_instance.device()));
  return options.aux_alpha() * torch::nn::functional::cross_entropy(max_instance, target);
}

DsmilOptions dsmil_options_from_json(const nlohmann::json& j, int64_t input_dim,
                                     int64_t class_count) {
  const std::string ctx = "model 'dsmil'.options";
  require_known_keys(j, model_info("dsmil").option_keys, ctx);
  DsmilOptions o(input_dim, class_count);
  if (auto x = model_option<int64_t>(j, "embed_dim", ctx)) o.embed_dim(*x);
  if (auto x = model_option<int64_t>(j, "query_dim", ctx)) o.query_dim(*x);
  if (auto x = model_option<double>(j, "dropout", ctx)) o.dropout(*x);
  if (auto x = model_option<std::string>(j, "activation", ctx)) o.activation(*x);
  if (auto x = model_option<double>(j, "aux_alpha", ctx)) o.aux_alpha(*x);
  return o;
}

}  // namespace mil
