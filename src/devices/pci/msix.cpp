#include "devices/pci/msix.h"

#include <algorithm>

#include "base/log.h"

namespace rv {

Result<MsixCapability> MsixCapability::add_to(PciConfigSpace& config, const MsixLayout& layout) {
    if (layout.vectors == 0 || layout.vectors > kMsixMaxVectors)
        return make_error("msix: {} vectors (1..{})", layout.vectors, kMsixMaxVectors);
    if (layout.table_bar >= kPciBarCount || layout.pba_bar >= kPciBarCount ||
        (layout.table_offset & 7) != 0 || (layout.pba_offset & 7) != 0)
        return make_error("msix: bad table/PBA placement");
    std::array<uint8_t, 10> body{};
    store_le(std::span(body).subspan(0, 2), layout.vectors - 1u);
    store_le(std::span(body).subspan(2, 4), layout.table_offset | layout.table_bar);
    store_le(std::span(body).subspan(6, 4), layout.pba_offset | layout.pba_bar);
    std::array<uint8_t, 10> mask{};
    mask[1] = static_cast<uint8_t>((kMsixControlEnable | kMsixControlFunctionMask) >> 8);
    uint8_t offset = RV_TRY(config.add_capability(kPciCapIdMsix, body, mask));
    return MsixCapability(offset);
}

uint16_t MsixCapability::message_control(const PciConfigSpace& config) const {
    return config.read16(m_offset + 2);
}

void MsixCapability::config_written(const PciConfigSpace& config, uint16_t offset, size_t len,
                                    MsixTable& table) const {
    uint16_t control_at = m_offset + 2;
    if (offset + len <= control_at || offset >= control_at + 2u) return;
    uint16_t control = message_control(config);
    table.set_control((control & kMsixControlEnable) != 0,
                      (control & kMsixControlFunctionMask) != 0);
}

MsixTable::MsixTable(uint16_t vectors, MsiRouter& router)
    : m_router(router), m_entries(std::clamp<uint16_t>(vectors, 1, kMsixMaxVectors)) {}

void MsixTable::table_read(uint64_t offset, std::span<uint8_t> data) const {
    std::lock_guard lock(m_lock);
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t at = offset + i;
        uint64_t index = at / kMsixEntrySize;
        if (at < offset || index >= m_entries.size()) {
            data[i] = 0;
            continue;
        }
        uint32_t word = m_entries[index].words[(at % kMsixEntrySize) / 4];
        data[i] = static_cast<uint8_t>(word >> (8 * (at % 4)));
    }
}

void MsixTable::table_write(uint64_t offset, std::span<const uint8_t> data) {
    std::vector<uint32_t> fire;
    {
        std::lock_guard lock(m_lock);
        // Per touched entry: note its state before, apply the bytes, then act
        // on what changed. A 4- or 8-byte access touches one entry; anything
        // else is out of spec but handled the same way.
        size_t i = 0;
        while (i < data.size()) {
            uint64_t at = offset + i;
            uint64_t index = at / kMsixEntrySize;
            if (at < offset || index >= m_entries.size()) break;
            Entry& e = m_entries[index];
            bool was_masked = (e.words[3] & kMsixVectorMasked) != 0;
            for (; i < data.size() && (offset + i) / kMsixEntrySize == index; ++i) {
                uint64_t byte = (offset + i) % kMsixEntrySize;
                uint32_t& word = e.words[byte / 4];
                uint32_t shift = 8 * (byte % 4);
                word = (word & ~(0xFFu << shift)) | (uint32_t{data[i]} << shift);
            }
            e.words[3] &= kMsixVectorMasked;  // bits 31:1 are reserved, read 0
            auto vector = static_cast<uint16_t>(index);
            if (!can_fire(e)) continue;
            if (!update_route(vector)) continue;
            if (was_masked && e.pending) {
                e.pending = false;
                if (e.gsi) fire.push_back(*e.gsi);
            }
        }
    }
    for (uint32_t gsi : fire) m_router.trigger(gsi);
}

void MsixTable::pba_read(uint64_t offset, std::span<uint8_t> data) const {
    std::lock_guard lock(m_lock);
    for (size_t i = 0; i < data.size(); ++i) {
        uint8_t byte = 0;
        uint64_t first = (offset + i) * 8;
        for (uint64_t bit = 0; bit < 8; ++bit) {
            uint64_t v = first + bit;
            if (first / 8 == offset + i && v < m_entries.size() && m_entries[v].pending)
                byte |= static_cast<uint8_t>(1u << bit);
        }
        data[i] = byte;
    }
}

void MsixTable::set_control(bool enabled, bool function_masked) {
    std::vector<uint32_t> fire;
    {
        std::lock_guard lock(m_lock);
        m_enabled = enabled;
        m_function_masked = function_masked;
        collect_deliverable(fire);
    }
    for (uint32_t gsi : fire) m_router.trigger(gsi);
}

