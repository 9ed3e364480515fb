#include "mil/models/mil_model.h"

namespace mil {

int64_t count_trainable_parameters(const torch::nn::Module& module) {
  int64_t total = 0;
  for (const auto& p : module.parameters()) {
    if (p.requires_grad()) total += p.numel();
  }
  return total;
}

}  // namespace mil
