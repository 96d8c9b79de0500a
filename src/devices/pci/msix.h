// MSI-X (PCI Local Bus 3.0, 6.8.2): the capability in configuration space
// and the vector table + pending-bit array that live inside a BAR. Each
// vector gets one GSI from the MsiRouter, allocated the first time the vector
// needs a route; the route follows the guest's (address, data) whenever the
// vector can fire (MSI-X enabled, vector and function unmasked), so a driver
// rewriting a masked entry does not cost a routing update per dword.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "base/error.h"
#include "devices/pci/config_space.h"
#include "devices/pci/msi.h"
#include "snapshot/state_codec.h"

namespace rv {

inline constexpr uint16_t kMsixMaxVectors = 2048;
inline constexpr uint16_t kMsixControlEnable = 1 << 15;
inline constexpr uint16_t kMsixControlFunctionMask = 1 << 14;
inline constexpr uint32_t kMsixEntrySize = 16;
inline constexpr uint32_t kMsixVectorMasked = 1;

// Where the table and PBA live: BAR index (BIR) and 8-byte aligned offset.
struct MsixLayout {
    uint16_t vectors{1};
    uint8_t table_bar{0};
    uint32_t table_offset{0};
    uint8_t pba_bar{0};
    uint32_t pba_offset{0};

    uint64_t table_size() const { return uint64_t{vectors} * kMsixEntrySize; }
    uint64_t pba_size() const { return (uint64_t{vectors} + 63) / 64 * 8; }
};

class MsixTable;

// The capability structure in configuration space (id 0x11, 12 bytes):
// message control (table size - 1, function mask bit 14, enable bit 15),
// table offset/BIR, PBA offset/BIR.
class MsixCapability {
  public:
    // Adds the capability to `config`; only bits 15:14 of message control
    // are guest-writable.
    static Result<MsixCapability> add_to(PciConfigSpace& config, const MsixLayout& layout);

    uint8_t offset() const { return m_offset; }
    uint16_t message_control(const PciConfigSpace& config) const;
    // Call after every guest config write: if it touched message control,
    // hands the enable / function-mask bits to the table.
    void config_written(const PciConfigSpace& config, uint16_t offset, size_t len,
                        MsixTable& table) const;

  private:
    explicit MsixCapability(uint8_t offset) : m_offset(offset) {}
    uint8_t m_offset;
};

// The vector table and PBA. Thread-safe: vCPU threads access the table,
// the event loop calls trigger().
class MsixTable {
  public:
    // `router` must outlive the table.
    MsixTable(uint16_t vectors, MsiRouter& router);

    uint16_t vector_count() const { return static_cast<uint16_t>(m_entries.size()); }

    // Accesses relative to the start of the table / PBA. Out-of-range bytes
    // read as zero; the PBA is read-only.
    void table_read(uint64_t offset, std::span<uint8_t> data) const;
    void table_write(uint64_t offset, std::span<const uint8_t> data);
    void pba_read(uint64_t offset, std::span<uint8_t> data) const;

    // Message control from configuration space.
    void set_control(bool enabled, bool function_masked);
    bool enabled() const;
    bool function_masked() const;

    // Signals `vector`. Returns false if MSI-X is disabled (the caller falls
    // back to INTx). Masked vectors become pending and fire on unmask;
    // vectors past the table are dropped (true: MSI-X owns the interrupt).
    bool trigger(uint16_t vector);
    bool pending(uint16_t vector) const;

    // The message the guest programmed (tests, debugging).
    MsiMessage message(uint16_t vector) const;
    bool vector_masked(uint16_t vector) const;

    // The table and PBA as the guest sees them, and message control. GSIs
    // are the VMM's, not the guest's: restore() allocates and routes them
    // afresh for every vector that can fire, and delivers pending vectors
    // that can.
    struct State {
        static constexpr uint32_t kVersion = 1;
        struct Vector {
            std::array<uint32_t, 4> words{0, 0, 0, kMsixVectorMasked};
            bool pending{false};
            bool operator==(const Vector&) const = default;
        };
        std::vector<Vector> vectors;
        bool enabled{false};
        bool function_masked{false};

        void encode(snapshot::Writer& w) const;
        static State decode(snapshot::Reader& r);
        bool operator==(const State&) const = default;
    };
    State save() const;
    // The vector count must match this table's.
    Result<void> restore(const State& state);

  private:
    struct Entry {
        // addr lo, addr hi, data, vector control, as the guest sees them.
        // Vectors start masked (6.8.2.9).
        std::array<uint32_t, 4> words{0, 0, 0, kMsixVectorMasked};
        bool pending{false};
        std::optional<uint32_t> gsi;
        std::optional<MsiMessage> routed;  // what the GSI points at now
    };
    static MsiMessage message_of(const Entry& e) {
        return MsiMessage{(uint64_t{e.words[1]} << 32) | e.words[0], e.words[2]};
    }
    bool can_fire(const Entry& e) const {
        return m_enabled && !m_function_masked && !(e.words[3] & kMsixVectorMasked);
    }
    // Points the vector's GSI at its message if it changed; false on failure.
    bool update_route(uint16_t vector);
    // Routes and delivers every vector that became deliverable with its
    // pending bit set. Returns GSIs to trigger (after the lock is dropped).
    void collect_deliverable(std::vector<uint32_t>& out);

    MsiRouter& m_router;
    mutable std::mutex m_lock;
    std::vector<Entry> m_entries;
    bool m_enabled{false};
    bool m_function_masked{false};
};

}  // namespace rv
