// VirtioPciTransport, second half: the common configuration structure the
// driver reads and writes (features, queues, MSI-X vectors) and the device
// status state machine (4.1.4.3, 2.1, 3.1), including reset.
#include <algorithm>
#include <array>
#include <bit>

#include "base/log.h"
#include "devices/virtio/common_cfg_layout.h"
#include "devices/virtio/pci_transport.h"

namespace rv::virtio {

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
            if (std::has_single_bit(static_cast<uint32_t>(value)) && value <= q.max_size)
                q.size = static_cast<uint16_t>(value);
            else
                log::warn_limited(m_queue_size_log,
                                  "virtio-pci {}: queue {} size {} refused (max {})", name(),
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
                log::warn_limited(m_features_log,
                                  "virtio-pci {}: refusing features {:#x} (offered {:#x})", name(),
                                  m_driver_features, m_offered);
                next &= ~kStatusFeaturesOk;
            }
        }
        m_status = next;
        if (!(next & kStatusDriverOk) || (old & kStatusDriverOk)) return;
        features_ok = (next & kStatusFeaturesOk) != 0;
    }
    if (!features_ok) {
        activate_failed("DRIVER_OK without FEATURES_OK");
        return;
    }
    if (auto result = activate_device(nullptr); !result) activate_failed(result.error().message());
}

// Hands the device its enabled queues (validated; at `positions` when
// restoring a snapshot) and the negotiated features.
Result<void> VirtioPciTransport::activate_device(const std::vector<Queue::State>* positions) {
    std::vector<QueueConfig> configs;
    std::vector<uint16_t> max_sizes;
    std::vector<uint16_t> indices;
    uint64_t acked = 0;
    {
        std::lock_guard lock(m_lock);
        acked = m_driver_features;
        for (uint16_t i = 0; i < m_queues.size(); ++i) {
            const QueueState& q = m_queues[i];
            if (!q.enabled) continue;
            indices.push_back(i);
            configs.push_back(QueueConfig{.size = q.size,
                                          .desc = GuestAddress{q.desc},
                                          .avail = GuestAddress{q.driver},
                                          .used = GuestAddress{q.device}});
            max_sizes.push_back(q.max_size);
        }
    }
    if (positions && positions->size() != configs.size())
        return input_error("{} queue positions for {} enabled queues", positions->size(),
                           configs.size());
    bool event_idx = (acked & kFRingEventIdx) != 0;
    bool indirect = (acked & kFRingIndirectDesc) != 0;
    std::vector<Queue> queues;
    queues.reserve(configs.size());
    for (size_t i = 0; i < configs.size(); ++i) {
        queues.push_back(RV_TRY(Queue::create(m_memory, configs[i], max_sizes[i], event_idx, indirect)));
        if (positions) queues.back().restore((*positions)[i]);
    }
    RV_TRY_VOID(m_device->activate(ActivateArgs{.memory = m_memory,
                                                .interrupt = make_interrupt(),
                                                .queues = std::move(queues),
                                                .acked_features = acked,
                                                .events = m_events,
                                                .queue_indices = std::move(indices)}));
    std::lock_guard lock(m_lock);
    m_activated = true;
    return {};
}

void VirtioPciTransport::activate_failed(std::string_view why) {
    log::warn_limited(m_activate_log, "virtio-pci {}: activation failed: {}", name(), why);
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
    for (QueueState& q : m_queues) {
        const uint16_t max = q.max_size;
        q = QueueState{};
        q.max_size = q.size = max;
    }
    m_isr = 0;
    update_intx_locked();
}

}  // namespace rv::virtio
