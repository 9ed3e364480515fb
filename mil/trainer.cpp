#include "mil/trainer.h"

#include <torch/nn/functional/loss.h>
#include <torch/optim/adam.h>
#include <torch/utils.h>

#include <chrono>
#include <cmath>
#include <random>

#include "mil/models/mil_model.h"
#include "mil/splits.h"

namespace mil {

void seed_torch(std::uint64_t seed) { torch::manual_seed(seed); }

std::vector<EpochRecord> fit(MilModelImpl& model, const TrainSpec& spec, const std::vector<Bag>& bags,
                             const std::vector<int>& train_indices, std::uint64_t seed, const EpochCallback& on_epoch) {
  TORCH_CHECK(!train_indices.empty(), "fit: no training bags");
  torch::optim::Adam optimizer(model.parameters(),
                               torch::optim::AdamOptions(spec.lr).weight_decay(spec.weight_decay));
  std::mt19937_64 order_rng(seed ^ 0x5851f42d4c957f2dULL);
  std::vector<int> order = train_indices;
  std::vector<EpochRecord> history;
  model.train();
  for (int epoch = 0; epoch < spec.epochs; ++epoch) {
    const auto start = std::chrono::steady_clock::now();
    deterministic_shuffle(order, order_rng);
    double loss_sum = 0.0;
    int finite_steps = 0, skipped = 0;
    int64_t instances = 0;
    for (int index : order) {
      const Bag& bag = bags.at(index);
      optimizer.zero_grad();
      const MilOutput out = model.forward(bag.features);
      const at::Tensor target = torch::full({1}, bag.label, torch::kLong);
      const at::Tensor loss = torch::nn::functional::cross_entropy(out.logits, target);
      const double value = loss.item<double>();
      instances += bag.features.size(0);
      if (!std::isfinite(value)) {
        ++skipped;
        continue;
      }
      loss.backward();
      optimizer.step();
      loss_sum += value;
      ++finite_steps;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EpochRecord record{epoch, finite_steps ? loss_sum / finite_steps : NAN, spec.lr, seconds,
                       seconds > 0 ? double(instances) / seconds : 0.0, skipped};
    history.push_back(record);
    if (on_epoch) on_epoch(record);
  }
  return history;
}

Predictions predict(MilModelImpl& model, const std::vector<Bag>& bags, const std::vector<int>& indices) {
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  Predictions out;
  for (int index : indices) {
    const Bag& bag = bags.at(index);
    const at::Tensor probabilities = model.forward(bag.features).logits.softmax(1).to(torch::kDouble).contiguous();
    const double* p = probabilities.data_ptr<double>();
    out.probabilities.emplace_back(p, p + probabilities.size(1));
    out.labels.push_back(bag.label);
  }
  model.train(was_training);
  return out;
}

}  // namespace mil
