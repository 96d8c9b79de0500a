// The 82540's transmit path: walks the descriptor ring from TDH to TDT,
// keeps the two offload contexts (one for TSO, one for plain checksum
// offload, as the hardware does), gathers each packet's buffers until EOP,
// applies the offloads in software and hands finished Ethernet frames to the
// backend behind a zeroed virtio-net header.
//
// Everything read from the ring is hostile: the ring is validated on every
// walk (TDLEN a non-zero multiple of 128 inside guest RAM, TDH/TDT inside
// it), a walk stops after one lap, packets past kMaxTxPacket and contexts
// whose offsets fall outside the frame are dropped with a log line.
// Not synchronised: the device calls it under its lock.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "backends/net/net_backend.h"
#include "base/error.h"
#include "devices/legacy/e1000/e1000_regs.h"
#include "devices/legacy/e1000/tx_offload.h"
#include "devices/rate_limiter.h"
#include "devices/rate_limiter_timer.h"
#include "memory/guest_memory.h"
#include "snapshot/state_codec.h"

namespace rv::e1000 {

// Largest packet one descriptor chain may gather: a 64 KiB TSO payload
// plus the headers (hdr_len is at most 255) and a VLAN tag.
inline constexpr uint32_t kMaxTxPacket = 65536 + 256;

struct TxCounters {
    uint64_t packets{0};
    // What the backend took for those packets: the Ethernet frames without
    // the virtio-net header and without an FCS (a TAP has none), with the
    // VLAN tag and the short-frame padding the device added, a TSO packet
    // as the one frame it hands over; as virtio-net's tx_bytes counts.
    uint64_t bytes{0};
    uint64_t dropped{0};  // malformed, oversized, or refused by the backend
};

class TxEngine {
  public:
    struct Env {
        const GuestMemory& memory;
        NetBackend& backend;
        RegisterFile& regs;
        // A rate limiter in force (null: none) and the timer that brings the
        // device back when it refuses a packet.
        RateLimiter* limiter{nullptr};
        LimiterTimer* timer{nullptr};
    };

    // Processes descriptors from TDH up to TDT (updating TDH in regs) and
    // returns the interrupt causes to raise (TXDW, TXQE). With a limiter, a
    // packet costs its gathered bytes and 1 op, asked at its EOP descriptor;
    // refused, the walk stops there (TDH at the EOP, its data not gathered
    // yet, throttled() true) and the next process() retries it.
    uint32_t process(const Env& env);
    // The last process() stopped for the rate limiter.
    bool throttled() const { return m_throttled; }
    // Forgets both contexts and any half-gathered packet (CTRL.RST).
    void reset();
    // TX is enabled over a valid ring with descriptors between TDH and TDT:
    // what process() would walk.
    static bool has_work(const GuestMemory& memory, const RegisterFile& regs);

    // Why a packet being gathered is dropped at its EOP.
    enum class Drop : uint8_t { kNone, kTooLarge, kBadBuffer };

    // The offload contexts and the packet being gathered. A packet is
    // partial whenever TDT stopped short of its EOP or the limiter stopped
    // the walk at the EOP: TDH is already past the descriptors gathered, so
    // their bytes are state, not something to read again. (The VLAN tag is
    // taken from the EOP descriptor as the packet goes out: never pending.)
    // Versioned with the e1000's State, which holds it.
    struct State {
        TxContext ctx;
        TxContext tso_ctx;
        bool in_packet{false};
        // What the packet's first descriptor said (all zero when none).
        bool extended{false};
        bool tse{false};
        uint8_t popts{0};
        uint8_t drop{0};              // a Drop
        std::vector<uint8_t> packet;  // the bytes gathered so far

        void encode(snapshot::Writer& w) const;
        static State decode(snapshot::Reader& r);
        bool operator==(const State&) const = default;
    };
    State save() const;
    // Contexts no descriptor could have set, an unknown Drop, first-
    // descriptor fields without a packet, more than kMaxTxPacket bytes:
    // InvalidInput. check() first; restore() takes only what it accepted.
    static Result<void> check(const State& state);
    void restore(const State& state);

    const TxCounters& counters() const { return m_counters; }

  private:
    // Returns true if the descriptor asked for a status write-back (RS).
    bool handle_descriptor(const Env& env, const RawDesc& desc);
    void gather(const Env& env, uint64_t addr, uint32_t len);
    void finish_packet(const Env& env, const RawDesc& eop);
    void send_frame(const Env& env, std::span<const uint8_t> frame, TxOffload offload);
    void drop_packet(std::string_view why);
    void warn_once(unsigned bit, std::string_view text);

    TxContext m_ctx;      // plain checksum offload
    TxContext m_tso_ctx;  // TCP segmentation
    // The packet being gathered and what its first descriptor said.
    std::vector<uint8_t> m_packet;
    bool m_in_packet{false};
    bool m_extended{false};
    bool m_tse{false};
    uint8_t m_popts{0};
    bool m_vlan{false};  // insert an 802.1Q tag (VLE with CTRL.VME)
    uint16_t m_vlan_tci{0};
    Drop m_drop{Drop::kNone};  // set: drop the packet at EOP
    TxCounters m_counters;
    unsigned m_warned{0};
    bool m_throttled{false};
};

}  // namespace rv::e1000
