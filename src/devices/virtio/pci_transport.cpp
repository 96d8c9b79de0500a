#include "devices/virtio/pci_transport.h"

#include <algorithm>
#include <array>
#include <bit>
#include <sys/epoll.h>

#include "base/log.h"
#include "devices/virtio/common_cfg_layout.h"

namespace rv::virtio {

namespace {

// pci_cfg_data inside virtio_pci_cfg_cap, from the capability start.
constexpr size_t kCapPciCfgData = 16;

struct PciClass {
    uint8_t class_code, subclass;
};
PciClass class_for(uint32_t type) {
    switch (type) {
        case kTypeNet:
            return {0x02, 0x00};  // Ethernet controller
        case kTypeBlock:
            return {0x01, 0x80};  // other mass storage, as QEMU
        case kTypeConsole:
            return {0x07, 0x80};  // other communication controller
        case kTypeRng:
            return {0x00, 0xFF};
        default:
            return {0xFF, 0x00};
    }
}

// virtio_pci_cap body: cap_len, cfg_type, bar, id, padding[2], offset, length.
std::vector<uint8_t> cap_body(uint8_t cap_len, uint8_t cfg_type, uint8_t bar, uint32_t offset,
                              uint32_t length) {
    std::vector<uint8_t> b(cap_len - 2, 0);
    b[0] = cap_len;
    b[1] = cfg_type;
    b[2] = bar;
    store_le(std::span(b).subspan(6, 4), offset);
    store_le(std::span(b).subspan(10, 4), length);
    return b;
}

// Hands the device an Interrupt that does not keep the transport alive.
class TransportInterrupt final : public Interrupt {
  public:
    explicit TransportInterrupt(std::weak_ptr<VirtioPciTransport> t) : m_transport(std::move(t)) {}
    void signal_used_queue(uint16_t queue) override {
        if (auto t = m_transport.lock()) t->signal_used_queue(queue);
    }
    void signal_config_change() override {
        if (auto t = m_transport.lock()) t->signal_config_change();
    }

