#include "devices/virtio/pci_transport.h"

#include <algorithm>
#include <array>

#include "base/log.h"

namespace rv::virtio {

namespace {

// struct virtio_pci_common_cfg (4.1.4.3).
namespace common {
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
}  // namespace common

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

bool is_power_of_two(uint32_t v) {
    return v != 0 && (v & (v - 1)) == 0;
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
        if (!is_power_of_two(s) || s > kMaxQueueSize)
            return make_error("virtio-pci: {} queue size {} is not a power of two <= {}",
                              device->name(), s, kMaxQueueSize);
    // One vector per queue plus one for config changes, as Linux asks for.
    auto vectors = static_cast<uint16_t>(std::min<size_t>(sizes.size() + 1, kPciMaxVectors));
    auto t = std::make_shared<VirtioPciTransport>(std::move(device), memory, msi, events, vectors);
    RV_TRY_VOID(t->build_capabilities());
    return t;
}

VirtioPciTransport::VirtioPciTransport(std::shared_ptr<VirtioDevice> device,
                                       const GuestMemory& memory, MsiRouter& msi,
                                       EventRegistrar& events, uint16_t vectors)
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
      m_msix(vectors, msi) {
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

void VirtioPciTransport::set_intx(std::shared_ptr<IrqLine> line) {
    std::lock_guard lock(m_lock);
    m_intx = std::move(line);
    m_intx_level = false;
    update_intx_locked();
}

void VirtioPciTransport::set_bar_moved_handler(std::function<void(uint64_t)> handler) {
    std::lock_guard lock(m_lock);
    m_bar_moved_handler = std::move(handler);
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
    std::function<void(uint64_t)> handler;
    {
        std::lock_guard lock(m_lock);
        m_bar_base = address;
        handler = m_bar_moved_handler;
    }
    if (handler) handler(address);
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
            // The slow path of a kick (the ioeventfd on this address is the
            // fast one). The queue is named by the address, not the value.
            if (rel % kPciNotifyMultiplier != 0) return;
            uint64_t queue = rel / kPciNotifyMultiplier;
            {
                std::lock_guard lock(m_lock);
                if (!m_activated || queue >= m_queues.size() || !m_queues[queue].enabled) return;
            }
            m_device->queue_notify(static_cast<uint16_t>(queue));
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

// --- common configuration ------------------------------------------------------

void VirtioPciTransport::common_read(uint64_t offset, std::span<uint8_t> data) {
    if (offset >= common::kSize) return;  // zeros
    // Asked before taking the lock: the device is never called under it.
    bool device_broken = m_device->needs_reset();
    std::array<uint8_t, common::kSize> image{};
    auto put = [&](uint64_t at, size_t width, uint64_t value) {
        store_le(std::span(image).subspan(at, width), value);
    };
    {
        std::lock_guard lock(m_lock);
        put(common::kDeviceFeatureSelect, 4, m_device_feature_select);
        put(common::kDeviceFeature, 4,
            m_device_feature_select < 2 ? m_offered >> (32 * m_device_feature_select) : 0);
        put(common::kDriverFeatureSelect, 4, m_driver_feature_select);
        put(common::kDriverFeature, 4,
            m_driver_feature_select < 2 ? m_driver_features >> (32 * m_driver_feature_select) : 0);
        put(common::kConfigMsixVector, 2, m_config_vector);
        put(common::kNumQueues, 2, m_queues.size());
        uint8_t status = m_status;
        if (device_broken && m_activated) status |= kStatusNeedsReset;
        put(common::kDeviceStatus, 1, status);
        put(common::kConfigGeneration, 1, m_generation);
        put(common::kQueueSelect, 2, m_queue_select);
        if (m_queue_select < m_queues.size()) {
            const QueueState& q = m_queues[m_queue_select];
            put(common::kQueueSize, 2, q.size);
            put(common::kQueueMsixVector, 2, q.msix_vector);
            put(common::kQueueEnable, 2, q.enabled ? 1 : 0);
            put(common::kQueueNotifyOff, 2, m_queue_select);
            put(common::kQueueDesc, 8, q.desc);
            put(common::kQueueDriver, 8, q.driver);
            put(common::kQueueDevice, 8, q.device);
        }
    }
    // Reads have no side effects, so any width at any offset is served.
    for (size_t i = 0; i < data.size() && offset + i < common::kSize; ++i)
        data[i] = image[offset + i];
}

void VirtioPciTransport::common_write(uint64_t offset, std::span<const uint8_t> data) {
    uint64_t value = 0;
    for (size_t i = 0; i < data.size() && i < 8; ++i) value |= uint64_t{data[i]} << (8 * i);
    size_t len = data.size();
    if (offset == common::kDeviceStatus && len == 1) {
        write_status(static_cast<uint8_t>(value));
        return;
    }
    std::lock_guard lock(m_lock);
    bool handled = true;
    if (offset == common::kDeviceFeatureSelect && len == 4) {
        m_device_feature_select = static_cast<uint32_t>(value);
    } else if (offset == common::kDriverFeatureSelect && len == 4) {
        m_driver_feature_select = static_cast<uint32_t>(value);
    } else if (offset == common::kDriverFeature && len == 4) {
        // Features are fixed once FEATURES_OK was accepted (3.1.1).
        if (!(m_status & kStatusFeaturesOk) && m_driver_feature_select < 2) {
            uint32_t shift = 32 * m_driver_feature_select;
            m_driver_features = (m_driver_features & ~(0xFFFF'FFFFull << shift)) | (value << shift);
        }
    } else if (offset == common::kConfigMsixVector && len == 2) {
        // A vector we cannot map reads back as NO_VECTOR (4.1.5.1.2.1).
        m_config_vector = value < m_msix.vector_count() ? static_cast<uint16_t>(value) : kNoVector;
    } else if (offset == common::kQueueSelect && len == 2) {
        m_queue_select = static_cast<uint16_t>(value);
    } else if (offset == common::kNumQueues && len == 2) {
    } else if (offset == common::kConfigGeneration && len == 1) {
    } else if (offset == common::kDeviceFeature && len == 4) {
    } else if (offset == common::kQueueNotifyOff && len == 2) {
        // read-only
    } else {
        handled = queue_field_write_locked(offset, len, value);
    }
    if (!handled && !m_warned_width) {
        m_warned_width = true;
        log::warn("virtio-pci {}: ignoring {}-byte common config write at {:#x}", name(), len,
                  offset);
    }
}

// Per-queue fields of the selected queue. Returns false for an access that
// matches no field at its width.
bool VirtioPciTransport::queue_field_write_locked(uint64_t offset, size_t len, uint64_t value) {
    auto field64 = [&](uint64_t base) {
        return offset >= base && offset < base + 8 &&
               ((len == 8 && offset == base) ||
                (len == 4 && (offset == base || offset == base + 4)));
    };
    bool known = (len == 2 && (offset == common::kQueueSize || offset == common::kQueueMsixVector ||
                               offset == common::kQueueEnable)) ||
                 field64(common::kQueueDesc) || field64(common::kQueueDriver) ||
                 field64(common::kQueueDevice);
    if (!known) return false;
    // The queue layout is fixed from DRIVER_OK until reset.
    if ((m_status & kStatusDriverOk) || m_queue_select >= m_queues.size()) return true;
    QueueState& q = m_queues[m_queue_select];
    switch (offset) {
        case common::kQueueSize:
            if (is_power_of_two(static_cast<uint32_t>(value)) && value <= q.max_size)
                q.size = static_cast<uint16_t>(value);
            else
                log::warn("virtio-pci {}: queue {} size {} refused (max {})", name(),
                          m_queue_select, value, q.max_size);
            return true;
        case common::kQueueMsixVector:
            q.msix_vector =
                value < m_msix.vector_count() ? static_cast<uint16_t>(value) : kNoVector;
            return true;
        case common::kQueueEnable:
            // Writing 0 is forbidden to the driver (4.1.4.3.2); ignore it.
            if (value == 1) q.enabled = true;
            return true;
        default:
            break;
    }
    auto set64 = [&](uint64_t& field, uint64_t base) {
        if (len == 8)
            field = value;
        else if (offset == base)
            field = (field & ~0xFFFF'FFFFull) | (value & 0xFFFF'FFFFull);
        else
            field = (field & 0xFFFF'FFFFull) | (value << 32);
    };
    if (field64(common::kQueueDesc)) set64(q.desc, common::kQueueDesc);
    if (field64(common::kQueueDriver)) set64(q.driver, common::kQueueDriver);
    if (field64(common::kQueueDevice)) set64(q.device, common::kQueueDevice);
    return true;
}

// --- status machine (3.1.1) ------------------------------------------------------

void VirtioPciTransport::write_status(uint8_t value) {
    std::lock_guard status_lock(m_status_lock);
    if (value == 0) {
        reset();
        return;
    }
    std::vector<QueueConfig> configs;
    std::vector<uint16_t> max_sizes;
    uint64_t acked = 0;
    bool features_ok = false;
    {
        std::lock_guard lock(m_lock);
        uint8_t old = m_status;
        // NEEDS_RESET is the device's bit; the driver can neither set nor clear it.
        uint8_t next =
            static_cast<uint8_t>((value & ~kStatusNeedsReset) | (old & kStatusNeedsReset));
        if ((next & kStatusFeaturesOk) && !(old & kStatusFeaturesOk)) {
            bool subset = (m_driver_features & ~m_offered) == 0;
            bool modern = (m_driver_features & kFVersion1) != 0;
            if (!subset || !modern) {
                log::warn("virtio-pci {}: refusing features {:#x} (offered {:#x})", name(),
                          m_driver_features, m_offered);
                next &= ~kStatusFeaturesOk;
            }
        }
        m_status = next;
        if (!(next & kStatusDriverOk) || (old & kStatusDriverOk)) return;
        features_ok = (next & kStatusFeaturesOk) != 0;
        acked = m_driver_features;
        for (const QueueState& q : m_queues) {
            if (!q.enabled) continue;
            configs.push_back(QueueConfig{.size = q.size,
                                          .desc = GuestAddress{q.desc},
                                          .avail = GuestAddress{q.driver},
                                          .used = GuestAddress{q.device}});
            max_sizes.push_back(q.max_size);
        }
    }
    if (!features_ok) {
        activate_failed("DRIVER_OK without FEATURES_OK");
        return;
    }
    bool event_idx = (acked & kFRingEventIdx) != 0;
    bool indirect = (acked & kFRingIndirectDesc) != 0;
    std::vector<Queue> queues;
    queues.reserve(configs.size());
    for (size_t i = 0; i < configs.size(); ++i) {
        auto queue = Queue::create(m_memory, configs[i], max_sizes[i], event_idx, indirect);
        if (!queue) {
            activate_failed(queue.error().message());
            return;
        }
        queues.push_back(std::move(*queue));
    }
    auto result = m_device->activate(ActivateArgs{.memory = m_memory,
                                                  .interrupt = make_interrupt(),
                                                  .queues = std::move(queues),
                                                  .acked_features = acked,
                                                  .events = m_events});
    if (!result) {
        activate_failed(result.error().message());
        return;
    }
    std::lock_guard lock(m_lock);
    m_activated = true;
}

void VirtioPciTransport::activate_failed(std::string_view why) {
    log::warn("virtio-pci {}: activation failed: {}", name(), why);
    {
        std::lock_guard lock(m_lock);
        m_status |= kStatusNeedsReset;
    }
    signal_config_change();
}

void VirtioPciTransport::reset() {
    bool was_active;
    {
        std::lock_guard lock(m_lock);
        was_active = m_activated;
        m_activated = false;
    }
    // Outside the lock: the device may wait for its event-loop work, which
    // may be signalling interrupts through us.
    if (was_active) m_device->reset();
    std::lock_guard lock(m_lock);
    m_device_feature_select = 0;
    m_driver_feature_select = 0;
    m_driver_features = 0;
    m_config_vector = kNoVector;
    m_status = 0;
    m_queue_select = 0;
    for (QueueState& q : m_queues) q = QueueState{.max_size = q.max_size, .size = q.max_size};
    m_isr = 0;
    update_intx_locked();
}

}  // namespace rv::virtio
