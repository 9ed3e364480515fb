#pragma once
// Trains one aggregator on one split, one bag per step, as the reference engine does.
#include <cstdint>
#include <functional>
#include <vector>

#include "mil/bag_dataset.h"
#include "mil/specs.h"

namespace mil {

class MilModelImpl;

/// What one training epoch did.
struct EpochRecord {
  int epoch = 0;                    ///< 0-based.
  double mean_loss = 0.0;           ///< Mean task loss over the epoch's finite steps.
  double lr = 0.0;                  ///< Learning rate used in this epoch.
  double seconds = 0.0;             ///< Wall time of the epoch.
  double instances_per_second = 0;  ///< Training throughput.
  int skipped_steps = 0;            ///< Steps whose loss was not finite (no update made).
};

/// Class probabilities of a set of bags, with their labels.
struct Predictions {
  std::vector<std::vector<double>> probabilities;  ///< [bags][classes], softmax of the logits.
  std::vector<int> labels;
};

/// Seeds LibTorch's default generator (model init, dropout). Call before building the model so that
/// the same seed gives the same initial weights.
void seed_torch(std::uint64_t seed);

/// Called after every epoch; for progress lines.
using EpochCallback = std::function<void(const EpochRecord&)>;

/// Adam with coupled L2 weight decay, constant learning rate, fixed epochs, batch size one bag.
/// Bag order is reshuffled each epoch from `seed` (independently of torch's generator).
std::vector<EpochRecord> fit(MilModelImpl& model, const TrainSpec& spec, const std::vector<Bag>& bags,
                             const std::vector<int>& train_indices, std::uint64_t seed,
                             const EpochCallback& on_epoch = {});

/// Eval-mode forward of every bag in `indices`, without gradients.
Predictions predict(MilModelImpl& model, const std::vector<Bag>& bags, const std::vector<int>& indices);

}  // namespace mil