  private:
    std::weak_ptr<VirtioPciTransport> m_transport;
};

}  // namespace

Result<std::shared_ptr<VirtioPciTransport>> VirtioPciTransport::create(
    std::shared_ptr<VirtioDevice> device, const GuestMemory& memory, MsiRouter& msi,
    EventRegistrar& events) {
    if (!device) return make_error("virtio-pci: null device");
    auto sizes = device->queue_max_sizes();
    if (sizes.empty() || sizes.size() > kPciMaxQueues)
        return make_error("virtio-pci: {} has {} queues (1..{})", device->name(), sizes.size(),
                          kPciMaxQueues);
    for (uint16_t s : sizes)
        if (!std::has_single_bit(s) || s > kMaxQueueSize)
            return make_error("virtio-pci: {} queue size {} is not a power of two <= {}",
                              device->name(), s, kMaxQueueSize);
    // One vector per queue plus one for config changes, as Linux asks for.
    auto vectors = static_cast<uint16_t>(std::min<size_t>(sizes.size() + 1, kPciMaxVectors));
    std::vector<EventFd> notify;
    for (size_t q = 0; q < sizes.size(); ++q)
        notify.push_back(RV_TRY(with_context(EventFd::create(EFD_NONBLOCK | EFD_CLOEXEC),
                                             "virtio-pci: queue notification eventfd")));
    auto t = std::make_shared<VirtioPciTransport>(std::move(device), memory, msi, events, vectors,
                                                  std::move(notify));
    RV_TRY_VOID(t->build_capabilities());
    RV_TRY_VOID(t->watch_notifiers());
    return t;
}

Result<void> VirtioPciTransport::watch_notifiers() {
    std::weak_ptr<VirtioPciTransport> weak = weak_from_this();
    for (uint16_t q = 0; q < m_notify.size(); ++q) {
        // Edge-triggered, never read: each kick (KVM's ioeventfd, or the slow
        // path below) is a new edge, and a wake-up costs no read(2).
        RV_TRY_VOID(m_events.add(m_notify[q].fd(), EPOLLIN | EPOLLET, [weak, q](uint32_t) {
            if (auto t = weak.lock()) t->notify(q);
        }));
    }
    m_notify_watched = true;
    return {};
}

VirtioPciTransport::~VirtioPciTransport() {
    if (m_notify_watched)
        for (const EventFd& fd : m_notify) m_events.remove(fd.fd());
}

std::vector<PciIoEvent> VirtioPciTransport::ioevents(uint8_t index) const {
    if (index != kPciBarIndex) return {};
    std::vector<PciIoEvent> out;
    for (uint16_t q = 0; q < m_notify.size(); ++q)
        out.push_back(PciIoEvent{notify_offset(q), m_notify[q].fd()});
    return out;
}

void VirtioPciTransport::notify(uint16_t queue) {
    {
        std::lock_guard lock(m_lock);
        if (!m_activated || queue >= m_queues.size() || !m_queues[queue].enabled) return;
    }
    m_device->queue_notify(queue);
}

VirtioPciTransport::VirtioPciTransport(std::shared_ptr<VirtioDevice> device,
                                       const GuestMemory& memory, MsiRouter& msi,
                                       EventRegistrar& events, uint16_t vectors,
                                       std::vector<EventFd> notify)
    : m_device(std::move(device)),
      m_memory(memory),
      m_events(events),
      m_offered(m_device->device_features() | kFVersion1),
      m_queue_max(m_device->queue_max_sizes()),
      m_config(PciHeader{.vendor_id = 0x1AF4,
                         .device_id = static_cast<uint16_t>(0x1040 + m_device->device_type()),
                         .revision = 1,
                         .class_code = class_for(m_device->device_type()).class_code,
                         .subclass = class_for(m_device->device_type()).subclass,
                         .subsystem_vendor_id = 0x1AF4,
                         .subsystem_id = 0x40,
                         .interrupt_pin = 1}),
      m_msix(vectors, msi),
      m_notify(std::move(notify)) {
    m_queues.resize(m_queue_max.size());
    for (size_t i = 0; i < m_queues.size(); ++i)
        m_queues[i].max_size = m_queues[i].size = m_queue_max[i];
}

Result<void> VirtioPciTransport::build_capabilities() {
    std::lock_guard lock(m_lock);
    RV_TRY_VOID(
        m_config.add_bar(PciBarInfo{.index = kPciBarIndex, .size = kPciBarSize, .is_64bit = true}));
    auto add = [&](uint8_t type, uint64_t offset, uint64_t length) {
        auto body = cap_body(16, type, kPciBarIndex, static_cast<uint32_t>(offset),
                             static_cast<uint32_t>(length));
        return m_config.add_capability(kPciCapIdVendor, body);
    };
    RV_TRY_VOID(add(kPciCapCommonCfg, kPciCommonCfgOffset, common::kSize));
    RV_TRY_VOID(add(kPciCapIsrCfg, kPciIsrOffset, 1));
    RV_TRY_VOID(add(kPciCapDeviceCfg, kPciDeviceCfgOffset, kPciRegionSize));
    // virtio_pci_notify_cap: the cap plus notify_off_multiplier.
    auto notify = cap_body(20, kPciCapNotifyCfg, kPciBarIndex, kPciNotifyOffset,
                           static_cast<uint32_t>(queue_count()) * kPciNotifyMultiplier);
    store_le(std::span(notify).subspan(14, 4), kPciNotifyMultiplier);
    RV_TRY_VOID(m_config.add_capability(kPciCapIdVendor, notify));
    // virtio_pci_cfg_cap: bar, offset, length and the data window are the
    // driver's to write; accesses to the window reach the BAR (4.1.4.9).
    auto pci_cfg = cap_body(20, kPciCapPciCfg, 0, 0, 0);
    std::vector<uint8_t> mask(pci_cfg.size(), 0);
    mask[2] = 0xFF;
    std::fill(mask.begin() + 6, mask.end(), 0xFF);
    m_pci_cfg_cap = RV_TRY(m_config.add_capability(kPciCapIdVendor, pci_cfg, mask));
    m_msix_cap =
        RV_TRY(MsixCapability::add_to(m_config, MsixLayout{.vectors = m_msix.vector_count(),
                                                           .table_bar = kPciBarIndex,
                                                           .table_offset = kPciMsixTableOffset,
                                                           .pba_bar = kPciBarIndex,
                                                           .pba_offset = kPciMsixPbaOffset}));
    return {};
}

void VirtioPciTransport::assign_intx(std::shared_ptr<IrqLine> line) {
    std::lock_guard lock(m_lock);
    m_intx = std::move(line);
    m_intx_level = false;
    update_intx_locked();
}

std::optional<uint64_t> VirtioPciTransport::notify_address(uint16_t queue) const {
    std::lock_guard lock(m_lock);
    if (!m_bar_base || queue >= queue_count()) return std::nullopt;
    return *m_bar_base + notify_offset(queue);
}

uint8_t VirtioPciTransport::device_status() const {
    std::lock_guard lock(m_lock);
    return m_status;
}

std::vector<PciBarInfo> VirtioPciTransport::bars() const {
    std::lock_guard lock(m_lock);
    return m_config.bars();
}

void VirtioPciTransport::bar_moved(uint8_t index, uint64_t address) {
    if (index != kPciBarIndex) return;
    std::lock_guard lock(m_lock);
    m_bar_base = address;
}

// --- configuration space ---------------------------------------------------

void VirtioPciTransport::config_read(uint16_t offset, std::span<uint8_t> data) {
    uint16_t window = m_pci_cfg_cap + kCapPciCfgData;
    std::array<uint8_t, 4> bytes{};  // the window; stored bytes if the access is invalid
    {
        std::lock_guard lock(m_lock);
        m_config.read(offset, data);
        m_config.read(window, bytes);
        // The INTx pending bit in the status register (read-only, live).
        if (offset <= pci_reg::kStatus && offset + data.size() > pci_reg::kStatus && m_intx_level)
            data[pci_reg::kStatus - offset] |= kPciStatusInterrupt;
    }
    if (offset + data.size() <= window || offset >= window + 4u) return;
    pci_cfg_window(false, bytes);
    for (size_t i = 0; i < data.size(); ++i)
        if (offset + i >= window && offset + i < window + 4u) data[i] = bytes[offset + i - window];
}

void VirtioPciTransport::config_write(uint16_t offset, std::span<const uint8_t> data) {
    uint16_t window = m_pci_cfg_cap + kCapPciCfgData;
    std::array<uint8_t, 4> bytes{};
    {
        std::lock_guard lock(m_lock);
        m_config.write(offset, data);
        m_msix_cap->config_written(m_config, offset, data.size(), m_msix);
        update_intx_locked();  // INTx disable or MSI-X enable may have changed
        if (offset + data.size() <= window || offset >= window + 4u) return;
        m_config.read(window, bytes);
    }
    pci_cfg_window(true, bytes);
}

// The VIRTIO_PCI_CAP_PCI_CFG window: an access of cap.length (1, 2 or 4)
// bytes at cap.offset in BAR cap.bar. Called without the lock (BAR accesses
// take it, and notifications call the device).
void VirtioPciTransport::pci_cfg_window(bool write, std::span<uint8_t> window) {
    uint8_t bar;
    uint32_t offset, length;
    {
        std::lock_guard lock(m_lock);
        bar = m_config.read8(m_pci_cfg_cap + 4);
        offset = m_config.read32(m_pci_cfg_cap + 8);
        length = m_config.read32(m_pci_cfg_cap + 12);
    }
    if (bar != kPciBarIndex || (length != 1 && length != 2 && length != 4) || offset % length)
        return;
    if (write)
        bar_write(bar, offset, window.first(length));
    else
        bar_read(bar, offset, window.first(length));
}

// --- BAR -------------------------------------------------------------------

void VirtioPciTransport::bar_read(uint8_t index, uint64_t offset, std::span<uint8_t> data) {
    std::fill(data.begin(), data.end(), 0);
    if (index != kPciBarIndex || offset >= kPciBarSize || data.size() > kPciBarSize - offset)
        return;
    uint64_t region = offset & ~(kPciRegionSize - 1);
    uint64_t rel = offset - region;
    if (rel + data.size() > kPciRegionSize) return;  // straddles two regions
    switch (region) {
        case kPciCommonCfgOffset:
            common_read(rel, data);
            break;
        case kPciIsrOffset: {
            // Reading the ISR clears it and deasserts INTx (4.1.4.5).
            std::lock_guard lock(m_lock);
            if (rel == 0 && !data.empty()) data[0] = m_isr;
            m_isr = 0;
            update_intx_locked();
            break;
        }
        case kPciDeviceCfgOffset:
            m_device->read_config(rel, data);
            break;
        case kPciMsixTableOffset:
            m_msix.table_read(rel, data);
            break;
        case kPciMsixPbaOffset:
            m_msix.pba_read(rel, data);
            break;
        default:
            break;  // notify region reads as zero
    }
}

void VirtioPciTransport::bar_write(uint8_t index, uint64_t offset, std::span<const uint8_t> data) {
    if (index != kPciBarIndex || offset >= kPciBarSize || data.size() > kPciBarSize - offset)
        return;
    uint64_t region = offset & ~(kPciRegionSize - 1);
    uint64_t rel = offset - region;
    if (rel + data.size() > kPciRegionSize) return;
    switch (region) {
        case kPciCommonCfgOffset:
            common_write(rel, data);
            break;
        case kPciDeviceCfgOffset:
            m_device->write_config(rel, data);
            break;
        case kPciMsixTableOffset:
            m_msix.table_write(rel, data);
            break;
        case kPciNotifyOffset: {
            // The slow path of a kick (when KVM has no ioeventfd on this
            // address): signal the same eventfd, so the event loop serves it
            // as any kick. The queue is named by the address, not the value.
            if (rel % kPciNotifyMultiplier != 0) return;
            uint64_t queue = rel / kPciNotifyMultiplier;
            if (queue < m_notify.size()) (void)m_notify[queue].write(1);
            break;
        }
        default:
            break;  // ISR and PBA are read-only
    }
}

// --- interrupts --------------------------------------------------------------

void VirtioPciTransport::update_intx_locked() {
    bool level = m_isr != 0 && !(m_config.command() & kPciCommandIntxDisable) && !m_msix.enabled();
    if (!m_intx || level == m_intx_level) return;
    m_intx_level = level;
    m_intx->set_level(level);
}

void VirtioPciTransport::signal_used_queue(uint16_t queue) {
    uint16_t vector;
    {
        std::lock_guard lock(m_lock);
        if (queue >= m_queues.size()) return;
        vector = m_queues[queue].msix_vector;
    }
    // With MSI-X on, a queue without a vector gets no interrupt (4.1.5.1.2).
    if (vector != kNoVector ? m_msix.trigger(vector) : m_msix.enabled()) return;
    std::lock_guard lock(m_lock);
    m_isr |= kIsrQueue;
    update_intx_locked();
}

void VirtioPciTransport::signal_config_change() {
    uint16_t vector;
    {
        std::lock_guard lock(m_lock);
        ++m_generation;
        // The config bit is set whether or not MSI-X delivers (4.1.4.5.1).
        m_isr |= kIsrConfig;
        vector = m_config_vector;
    }
    if (vector != kNoVector ? m_msix.trigger(vector) : m_msix.enabled()) return;
    std::lock_guard lock(m_lock);
    update_intx_locked();
}

std::shared_ptr<Interrupt> VirtioPciTransport::make_interrupt() {
    return std::make_shared<TransportInterrupt>(weak_from_this());
}

}  // namespace rv::virtio
