#include "orchestrator/schedule/device_memory.h"

#include <gtest/gtest.h>

namespace mil::orch {
namespace {

/// Workers 1 and 2 share "g0" (10 bytes, 9 usable); worker 3 has no GPU.
DeviceMemoryGuard two_on_one_gpu() {
  DeviceMemoryGuard guard;
  guard.add_device("g0", 10);
  guard.assign(1, "g0");
  guard.assign(2, "g0");
  return guard;
}

TEST(DeviceMemoryGuard, AJobWaitsWhenItDoesNotFitBesideTheRunningOnes) {
  DeviceMemoryGuard guard = two_on_one_gpu();
  guard.start(1, 8);
  EXPECT_FALSE(guard.fits(2, 2));  // 8 + 2 > 0.9 x 10
  EXPECT_TRUE(guard.fits(2, 1));   // 8 + 1 = 9
  EXPECT_DOUBLE_EQ(guard.used("g0"), 8);
  EXPECT_EQ(guard.running("g0"), 1);
  guard.finish(1);
  EXPECT_TRUE(guard.fits(2, 2));
}

TEST(DeviceMemoryGuard, AJobLargerThanTheDeviceStillRunsAlone) {
  DeviceMemoryGuard guard = two_on_one_gpu();
  EXPECT_TRUE(guard.fits(1, 100)) << "nothing runs on g0: waiting would never end";
  guard.start(1, 100);
  EXPECT_FALSE(guard.fits(2, 0.5));
}

TEST(DeviceMemoryGuard, WorkersWithoutADeviceOrOfUnknownCapacityAlwaysFit) {
  DeviceMemoryGuard guard = two_on_one_gpu();
  guard.start(1, 9);
  EXPECT_TRUE(guard.fits(3, 1e12));
  guard.add_device("g1", 0);
  guard.assign(4, "g1");
  guard.assign(5, "g1");
  guard.start(4, 1e12);
  EXPECT_TRUE(guard.fits(5, 1e12));
  EXPECT_EQ(guard.device_of(3), "");
  EXPECT_EQ(guard.device_of(5), "g1");
}

TEST(DeviceMemoryGuard, StartingAgainReplacesWhatTheWorkerHeld) {
  DeviceMemoryGuard guard = two_on_one_gpu();
  guard.start(1, 4);
  guard.start(1, 3);
  EXPECT_DOUBLE_EQ(guard.used("g0"), 3);
  guard.finish(1);
  guard.finish(1);
  EXPECT_DOUBLE_EQ(guard.used("g0"), 0);
  EXPECT_EQ(guard.running("g0"), 0);
}

TEST(DeviceMemoryGuard, AssigningToAnUndeclaredDeviceThrows) {
  DeviceMemoryGuard guard;
  EXPECT_THROW(guard.assign(1, "nowhere"), std::runtime_error);
}

}  // namespace
}  // namespace mil::orch
