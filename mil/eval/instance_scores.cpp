#include "mil/eval/instance_scores.h"

#include <ATen/ATen.h>

#include <stdexcept>

#include "mil/mhim/mhim_network.h"
#include "mil/models/abmil.h"
#include "mil/models/clam.h"
#include "mil/models/gated_abmil.h"

namespace mil {
namespace {

std::invalid_argument unsupported(ScoreKind kind, const std::string& why) {
  return std::invalid_argument(score_kind_name(kind) + " scores: " + why +
                               "; use --scores attention");
}

/// The bag classifier and instance embeddings of a model that pools embeddings linearly with its
/// attention and classifies the pooled embedding with a linear layer; false for other models.
bool linear_head(MilModelImpl& model, const at::Tensor& features, const MilOutput& out,
                 std::function<at::Tensor(const at::Tensor&)>& classify, at::Tensor& embeddings) {
  if (auto* m = dynamic_cast<AbmilImpl*>(&model)) {
    embeddings = m->feature->forward(features);
    classify = [m](const at::Tensor& z) { return m->classifier->forward(z); };
    return true;
  }
  if (auto* m = dynamic_cast<GatedAbmilImpl*>(&model)) {
    embeddings = m->feature->forward(features);
    classify = [m](const at::Tensor& z) { return m->classifier->forward(z); };
    return true;
  }
  if (auto* m = dynamic_cast<ClamImpl*>(&model); m && !m->classifier.is_empty()) {
    embeddings = out.instance_embeddings;  // CLAM_SB: one attention branch, one classifier
    classify = [m](const at::Tensor& z) { return m->classifier->forward(z); };
    return embeddings.defined();
  }
  return false;
}

at::Tensor class_column(const at::Tensor& per_instance, int64_t target_class) {
  TORCH_CHECK(target_class >= 0 && target_class < per_instance.size(1), "class ", target_class,
              " is not one of the model's ", per_instance.size(1), " classes");
  return per_instance.select(1, target_class);
}

/// MHIM networks (mhim, mhim_pure): their aggregator gives contributions or instance logits.
at::Tensor mhim_scores(MhimNetworkImpl& net, const at::Tensor& features, ScoreKind kind,
                       int64_t c) {
  const at::Tensor h = net.embed(features);
  const AggregatorOutput agg = net.online_encoder->forward(h, /*want_scores=*/true);
  if (agg.instance_logits.defined()) {  // DSMIL aggregator
    return kind == ScoreKind::kLogit ? class_column(agg.instance_logits, c)
                                     : class_column(agg.instance_logits.softmax(1), c);
  }
  if (kind == ScoreKind::kLogit && net.options.baseline() == "attn")
    return class_column(net.predictor->forward(h), c);
  TORCH_CHECK(agg.contributions.defined(), "the MHIM aggregator gave no contributions");
  const at::Tensor u = net.predictor->forward(agg.contributions);
  return kind == ScoreKind::kLogit ? class_column(u, c) : class_column(u.softmax(1), c);
}

}  // namespace

ScoreKind parse_score_kind(const std::string& name) {
  if (name == "attention") return ScoreKind::kAttention;
  if (name == "class-aware") return ScoreKind::kClassAware;
  if (name == "logit") return ScoreKind::kLogit;
  throw std::invalid_argument("scores must be attention, class-aware or logit, not '" + name + "'");
}

std::string score_kind_name(ScoreKind kind) {
  switch (kind) {
    case ScoreKind::kAttention:
      return "attention";
    case ScoreKind::kClassAware:
      return "class-aware";
    case ScoreKind::kLogit:
      return "logit";
  }
  return "?";
}

ScoredBag score_instances(MilModelImpl& model, const at::Tensor& features, ScoreKind kind,
                          int64_t target_class) {
  const MilOutput out = model.forward(features);
  ScoredBag scored;
  scored.logits = out.logits;
  at::Tensor s;
  if (kind == ScoreKind::kAttention) {
    if (!out.instance_scores.defined()) return scored;  // a model without instance scores
    s = out.instance_scores;
  } else if (auto* net = dynamic_cast<MhimNetworkImpl*>(&model)) {
    s = mhim_scores(*net, features, kind, target_class);
  } else if (out.instance_logits.defined()) {  // DSMIL, mean/max pooling
    s = kind == ScoreKind::kLogit ? class_column(out.instance_logits, target_class)
                                  : class_column(out.instance_logits.softmax(1), target_class);
  } else {
    std::function<at::Tensor(const at::Tensor&)> classify;
    at::Tensor h;
    if (!linear_head(model, features, out, classify, h) || !out.instance_scores.defined()) {
      throw unsupported(kind,
                        "this model neither classifies instances nor pools them linearly into a "
                        "linear classifier (abmil, gabmil, clam_sb, dsmil, meanmil, maxmil, "
                        "mhim and mhim_pure can)");
    }
    const at::Tensor z = kind == ScoreKind::kLogit ? h : out.instance_scores.unsqueeze(1) * h;
    const at::Tensor u = classify(z);
    s = kind == ScoreKind::kLogit ? class_column(u, target_class)
                                  : class_column(u.softmax(1), target_class);
  }
  scored.scores = s.detach().reshape({-1}).to(at::kDouble).contiguous();
  TORCH_CHECK(scored.scores.numel() == features.size(0), "the model gave ", scored.scores.numel(),
              " instance scores for ", features.size(0), " instances");
  return scored;
}

}  // namespace mil
