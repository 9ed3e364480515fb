#pragma once
// DSMIL (Li et al. 2021) as the reference's `modules/dsmil.py::MILNet` (`--model dsmil`): instance
// embedding Linear(D, 512) + activation, Dropout, an instance classifier Linear(512, C) and the
// critical-instance bag classifier (`BClassifier`): for each class the instance with the highest
// instance logit is its critical instance; every instance attends to it through a query net, the
// attention-pooled values B [C, 512] go through Conv1d(C, C, kernel 512) to the bag logits.
// Parameter names match the reference: feature.0.*, i_classifier.*, b_classifier.q.{0,2}.*,
// b_classifier.v.1.*, b_classifier.fcc.*.
#include <string>

#include <torch/arg.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/dropout.h>
#include <torch/nn/modules/linear.h>

#include "mil/models/fast_dropout.h"
#include "mil/models/mil_model.h"

namespace mil {

/// What DSMIL's bag classifier computes for one bag.
struct DsmilBagOutput {
  at::Tensor logits;          ///< [1, C] bag logits (the Conv1d applied to B).
  at::Tensor attention;       ///< [N, C] softmax over instances of the similarity to each class's
                              ///< critical instance.
  at::Tensor representation;  ///< [C, d] B = attentionᵀ · v(instances), one bag vector per class.
};

/// DSMIL's critical-instance bag classifier (the reference's BClassifier, shared by the stand-alone
/// model and MHIM's `dsmil` aggregator): q = Linear(d, 128) + ReLU + Linear(128, 128) + Tanh, v =
/// Dropout(0) + Linear(d, d) + ReLU, fcc = Conv1d(C, C, kernel d). Conv1d keeps PyTorch's default
/// initialisation.
class DsmilBClassifierImpl : public torch::nn::Module {
 public:
  DsmilBClassifierImpl(int64_t dim, int64_t class_count, int64_t query_dim = 128);
  /// instances [N, d] and their instance logits [N, C] -> bag logits, attention A and B.
  DsmilBagOutput forward(const at::Tensor& instances, const at::Tensor& instance_logits);

  torch::nn::Sequential q{nullptr};
  torch::nn::Sequential v{nullptr};
  torch::nn::Conv1d fcc{nullptr};
  int64_t dim;
  int64_t class_count;
};
TORCH_MODULE(DsmilBClassifier);

struct DsmilOptions {
  DsmilOptions(int64_t input_dim, int64_t class_count)
      : input_dim_(input_dim), class_count_(class_count) {}
  /// D, the width of each input instance feature.
  TORCH_ARG(int64_t, input_dim);
  /// C, the number of bag classes.
  TORCH_ARG(int64_t, class_count);
  /// Width of the instance embedding (the reference's inner_dim, 512); also the Conv1d kernel
  /// width.
  TORCH_ARG(int64_t, embed_dim) = 512;
  /// Width of the query net (the reference's fixed 128); the attention logits are divided by its
  /// root.
  TORCH_ARG(int64_t, query_dim) = 128;
  /// Dropout after the embedding activation (the reference's `dp`, = --dropout); 0 removes it.
  TORCH_ARG(double, dropout) = 0.25;
  /// Embedding activation: "gelu" (the reference YAML's choice) or "relu".
  TORCH_ARG(std::string, activation) = "gelu";
  /// Weight of the max-instance cross-entropy added by auxiliary_loss. The reference's default is 0
  /// (its --aux_alpha defaults to 0: the instance classifier then trains only through the
  /// critical-instance choice); the original DSMIL paper weighs the two losses 0.5 / 0.5.
  TORCH_ARG(double, aux_alpha) = 0.0;
};

class DsmilImpl : public MilModelImpl {
 public:
  explicit DsmilImpl(DsmilOptions options);
  /// bag [N, D] -> logits [1, C] (the bag classifier's), instance_scores [N] = max over classes of
  /// the attention A (each class's column sums to 1, so the scores need not), embedding [1, C·d] =
  /// B flattened (what the Conv1d classifies), instance_embeddings [N, d], instance_logits [N, C],
  /// class_attention Aᵀ.
  MilOutput forward(const at::Tensor& bag) override;
  /// aux_alpha · CE(max over instances of the instance logits, label); undefined when aux_alpha is
  /// 0.
  at::Tensor auxiliary_loss(const MilOutput& output, int64_t label) override;
  /// Xavier-normal Linear weights and zero biases (the reference's initialize_weights); Conv1d
  /// default.
  void reset_parameters();

  DsmilOptions options;
  torch::nn::Sequential feature{nullptr};
  FastDropout dp{nullptr};
  torch::nn::Linear i_classifier{nullptr};
  DsmilBClassifier b_classifier{nullptr};
};
TORCH_MODULE(Dsmil);

/// Reads DsmilOptions fields (embed_dim, query_dim, dropout, activation, aux_alpha) from a
/// ModelSpec options object (unknown keys are errors).
DsmilOptions dsmil_options_from_json(const nlohmann::json& options, int64_t input_dim,
                                     int64_t class_count);

}  // namespace mil
