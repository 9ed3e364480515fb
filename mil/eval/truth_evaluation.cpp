#include "mil/eval/truth_evaluation.h"

#include <ATen/ATen.h>
#include <torch/utils.h>

#include "mil/eval/instance_metrics.h"

namespace mil {

nlohmann::json evaluate_instance_truth(MilModelImpl& model, const std::vector<Bag>& bags,
                                       const std::vector<int>& indices, c10::Device device,
                                       ScoreKind kind) {
  std::vector<int> with_truth;
  for (int i : indices) {
    if (bags.at(std::size_t(i)).instance_labels.defined()) with_truth.push_back(i);
  }
  if (with_truth.empty()) return nullptr;
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  std::vector<TruthSlide> slides;
  for (int i : with_truth) {
    const Bag& bag = bags[std::size_t(i)];
    const ScoredBag scored = score_instances(model, bag.features.to(device), kind, /*class=*/1);
    if (!scored.scores.defined() || scored.logits.size(1) != 2) {
      model.train(was_training);
      return nullptr;
    }
    TruthSlide s;
    s.label = bag.label;
    s.positive_probability = scored.logits.softmax(1)[0][1].item<double>();
    const at::Tensor scores = scored.scores.cpu().contiguous();
    s.scores.assign(scores.data_ptr<double>(), scores.data_ptr<double>() + scores.numel());
    const at::Tensor codes = bag.instance_labels.to(at::kByte).contiguous();
    s.codes.assign(codes.data_ptr<std::uint8_t>(), codes.data_ptr<std::uint8_t>() + codes.numel());
    slides.push_back(std::move(s));
  }
  model.train(was_training);
  nlohmann::json j = truth_metrics_json(truth_metrics(slides));
  j["scores"] = score_kind_name(kind);
  j["bags"] = slides.size();
  return j;
}

}  // namespace mil
