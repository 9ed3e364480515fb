#pragma once
// Which GPU each worker rank of a sweep drives when K jobs share a GPU (`mhim sweep --jobs-per-gpu
// K`). The worker ranks of a node take the node's GPUs in order, K ranks per GPU: the i-th worker
// of the node (counting the node's ranks by local rank and leaving rank 0 out: it orchestrates and
// holds no GPU) runs on device i / K. Devices are counted as the process sees them: when
// CUDA_VISIBLE_DEVICES is set (Slurm sets it for --gpus-per-node), device d is its d-th entry.
// Pure functions, no CUDA: the caller supplies the device count, tests a fake list.
#include <optional>
#include <string>
#include <vector>

namespace mil {

/// The GPU one worker rank uses.
struct DeviceSlot {
  int device = -1;       ///< CUDA device index in this process (0-based); -1 = the CPU.
  std::string physical;  ///< That device's CUDA_VISIBLE_DEVICES entry (or its index when unset).
  int sharer = 0;        ///< Which of the ranks that share the device this is (0 .. K-1).
  bool oversubscribed = false;  ///< The node has more workers than GPUs x K: this one is extra.

  /// "cuda:<device>" or "cpu": what `mhim train --device` takes.
  std::string device_name() const;
};

/// The entries of a CUDA_VISIBLE_DEVICES value ("0,2" -> {"0", "2"}; UUIDs and MIG ids kept as
/// text; blanks trimmed); nullopt when `value` is null (unset: every device of the node). An empty
/// value means no device (CUDA's reading).
std::optional<std::vector<std::string>> parse_visible_devices(const char* value);

/// The index of a worker among the worker ranks of its node: `local_rank` (its rank among the ranks
/// of its node), less one when the orchestrator shares the node at a lower local rank.
int worker_index_on_node(int local_rank, bool orchestrator_on_node, int orchestrator_local_rank);

/// The slot of worker `worker_index` (worker_index_on_node) on a node with `visible` devices (the
/// process's view: parse_visible_devices, or "0".."n-1") and `jobs_per_gpu` ranks per device (>=
/// 1): device worker_index / jobs_per_gpu. A worker beyond devices x jobs_per_gpu wraps around
/// (device worker_index % devices) and is marked oversubscribed; with no device, the CPU. Throws
/// std::invalid_argument when jobs_per_gpu < 1 or worker_index < 0.
DeviceSlot device_slot(int worker_index, int jobs_per_gpu, const std::vector<std::string>& visible);

/// "0".."count-1": the visible list when CUDA_VISIBLE_DEVICES is unset and `count` devices exist.
std::vector<std::string> device_indices(int count);

}  // namespace mil
