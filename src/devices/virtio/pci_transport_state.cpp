// VirtioPciTransport, third part: the snapshot State (pci_transport.h).
// Saving settles the device first (VirtioDevice::quiesce); restoring
// re-activates it from the saved queue positions, as DRIVER_OK would.
#include <bit>

#include "devices/virtio/pci_transport.h"

namespace rv::virtio {

namespace {

// A snapshot is hostile input: bounds for the counts decode reads.
constexpr size_t kMaxDeviceState = 1 << 20;

}  // namespace

void VirtioPciTransport::State::encode(snapshot::Writer& w) const {
    config.encode(w);
    msix.encode(w);
    w.u32(device_feature_select);
    w.u32(driver_feature_select);
    w.u64(driver_features);
    w.u16(config_vector);
    w.u8(status);
    w.u8(generation);
    w.u8(isr);
    w.u16(queue_select);
    w.u16(static_cast<uint16_t>(queues.size()));
    for (const QueueRegs& q : queues) {
        w.u16(q.size);
        w.u16(q.msix_vector);
        w.boolean(q.enabled);
        w.u64(q.desc);
        w.u64(q.driver);
        w.u64(q.device);
    }
    w.boolean(activated);
    w.u16(static_cast<uint16_t>(positions.size()));
    for (const Queue::State& p : positions) p.encode(w);
    w.blob(device);
}

VirtioPciTransport::State VirtioPciTransport::State::decode(snapshot::Reader& r) {
    State s;
    s.config = PciConfigSpace::State::decode(r);
    s.msix = MsixTable::State::decode(r);
    s.device_feature_select = r.u32();
    s.driver_feature_select = r.u32();
    s.driver_features = r.u64();
    s.config_vector = r.u16();
    s.status = r.u8();
    s.generation = r.u8();
    s.isr = r.u8();
    s.queue_select = r.u16();
    uint16_t count = r.u16();
    if (count > kPciMaxQueues) r.fail(fmt::format("{} queues (at most {})", count, kPciMaxQueues));
    for (uint16_t i = 0; i < count && r.ok(); ++i) {
        QueueRegs q;
        q.size = r.u16();
        q.msix_vector = r.u16();
        q.enabled = r.boolean();
        q.desc = r.u64();
        q.driver = r.u64();
        q.device = r.u64();
        s.queues.push_back(q);
    }
    s.activated = r.boolean();
    count = r.u16();
    if (count > s.queues.size())
        r.fail(fmt::format("{} queue positions for {} queues", count, s.queues.size()));
    for (uint16_t i = 0; i < count && r.ok(); ++i) s.positions.push_back(Queue::State::decode(r));
    s.device = r.blob(kMaxDeviceState);
    return s;
}

Result<VirtioPciTransport::State> VirtioPciTransport::save() {
    // Serialised with the guest's status writes (none come while paused,
    // but a test or the API thread might).
    std::lock_guard status_lock(m_status_lock);
    bool active;
    {
        std::lock_guard lock(m_lock);
        active = m_activated;
    }
    State s;
    size_t enabled = 0;
    if (active) {
        RV_TRY_VOID(with_context(m_device->quiesce(), fmt::format("{}: quiescing", name())));
        s.positions = m_device->queue_states();
    }
    s.device = m_device->save_state();
    std::lock_guard lock(m_lock);
    s.config = m_config.save();
    s.msix = m_msix.save();
    s.device_feature_select = m_device_feature_select;
    s.driver_feature_select = m_driver_feature_select;
    s.driver_features = m_driver_features;
    s.config_vector = m_config_vector;
    s.status = m_status;
    s.generation = m_generation;
    s.isr = m_isr;
    s.queue_select = m_queue_select;
    for (const QueueState& q : m_queues) {
        s.queues.push_back(static_cast<const State::QueueRegs&>(q));
        enabled += q.enabled ? 1 : 0;
    }
    s.activated = m_activated;
    if (s.activated && s.positions.size() != enabled)
        return make_error("{}: the device reports {} queue positions for {} enabled queues",
                          name(), s.positions.size(), enabled);
    return s;
}

Result<void> VirtioPciTransport::check_state(const State& s) const {
    if (s.queues.size() != m_queue_max.size())
        return input_error("{} state: {} queues, this device has {}", name(), s.queues.size(),
                           m_queue_max.size());
    uint16_t vectors = m_msix.vector_count();
    auto vector_ok = [&](uint16_t v) { return v == kNoVector || v < vectors; };
    if (!vector_ok(s.config_vector))
        return input_error("{} state: config vector {}", name(), s.config_vector);
    size_t enabled = 0;
    for (size_t i = 0; i < s.queues.size(); ++i) {
        const State::QueueRegs& q = s.queues[i];
        if (!std::has_single_bit(q.size) || q.size > m_queue_max[i])
            return input_error("{} state: queue {} size {} (max {})", name(), i, q.size,
                               m_queue_max[i]);
        if (!vector_ok(q.msix_vector))
            return input_error("{} state: queue {} vector {}", name(), i, q.msix_vector);
        enabled += q.enabled ? 1 : 0;
    }
    if (s.driver_features & ~m_offered)
        return input_error("{} state: features {:#x} were not offered ({:#x})", name(),
                           s.driver_features, m_offered);
    if (s.isr & ~(kIsrQueue | kIsrConfig)) return input_error("{} state: ISR {:#x}", name(), s.isr);
    constexpr uint8_t kRunning = kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk |
                                 kStatusDriverOk;
    if (s.activated) {
        if ((s.status & kRunning) != kRunning || !(s.driver_features & kFVersion1))
            return input_error("{} state: active with status {:#x}", name(), s.status);
        if (s.positions.size() != enabled)
            return input_error("{} state: {} queue positions for {} enabled queues", name(),
                               s.positions.size(), enabled);
    } else if (!s.positions.empty()) {
        return input_error("{} state: queue positions for an inactive device", name());
    }
    return {};
}

Result<void> VirtioPciTransport::restore(const State& s) {
    std::lock_guard status_lock(m_status_lock);
    RV_TRY_VOID(check_state(s));
    {
        std::lock_guard lock(m_lock);
        if (m_activated || m_status != 0)
            return not_allowed_error("{}: restore into a device the guest has used", name());
        // The config space first: it refuses another device's state whole.
        RV_TRY_VOID(m_config.restore(s.config));
    }
    RV_TRY_VOID(m_msix.restore(s.msix));
    {
        std::lock_guard lock(m_lock);
        m_device_feature_select = s.device_feature_select;
        m_driver_feature_select = s.driver_feature_select;
        m_driver_features = s.driver_features;
        m_config_vector = s.config_vector;
        m_status = s.status;
        m_generation = s.generation;
        m_queue_select = s.queue_select;
        for (size_t i = 0; i < m_queues.size(); ++i) {
            m_queues[i] = QueueState{s.queues[i], m_queue_max[i]};
        }
        m_isr = s.isr;
        update_intx_locked();
    }
    if (s.activated) {
        // The rings are in guest memory, already restored: the queues are
        // validated against it as at DRIVER_OK.
        RV_TRY_VOID(with_context(activate_device(&s.positions), fmt::format("{}: re-activating", name())));
    }
    RV_TRY_VOID(m_device->restore_state(s.device));
    if (s.activated)
        for (size_t i = 0; i < m_queues.size(); ++i)
            if (m_queues[i].enabled) (void)m_notify[i].write(1);
    return {};
}

}  // namespace rv::virtio
