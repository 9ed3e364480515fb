#pragma once
// TransMIL (Shao et al. 2021) as the reference's `modules/transmil.py::TransMIL` (`--model
// transmil`): instance embedding Linear(D, 512) + activation + Dropout, the bag padded to side²
// tokens (side = ceil(√N)) by repeating its first instances, a class token in front, TransLayer
// (pre-norm Nyström attention), PPEG on the side x side grid (class token passed through),
// TransLayer, LayerNorm, the class token through Linear(512, C). The padded duplicates take part in
// attention, as in the reference. Parameter names match the reference's state_dict: cls_token,
// pos_layer.proj{,1,2}.*, feature.0.*, layer{1,2}.norm.*,
// layer{1,2}.attn.{to_qkv,to_out.0,res_conv}.*, norm.*, classifier.*.
#include <string>

#include <torch/arg.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include "mil/models/mil_model.h"
#include "mil/models/transmil_blocks.h"

namespace mil {

struct TransMilOptions {
  TransMilOptions(int64_t input_dim, int64_t class_count)
      : input_dim_(input_dim), class_count_(class_count) {}
  /// D, the width of each input instance feature.
  TORCH_ARG(int64_t, input_dim);
  /// C, the number of bag classes.
  TORCH_ARG(int64_t, class_count);
  /// Token width (the reference's inner_dim); landmarks are embed_dim / 2, as the reference.
  TORCH_ARG(int64_t, embed_dim) = 512;
  /// Attention heads (n_heads); each is embed_dim / heads wide, as the reference.
  TORCH_ARG(int64_t, heads) = 8;
  /// Dropout after the instance embedding; 0 removes it. (The reference hard-codes 0.25 when
  /// non-zero.)
  TORCH_ARG(double, dropout) = 0.25;
  /// Dropout after each attention output projection (the reference's fixed 0.1).
  TORCH_ARG(double, attention_dropout) = 0.1;
  /// Embedding activation: "gelu" (the reference YAML's choice) or "relu".
  TORCH_ARG(std::string, activation) = "gelu";
};

class TransMilImpl : public MilModelImpl {
 public:
  explicit TransMilImpl(TransMilOptions options);
  /// bag [N, D] -> logits [1, C], embedding [1, embed_dim] and instance_scores [N]: layer 2's
  /// class-token attention to each real instance, averaged over heads (duplicates dropped; not
  /// normalised, since the Nyström rows leak mass to padding, duplicates and the class token, and
  /// may be slightly negative).
  MilOutput forward(const at::Tensor& bag) override;
  /// The reference's init: Xavier-normal Linear and Conv2d weights (res_conv and PPEG included)
  /// with zero biases, LayerNorm (1, 0), class token N(0, 1e-6²).
  void reset_parameters();

  TransMilOptions options;
  at::Tensor cls_token;  ///< [1, 1, embed_dim], the reference's shape.
  Ppeg pos_layer{nullptr};
  torch::nn::Sequential feature{nullptr};
  TransLayer layer1{nullptr};
  TransLayer layer2{nullptr};
  torch::nn::LayerNorm norm{nullptr};
  torch::nn::Linear classifier{nullptr};
};
TORCH_MODULE(TransMil);

/// Reads TransMilOptions fields (embed_dim, heads, dropout, attention_dropout, activation) from a
/// ModelSpec options object; other keys are errors.
TransMilOptions transmil_options_from_json(const nlohmann::json& options, int64_t input_dim,
                                           int64_t class_count);

}  // namespace mil
