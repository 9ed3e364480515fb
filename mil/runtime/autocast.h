#pragma once
// Mixed-precision autocast for one device type, over the two LibTorch APIs we support: 1.13 has one
// function per device (is_cpu_enabled, set_autocast_gpu_dtype, ...), 2.4+ takes the device type
// (and deprecates the old names). Internal to the training and model code; include only from .cpp
// files.
#include <ATen/autocast_mode.h>
#include <c10/core/DeviceType.h>
#include <torch/version.h>

namespace mil {

/// Whether autocast is on for `device` (CPU or CUDA) on this thread.
inline bool autocast_is_enabled(c10::DeviceType device) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  return at::autocast::is_autocast_enabled(device);
#else
  return device == c10::DeviceType::CUDA ? at::autocast::is_enabled()
                                         : at::autocast::is_cpu_enabled();
#endif
}

/// Runs the enclosed forward passes in `dtype` under autocast on `device` when `enabled`; restores
/// the previous autocast state on exit. CPU and CUDA only.
class AutocastGuard {
 public:
  AutocastGuard(c10::DeviceType device, bool enabled, at::ScalarType dtype = at::kBFloat16)
      : device_(device), enabled_(enabled) {
    if (!enabled_) return;
    previous_enabled_ = is_enabled(device_);
    previous_dtype_ = get_dtype(device_);
    set_dtype(device_, dtype);
    set_enabled(device_, true);
  }
  ~AutocastGuard() {
    if (!enabled_) return;
    set_enabled(device_, previous_enabled_);
    set_dtype(device_, previous_dtype_);
    at::autocast::clear_cache();
  }
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
  static bool is_enabled(c10::DeviceType d) { return autocast_is_enabled(d); }
  static void set_enabled(c10::DeviceType d, bool on) { at::autocast::set_autocast_enabled(d, on); }
  static at::ScalarType get_dtype(c10::DeviceType d) { return at::autocast::get_autocast_dtype(d); }
  static void set_dtype(c10::DeviceType d, at::ScalarType t) {
    at::autocast::set_autocast_dtype(d, t);
  }
#else
  static bool is_enabled(c10::DeviceType d) { return autocast_is_enabled(d); }
  static void set_enabled(c10::DeviceType d, bool on) {
    d == c10::DeviceType::CUDA ? at::autocast::set_enabled(on) : at::autocast::set_cpu_enabled(on);
  }
  static at::ScalarType get_dtype(c10::DeviceType d) {
    return d == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype()
                                      : at::autocast::get_autocast_cpu_dtype();
  }
  static void set_dtype(c10::DeviceType d, at::ScalarType t) {
    d == c10::DeviceType::CUDA ? at::autocast::set_autocast_gpu_dtype(t)
                               : at::autocast::set_autocast_cpu_dtype(t);
  }
#endif

  c10::DeviceType device_;
  bool enabled_;
  bool previous_enabled_ = false;
  at::ScalarType previous_dtype_ = at::kBFloat16;
};

}  // namespace mil
