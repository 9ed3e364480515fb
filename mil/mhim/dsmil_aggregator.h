#pragma once
// MHIM's `dsmil` aggregator (the reference's modules/mhim_modules/baseline.py::DSMIL): an instance
// classifier Linear(d, C) and DSMIL's critical-instance bag classifier (DsmilBClassifier). It
// classifies by itself: logits = 0.5·bag logits + 0.5·max-instance logits, the average the
// reference's engine (engines/common_mil.py) trains on; the embedding MHIM's consistency loss
// compares is B [1, C, d]. With scores it returns the v1 score max_c A[i, c] as `attention` and the
// instance logits c [N, C], whose max over classes is MHIM's class-aware DSMIL score (raw logits,
// no softmax, as the reference).
// Keys: i_classifier.0.*, b_classifier.q.{0,2}.*, b_classifier.v.1.*, b_classifier.fcc.*.
#include <torch/arg.h>
#include <torch/nn/modules/container/sequential.h>

#include "mil/mhim/aggregator.h"
#include "mil/models/dsmil.h"

namespace mil {

struct MhimDsmilOptions {
  MhimDsmilOptions(int64_t dim, int64_t class_count) : dim_(dim), class_count_(class_count) {}
  /// d, the width of the instance embeddings (the reference's mlp_dim, 512).
  TORCH_ARG(int64_t, dim);
  /// C, the number of classes.
  TORCH_ARG(int64_t, class_count);
  /// Width of the bag classifier's query net (the reference's fixed 128).
  TORCH_ARG(int64_t, query_dim) = 128;
};

class MhimDsmilImpl : public MhimAggregatorImpl {
 public:
  explicit MhimDsmilImpl(MhimDsmilOptions options);
  /// instances [N, d] -> logits [1, C] (0.5·bag + 0.5·max-instance), embedding B [1, C, d]; with
  /// scores: attention [N] = max over classes of A, instance_logits [N, C].
  AggregatorOutput forward(const at::Tensor& instances, bool want_scores) override;
  /// Xavier-normal Linear weights and zero biases (MHIM's initialize_weights); the Conv1d keeps
  /// PyTorch's default.
  void reset_parameters();

  MhimDsmilOptions options;
  torch::nn::Sequential i_classifier{nullptr};
  DsmilBClassifier b_classifier{nullptr};
};
TORCH_MODULE(MhimDsmil);

}  // namespace mil
