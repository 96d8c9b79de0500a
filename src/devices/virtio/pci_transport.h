// The virtio 1.x ("modern") PCI transport (virtio 1.2, 4.1): presents a
// VirtioDevice as a PCI function with one 64-bit memory BAR holding the
// common configuration, ISR, device configuration, notification area and
// the MSI-X table/PBA, described by vendor-specific capabilities.
//
// Threads: vCPU threads access config space and the BAR; the event loop
// raises interrupts through the Interrupt handed to the device. One mutex
// guards transport state; the device is never called with it held (the
// device may signal interrupts from inside activate/reset/queue_notify).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "base/log.h"
#include "devices/event_registrar.h"
#include "devices/interrupt.h"
#include "devices/pci/config_space.h"
#include "devices/pci/msix.h"
#include "devices/pci/pci_device.h"
#include "devices/virtio/virtio_device.h"

namespace rv::virtio {

// BAR layout (all in BAR 4).
inline constexpr uint8_t kPciBarIndex = 4;
inline constexpr uint64_t kPciCommonCfgOffset = 0x0000;
inline constexpr uint64_t kPciIsrOffset = 0x1000;
inline constexpr uint64_t kPciDeviceCfgOffset = 0x2000;
inline constexpr uint64_t kPciNotifyOffset = 0x3000;
inline constexpr uint32_t kPciNotifyMultiplier = 4;
inline constexpr uint64_t kPciMsixTableOffset = 0x4000;
inline constexpr uint64_t kPciMsixPbaOffset = 0x5000;
inline constexpr uint64_t kPciRegionSize = 0x1000;
inline constexpr uint64_t kPciBarSize = 0x8000;
inline constexpr uint16_t kPciMaxQueues = kPciRegionSize / kPciNotifyMultiplier;
inline constexpr uint16_t kPciMaxVectors = kPciRegionSize / kMsixEntrySize;
inline constexpr uint16_t kNoVector = 0xFFFF;

// Capability cfg_type values (4.1.4).
inline constexpr uint8_t kPciCapCommonCfg = 1;
inline constexpr uint8_t kPciCapNotifyCfg = 2;
inline constexpr uint8_t kPciCapIsrCfg = 3;
inline constexpr uint8_t kPciCapDeviceCfg = 4;
inline constexpr uint8_t kPciCapPciCfg = 5;

// ISR status bits.
inline constexpr uint8_t kIsrQueue = 1;
inline constexpr uint8_t kIsrConfig = 2;

class VirtioPciTransport final : public PciDevice,
                                 public std::enable_shared_from_this<VirtioPciTransport> {
  public:
    // memory, msi and events must outlive the transport.
    static Result<std::shared_ptr<VirtioPciTransport>> create(std::shared_ptr<VirtioDevice> device,
                                                              const GuestMemory& memory,
                                                              MsiRouter& msi,
                                                              EventRegistrar& events);

    ~VirtioPciTransport() override;

    uint16_t queue_count() const { return static_cast<uint16_t>(m_queue_max.size()); }
    // Guest-physical address of queue's notification register (ioeventfd
    // target, any width, no datamatch); nullopt until the BAR is placed.
    std::optional<uint64_t> notify_address(uint16_t queue) const;
    static constexpr uint64_t notify_offset(uint16_t queue) {
        return kPciNotifyOffset + uint64_t{queue} * kPciNotifyMultiplier;
    }
    VirtioDevice& device() { return *m_device; }
    uint8_t device_status() const;

    // PciDevice
    std::string_view name() const override { return m_device->name(); }
    DeviceCounters counters() const override { return m_device->counters(); }
    void config_read(uint16_t offset, std::span<uint8_t> data) override;
    void config_write(uint16_t offset, std::span<const uint8_t> data) override;
    std::vector<PciBarInfo> bars() const override;
    void bar_moved(uint8_t index, uint64_t address) override;
    // One eventfd per queue at its notification register: a kick is an
    // ioeventfd, served on the event loop (notify()), never on the vCPU.
    std::vector<PciIoEvent> ioevents(uint8_t index) const override;
    // The legacy interrupt, used while MSI-X is off.
    void assign_intx(std::shared_ptr<IrqLine> line) override;
    void bar_read(uint8_t index, uint64_t offset, std::span<uint8_t> data) override;
    void bar_write(uint8_t index, uint64_t offset, std::span<const uint8_t> data) override;

    // Everything the guest programmed and the device's position in its
    // rings (pci_transport_state.cpp). The BAR's address is in the config
    // space; the PCI root maps it when it restores (PciRoot::restore).
    struct State {
        static constexpr uint32_t kVersion = 1;
        struct QueueRegs {
            uint16_t size{0};
            uint16_t msix_vector{kNoVector};
            bool enabled{false};
            uint64_t desc{0};
            uint64_t driver{0};
            uint64_t device{0};
            bool operator==(const QueueRegs&) const = default;
        };
        PciConfigSpace::State config;
        MsixTable::State msix;
        uint32_t device_feature_select{0};
        uint32_t driver_feature_select{0};
        uint64_t driver_features{0};
        uint16_t config_vector{kNoVector};
        uint8_t status{0};
        uint8_t generation{0};
        uint8_t isr{0};
        uint16_t queue_select{0};
        std::vector<QueueRegs> queues;  // one per queue the device has
        bool activated{false};
        // While activated: each enabled queue's position, in index order.
        std::vector<Queue::State> positions;
        std::vector<uint8_t> device;  // VirtioDevice::save_state()

        void encode(snapshot::Writer& w) const;
        static State decode(snapshot::Reader& r);
        bool operator==(const State&) const = default;
    };
    // Quiesces an active device first (VirtioDevice::quiesce), so call it
    // where that is allowed: on the event loop with the vCPUs parked.
    // Fails if the device cannot report its queues.
    Result<State> save();
    // Into a transport create()d for a device made from the same config,
    // never activated, with guest memory already holding the saved RAM:
    // re-activates the device from the saved queue positions and gives it a
    // kick per enabled queue (the guest's last kick may not have been
    // served). Refuses states no transport could be in (InvalidInput)
    // before changing anything; a failure after that (the rings no longer
    // valid, a backend that cannot start) leaves it half restored, to be
    // discarded with the VM being restored.
    Result<void> restore(const State& state);

    // What the device's Interrupt does (public for the adapter and tests).
    void signal_used_queue(uint16_t queue);
    void signal_config_change();

    VirtioPciTransport(std::shared_ptr<VirtioDevice> device, const GuestMemory& memory,
                       MsiRouter& msi, EventRegistrar& events, uint16_t vectors,
                       std::vector<EventFd> notify);  // use create()

  private:
    // A queue's registers as the driver set them (what State saves), and
    // the most entries the device allows.
    struct QueueState : State::QueueRegs {
        uint16_t max_size{0};
    };

    Result<void> build_capabilities();
    Result<void> check_state(const State& state) const;
    Result<void> activate_device(const std::vector<Queue::State>* positions);
    Result<void> watch_notifiers();
    // A kick of `queue` (its eventfd fired): passed to the device if the
    // queue is live.
    void notify(uint16_t queue);
    void common_read(uint64_t offset, std::span<uint8_t> data);
    void common_write(uint64_t offset, std::span<const uint8_t> data);
    bool queue_field_write_locked(uint64_t offset, size_t len, uint64_t value);
    void write_status(uint8_t value);
    void reset();
    void activate_failed(std::string_view why);
    void update_intx_locked();
    void pci_cfg_window(bool write, std::span<uint8_t> window);
    std::shared_ptr<Interrupt> make_interrupt();

    const std::shared_ptr<VirtioDevice> m_device;
    const GuestMemory& m_memory;
    EventRegistrar& m_events;
    const uint64_t m_offered;  // device features | VERSION_1
    const std::vector<uint16_t> m_queue_max;

    std::mutex m_status_lock;   // serialises status transitions (which call the device)
    mutable std::mutex m_lock;  // everything below
    PciConfigSpace m_config;
    std::optional<MsixCapability> m_msix_cap;
    MsixTable m_msix;  // has its own lock
    uint8_t m_pci_cfg_cap{0};
    uint32_t m_device_feature_select{0};
    uint32_t m_driver_feature_select{0};
    uint64_t m_driver_features{0};
    uint16_t m_config_vector{kNoVector};
    uint8_t m_status{0};
    uint8_t m_generation{0};
    uint16_t m_queue_select{0};
    std::vector<QueueState> m_queues;
    bool m_activated{false};
    uint8_t m_isr{0};
    std::shared_ptr<IrqLine> m_intx;
    bool m_intx_level{false};
    bool m_warned_width{false};
    // Refusals a driver can repeat on every exit, logged under m_lock (or
    // m_status_lock) on the vCPU thread: rate-limited so a guest cannot
    // flood the log or stall vCPUs on stderr.
    log::RateLimit m_queue_size_log;
    log::RateLimit m_features_log;
    log::RateLimit m_activate_log;
    std::optional<uint64_t> m_bar_base;
    const std::vector<EventFd> m_notify;  // per queue; registered in m_events while we live
    bool m_notify_watched{false};
};

}  // namespace rv::virtio
