// A virtio device model, independent of its transport (PCI or MMIO): feature
// bits, device-specific configuration, queues, activation and reset. A
// transport (VirtioPciTransport) owns the common configuration and the
// status machine and calls these.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "base/error.h"
#include "devices/event_registrar.h"
#include "devices/pci/pci_device.h"
#include "devices/virtio/queue.h"
#include "memory/guest_memory.h"

namespace rv::virtio {

// Device types (virtio 1.2, 5).
inline constexpr uint32_t kTypeNet = 1;
inline constexpr uint32_t kTypeBlock = 2;
inline constexpr uint32_t kTypeConsole = 3;
inline constexpr uint32_t kTypeRng = 4;

// Transport-independent feature bits.
inline constexpr uint64_t kFRingIndirectDesc = 1ull << 28;
inline constexpr uint64_t kFRingEventIdx = 1ull << 29;
inline constexpr uint64_t kFVersion1 = 1ull << 32;
inline constexpr uint64_t kFAccessPlatform = 1ull << 33;

// Device status bits.
inline constexpr uint8_t kStatusAcknowledge = 1;
inline constexpr uint8_t kStatusDriver = 2;
inline constexpr uint8_t kStatusDriverOk = 4;
inline constexpr uint8_t kStatusFeaturesOk = 8;
inline constexpr uint8_t kStatusNeedsReset = 64;
inline constexpr uint8_t kStatusFailed = 128;

// How a device tells the driver about used buffers and config changes.
// The transport maps these to MSI-X vectors or INTx + ISR.
class Interrupt {
public:
    virtual ~Interrupt() = default;
    virtual void signal_used_queue(uint16_t queue_index) = 0;
    virtual void signal_config_change() = 0;
};

// What a device gets when the driver sets DRIVER_OK.
struct ActivateArgs {
    const GuestMemory& memory;
    std::shared_ptr<Interrupt> interrupt;
    std::vector<Queue> queues;  // validated, one per queue the driver enabled (index order)
    uint64_t acked_features{0};
    EventRegistrar& events;     // for backend fds (TAP, io_uring eventfd)
    // The transport index of each of `queues` (a driver need not enable
    // every queue: virtio-net without MQ leaves the other pairs off). Empty
    // means 0, 1, 2, ... in order.
    std::vector<uint16_t> queue_indices{};
};

class VirtioDevice {
public:
    virtual ~VirtioDevice() = default;
    virtual std::string_view name() const = 0;
    virtual uint32_t device_type() const = 0;
    // Offered features, including kFVersion1 and the ring features it supports.
    virtual uint64_t device_features() const = 0;
    // Maximum size of each queue; the count is the number of queues.
    virtual std::vector<uint16_t> queue_max_sizes() const = 0;

    // Device-specific configuration (after the common config). Out-of-range
    // reads give zeros; writes to read-only fields are ignored.
    virtual void read_config(uint64_t offset, std::span<uint8_t> data) = 0;
    virtual void write_config(uint64_t offset, std::span<const uint8_t> data) = 0;

    // Called once per DRIVER_OK with validated queues. An error puts the
    // device into DEVICE_NEEDS_RESET. Called on a vCPU thread.
    virtual Result<void> activate(ActivateArgs args) = 0;
    // The driver wrote 0 to device_status: stop using guest memory, drop
    // queues, unregister backend fds, return to the pre-activation state.
    virtual void reset() = 0;

    // The driver notified queue `index` (ioeventfd), on the event-loop thread.
    virtual void queue_notify(uint16_t index) = 0;

    // True once the device has hit a guest error it cannot recover from;
    // the transport then reports DEVICE_NEEDS_RESET.
    virtual bool needs_reset() const { return false; }
    // Named counters and state for --stats (PciDevice::counters).
    virtual DeviceCounters counters() const { return {}; }

    // --- Snapshots. On the event loop, with the vCPUs parked and device fds
    // not served (Vm::pause), between activate() and reset().
    //
    // Settles everything the device holds between a ring and its backend, so
    // that the rings and queue positions alone describe its work: requests
    // taken from a ring complete (block I/O is waited for; a write the guest
    // was told is done is never replayed or lost), and chains held for later
    // (an rx packet waiting for more buffers, a request a rate limiter holds)
    // go back to the avail ring unconsumed. The device keeps running after.
    virtual Result<void> quiesce() { return {}; }
    // The position of each queue activate() was given, in that order. A
    // device that cannot tell returns fewer and cannot be snapshotted.
    virtual std::vector<Queue::State> queue_states() const { return {}; }
    // The device's own state beyond the transport's and the queues' (what
    // the driver set through the device config or a control queue), encoded
    // by the device; empty when it has none.
    virtual std::vector<uint8_t> save_state() const { return {}; }
    // Applies save_state()'s bytes to a device made from the same config,
    // after the transport re-activated it (if it was active). Refuses bytes
    // it did not write (InvalidInput), leaving the device as it was.
    virtual Result<void> restore_state(std::span<const uint8_t> state) {
        if (!state.empty()) return input_error("{}: unexpected device state", name());
        return {};
    }
    // Called once a VM restored from a snapshot or received by live
    // migration is about to run again (after restore_state), not after a
    // plain pause and resume; may be called from any thread. The guest may
    // now sit behind another switch port than the one its peers learned: a
    // NIC asks its driver to announce the guest (virtio-net's
    // GUEST_ANNOUNCE). Nothing to do for most devices.
    virtual void on_resumed_elsewhere() {}
};

}  // namespace rv::virtio
