#include "mil/core/device_slots.h"

#include <algorithm>
#include <cctype>
#include <sstream>
#include <stdexcept>

namespace mil {

std::string DeviceSlot::device_name() const {
  return device < 0 ? "cpu" : "cuda:" + std::to_string(device);
}

std::optional<std::vector<std::string>> parse_visible_devices(const char* value) {
  if (value == nullptr) return std::nullopt;
  std::vector<std::string> out;
  std::stringstream in(value);
  for (std::string item; std::getline(in, item, ',');) {
    const auto space = [](unsigned char c) { return std::isspace(c) != 0; };
    item.erase(item.begin(), std::find_if_not(item.begin(), item.end(), space));
    item.erase(std::find_if_not(item.rbegin(), item.rend(), space).base(), item.end());
    // CUDA stops at the first invalid entry: an empty one (or "-1") hides every device after it.
    if (item.empty() || item == "-1") break;
    out.push_back(item);
  }
  return out;
}

int worker_index_on_node(int local_rank, bool orchestrator_on_node, int orchestrator_local_rank) {
  return orchestrator_on_node && orchestrator_local_rank < local_rank ? local_rank - 1 : local_rank;
}

DeviceSlot device_slot(int worker_index, int jobs_per_gpu,
                       const std::vector<std::string>& visible) {
  if (jobs_per_gpu < 1) throw std::invalid_argument("jobs per GPU must be >= 1");
  if (worker_index < 0) throw std::invalid_argument("a worker index is >= 0");
  DeviceSlot slot;
  if (visible.empty()) return slot;
  const int devices = int(visible.size());
  slot.oversubscribed = worker_index >= devices * jobs_per_gpu;
  slot.device = slot.oversubscribed ? worker_index % devices : worker_index / jobs_per_gpu;
  slot.sharer = slot.oversubscribed
                    ? jobs_per_gpu + (worker_index - devices * jobs_per_gpu) / devices
                    : worker_index % jobs_per_gpu;
  slot.physical = visible[std::size_t(slot.device)];
  return slot;
}

std::vector<std::string> device_indices(int count) {
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) out.push_back(std::to_string(i));
  return out;
}

}  // namespace mil