void MsixTable::collect_deliverable(std::vector<uint32_t>& out) {
    for (size_t v = 0; v < m_entries.size(); ++v) {
        Entry& e = m_entries[v];
        if (!can_fire(e) || !update_route(static_cast<uint16_t>(v))) continue;
        if (e.pending && e.gsi) {
            e.pending = false;
            out.push_back(*e.gsi);
        }
    }
}

bool MsixTable::update_route(uint16_t vector) {
    Entry& e = m_entries[vector];
    if (!e.gsi) {
        auto gsi = m_router.allocate_gsi();
        if (!gsi) {
            log::warn("msix: no GSI for vector {}: {}", vector, gsi.error().message());
            return false;
        }
        e.gsi = *gsi;
    }
    MsiMessage message = message_of(e);
    if (e.routed == message) return true;
    if (auto r = m_router.set_route(*e.gsi, message); !r) {
        log::warn("msix: routing vector {} failed: {}", vector, r.error().message());
        e.routed.reset();
        return false;
    }
    e.routed = message;
    return true;
}

bool MsixTable::enabled() const {
    std::lock_guard lock(m_lock);
    return m_enabled;
}

bool MsixTable::function_masked() const {
    std::lock_guard lock(m_lock);
    return m_function_masked;
}

bool MsixTable::trigger(uint16_t vector) {
    uint32_t gsi;
    {
        std::lock_guard lock(m_lock);
        if (!m_enabled) return false;
        if (vector >= m_entries.size()) return true;
        Entry& e = m_entries[vector];
        if (!can_fire(e)) {
            e.pending = true;
            return true;
        }
        // Routes are kept current while a vector can fire; a missing GSI
        // means allocation failed and was logged then.
        if (!e.gsi || !e.routed) return true;
        gsi = *e.gsi;
    }
    m_router.trigger(gsi);
    return true;
}

bool MsixTable::pending(uint16_t vector) const {
    std::lock_guard lock(m_lock);
    return vector < m_entries.size() && m_entries[vector].pending;
}

MsiMessage MsixTable::message(uint16_t vector) const {
    std::lock_guard lock(m_lock);
    return vector < m_entries.size() ? message_of(m_entries[vector]) : MsiMessage{};
}

bool MsixTable::vector_masked(uint16_t vector) const {
    std::lock_guard lock(m_lock);
    return vector >= m_entries.size() || (m_entries[vector].words[3] & kMsixVectorMasked) != 0;
}

void MsixTable::State::encode(snapshot::Writer& w) const {
    w.u16(static_cast<uint16_t>(vectors.size()));
    for (const Vector& v : vectors) {
        for (uint32_t word : v.words) w.u32(word);
        w.boolean(v.pending);
    }
    w.boolean(enabled);
    w.boolean(function_masked);
}

MsixTable::State MsixTable::State::decode(snapshot::Reader& r) {
    State s;
    const uint16_t count = r.u16();
    if (count > kMsixMaxVectors) {
        r.fail(fmt::format("{} MSI-X vectors", count));
        return s;
    }
    for (uint16_t i = 0; i < count && r.ok(); ++i) {
        Vector v;
        for (uint32_t& word : v.words) word = r.u32();
        v.pending = r.boolean();
        s.vectors.push_back(v);
    }
    s.enabled = r.boolean();
    s.function_masked = r.boolean();
    return s;
}

MsixTable::State MsixTable::save() const {
    std::lock_guard lock(m_lock);
    State s;
    for (const Entry& e : m_entries) s.vectors.push_back({e.words, e.pending});
    s.enabled = m_enabled;
    s.function_masked = m_function_masked;
    return s;
}

Result<void> MsixTable::restore(const State& s) {
    if (s.vectors.size() != m_entries.size())
        return input_error("MSI-X state: {} vectors, this device has {}", s.vectors.size(), m_entries.size());
    for (size_t v = 0; v < s.vectors.size(); ++v)
        if (s.vectors[v].words[3] & ~kMsixVectorMasked)
            return input_error("MSI-X state: vector {} control {:#x}", v, s.vectors[v].words[3]);
    std::vector<uint32_t> fire;
    {
        std::lock_guard lock(m_lock);
        for (size_t v = 0; v < s.vectors.size(); ++v) {
            m_entries[v].words = s.vectors[v].words;
            m_entries[v].pending = s.vectors[v].pending;
        }
        m_enabled = s.enabled;
        m_function_masked = s.function_masked;
        collect_deliverable(fire);
    }
    for (uint32_t gsi : fire) m_router.trigger(gsi);
    return {};
}

}  // namespace rv
