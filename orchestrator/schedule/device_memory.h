#pragma once
// Rank 0's view of the GPUs that several worker ranks share (`--jobs-per-gpu K`): each device's
// memory and the predicted device bytes of the jobs running on it. A job may start on a worker when
// its prediction fits beside theirs; otherwise it waits (Scheduler::next(worker, fits)) until a job
// on that device ends. Predictions are estimates (cost_model.h), so only kUsableDeviceFraction of a
// device is planned for, and a job always fits on a device where nothing runs: a job predicted
// larger than any device still runs, alone, rather than waiting forever. Pure: no CUDA, no clock.
#include <map>
#include <string>

namespace mil::orch {

/// Share of a device's memory that predicted jobs may fill together; the rest absorbs prediction
/// error and the allocator's fragmentation.
constexpr double kUsableDeviceFraction = 0.9;

/// Devices, the workers on them and the memory the running jobs are predicted to hold.
class DeviceMemoryGuard {
 public:
  /// Declares (or re-declares) device `device` (any unique name, e.g. "host7:GPU-3fa..." or
  /// "host7:0") with `capacity_bytes` of memory; <= 0 = unknown: every job fits.
  void add_device(const std::string& device, double capacity_bytes);
  /// Worker `worker` runs its jobs on `device` (declared with add_device). A worker never assigned
  /// (a CPU worker) has no limit.
  void assign(int worker, const std::string& device);
  /// Whether a job predicted at `bytes` may start on `worker` now: it has no device, its device's
  /// capacity is unknown, nothing runs there, or used + bytes <= capacity x kUsableDeviceFraction.
  bool fits(int worker, double bytes) const;
  /// A job predicted at `bytes` starts on `worker`; replaces what the worker held before.
  void start(int worker, double bytes);
  /// The worker's job ended (any way); nothing when it holds none.
  void finish(int worker);
  /// Predicted bytes of the jobs running on `device`.
  double used(const std::string& device) const;
  /// Jobs running on `device`.
  int running(const std::string& device) const;
  /// The device of `worker`, or "" when it has none.
  std::string device_of(int worker) const;

 private:
  struct Device {
    double capacity = 0;  ///< Bytes; <= 0 = unknown.
    double used = 0;      ///< Sum of the running jobs' predictions.
    int running = 0;      ///< Jobs running on it.
  };
  std::map<std::string, Device> devices_;
  std::map<int, std::string> device_of_;  ///< Worker -> device.
  std::map<int, double> holding_;         ///< Worker -> bytes of its running job.
};

}  // namespace mil::orch
