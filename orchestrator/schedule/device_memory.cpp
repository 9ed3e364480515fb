#include "orchestrator/schedule/device_memory.h"

#include <stdexcept>

namespace mil::orch {

void DeviceMemoryGuard::add_device(const std::string& device, double capacity_bytes) {
  devices_[device].capacity = capacity_bytes;
}

void DeviceMemoryGuard::assign(int worker, const std::string& device) {
  if (devices_.count(device) == 0) {
    throw std::runtime_error("device memory: worker " + std::to_string(worker) +
                             " names undeclared device '" + device + "'");
  }
  finish(worker);
  device_of_[worker] = device;
}

bool DeviceMemoryGuard::fits(int worker, double bytes) const {
  const auto on = device_of_.find(worker);
  if (on == device_of_.end()) return true;
  const Device& d = devices_.at(on->second);
  if (d.capacity <= 0 || d.running == 0) return true;
  return d.used + bytes <= d.capacity * kUsableDeviceFraction;
}

void DeviceMemoryGuard::start(int worker, double bytes) {
  finish(worker);
  const auto on = device_of_.find(worker);
  if (on == device_of_.end()) return;
  Device& d = devices_.at(on->second);
  d.used += bytes;
  ++d.running;
  holding_[worker] = bytes;
}

void DeviceMemoryGuard::finish(int worker) {
  const auto held = holding_.find(worker);
  if (held == holding_.end()) return;
  Device& d = devices_.at(device_of_.at(worker));
  d.used -= held->second;
  --d.running;
  if (d.running == 0) d.used = 0;  // no rounding residue survives an idle device
  holding_.erase(held);
}

double DeviceMemoryGuard::used(const std::string& device) const {
  const auto it = devices_.find(device);
  return it == devices_.end() ? 0 : it->second.used;
}

int DeviceMemoryGuard::running(const std::string& device) const {
  const auto it = devices_.find(device);
  return it == devices_.end() ? 0 : it->second.running;
}

std::string DeviceMemoryGuard::device_of(int worker) const {
  const auto it = device_of_.find(worker);
  return it == device_of_.end() ? "" : it->second;
}

}  // namespace mil::orch
