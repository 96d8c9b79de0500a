// The layout of struct virtio_pci_common_cfg (4.1.4.3), shared by the two
// halves of VirtioPciTransport (pci_transport.cpp: PCI side, capabilities,
// interrupts; common_cfg.cpp: the common configuration and status machine).
#pragma once

#include <cstdint>

namespace rv::virtio::common {
constexpr uint64_t kDeviceFeatureSelect = 0x00;
constexpr uint64_t kDeviceFeature = 0x04;
constexpr uint64_t kDriverFeatureSelect = 0x08;
constexpr uint64_t kDriverFeature = 0x0C;
constexpr uint64_t kConfigMsixVector = 0x10;
constexpr uint64_t kNumQueues = 0x12;
constexpr uint64_t kDeviceStatus = 0x14;
constexpr uint64_t kConfigGeneration = 0x15;
constexpr uint64_t kQueueSelect = 0x16;
constexpr uint64_t kQueueSize = 0x18;
constexpr uint64_t kQueueMsixVector = 0x1A;
constexpr uint64_t kQueueEnable = 0x1C;
constexpr uint64_t kQueueNotifyOff = 0x1E;
constexpr uint64_t kQueueDesc = 0x20;
constexpr uint64_t kQueueDriver = 0x28;
constexpr uint64_t kQueueDevice = 0x30;
constexpr uint64_t kSize = 0x38;
}  // namespace rv::virtio::common
