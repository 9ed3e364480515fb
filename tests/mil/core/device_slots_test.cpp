#include "mil/core/device_slots.h"

#include <gtest/gtest.h>

namespace mil {
namespace {

TEST(DeviceSlots, ReadsCudaVisibleDevicesAsCudaDoes) {
  EXPECT_FALSE(parse_visible_devices(nullptr).has_value());
  EXPECT_EQ(parse_visible_devices("")->size(), 0u);
  EXPECT_EQ(*parse_visible_devices("0, 2"), (std::vector<std::string>{"0", "2"}));
  EXPECT_EQ(*parse_visible_devices("GPU-8a1f,MIG-3c"),
            (std::vector<std::string>{"GPU-8a1f", "MIG-3c"}));
  EXPECT_EQ(*parse_visible_devices("1,-1,2"), (std::vector<std::string>{"1"}))
      << "-1 hides the rest";
}

TEST(DeviceSlots, TheOrchestratorTakesNoSlotOnItsNode) {
  // Rank 0 is local rank 0 of node 0: local ranks 1.. are workers 0..
  EXPECT_EQ(worker_index_on_node(1, /*orchestrator_on_node=*/true, 0), 0);
  EXPECT_EQ(worker_index_on_node(8, true, 0), 7);
  EXPECT_EQ(worker_index_on_node(0, false, 0), 0) << "other nodes: every local rank is a worker";
  EXPECT_EQ(worker_index_on_node(2, true, 5), 2)
      << "ranks before the orchestrator keep their index";
}

TEST(DeviceSlots, KWorkersShareEachDeviceInOrder) {
  const std::vector<std::string> fake = {"0", "1"};
  const int k = 2;
  const int expected_device[] = {0, 0, 1, 1};
  const int expected_sharer[] = {0, 1, 0, 1};
  for (int i = 0; i < 4; ++i) {
    const DeviceSlot slot = device_slot(i, k, fake);
    EXPECT_EQ(slot.device, expected_device[i]) << "worker " << i;
    EXPECT_EQ(slot.sharer, expected_sharer[i]) << "worker " << i;
    EXPECT_FALSE(slot.oversubscribed);
  }
  EXPECT_EQ(device_slot(3, k, fake).device_name(), "cuda:1");
}

TEST(DeviceSlots, SlurmsVisibleDevicesAreNamedByTheirPhysicalIds) {
  const auto visible = *parse_visible_devices("3,5");
  const DeviceSlot slot = device_slot(/*worker_index=*/2, /*jobs_per_gpu=*/2, visible);
  EXPECT_EQ(slot.device, 1) << "CUDA renumbers the visible devices from 0";
  EXPECT_EQ(slot.physical, "5");
}

TEST(DeviceSlots, ExtraWorkersWrapAroundAndAreMarked) {
  const DeviceSlot slot = device_slot(5, 2, device_indices(2));  // 2 GPUs x 2 = 4 slots
  EXPECT_TRUE(slot.oversubscribed);
  EXPECT_EQ(slot.device, 1);
  EXPECT_EQ(slot.sharer, 2);
}

TEST(DeviceSlots, NoVisibleDeviceMeansTheCpu) {
  const DeviceSlot slot = device_slot(0, 4, {});
  EXPECT_EQ(slot.device, -1);
  EXPECT_EQ(slot.device_name(), "cpu");
  EXPECT_THROW(device_slot(0, 0, {"0"}), std::invalid_argument);
}

}  // namespace
}  // namespace mil
