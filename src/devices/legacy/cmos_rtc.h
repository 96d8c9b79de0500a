// MC146818-compatible CMOS real-time clock and NVRAM (ports 0x70/0x71).
//
// The time is computed from an injected wall clock at each read, so there is
// no update cycle: UIP always reads 0 and a read never sees a half-updated
// time. A guest that sets the clock (SET bit, write time, clear SET) moves
// its view of time by a fixed offset from the host clock, which then keeps
// ticking as on real hardware.
//
// No interrupts: periodic, alarm and update-ended interrupts are not
// emulated, so register C reads 0 and IRQ 8 is never raised. Linux's
// rtc_cmos only needs the IRQ for alarms and RTC_UIE; reading and setting
// the time work without it.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <string_view>

#include "base/error.h"
#include "bus/bus.h"
#include "snapshot/state_codec.h"

namespace rv {

class CmosRtc final : public BusDevice {
  public:
    static constexpr uint64_t kBase = 0x70;  // 0x70 index, 0x71 data
    static constexpr uint64_t kLength = 2;
    static constexpr unsigned kIrq = 8;  // reserved for the RTC; never raised

    // Unix time in seconds (UTC).
    using Clock = std::function<int64_t()>;
    static int64_t system_clock();

    explicit CmosRtc(Clock clock = system_clock);

    std::string_view name() const override { return "cmos_rtc"; }
    // Offset 0 is the index register, offset 1 the data register; a 2-byte
    // access at offset 0 (outw 0x70) selects and writes in one go.
    void read(uint64_t offset, std::span<uint8_t> data) override;
    void write(uint64_t offset, std::span<const uint8_t> data) override;

    // Records the guest's RAM size in the CMOS bytes firmware reads
    // (0x15-0x18 and 0x30/0x31 in KiB, 0x34/0x35 above 16 MiB and 0x5b-0x5d
    // above 4 GiB in 64 KiB units), capped at what each field can hold.
    void set_memory_size(uint64_t below_4g_bytes, uint64_t above_4g_bytes);

    // The NVRAM and the guest's clock offset. The offset is kept, not the
    // time, so a restored guest's clock reads the host's time plus what the
    // guest had set, as before the snapshot.
    struct State {
        static constexpr uint32_t kVersion = 1;
        std::array<uint8_t, 128> cmos{};
        uint8_t index{0};
        int64_t offset{0};

        void encode(snapshot::Writer& w) const;
        static State decode(snapshot::Reader& r);
        bool operator==(const State&) const = default;
    };
    State save() const;
    Result<void> restore(const State& state);

  private:
    uint8_t read_data();
    void write_data(uint8_t value);
    bool set_mode() const;
    uint8_t encode(unsigned value) const;
    bool decode(uint8_t raw, unsigned& value) const;
    // Fills the time registers from clock() + m_offset.
    void refresh_time();
    // Makes the time in the registers the guest's time from now on.
    void commit_time();

    mutable std::mutex m_mutex;
    Clock m_clock;
    std::array<uint8_t, 128> m_cmos{};
    uint8_t m_index{0};
    int64_t m_offset{0};  // guest time minus host clock, in seconds
};

}  // namespace rv
