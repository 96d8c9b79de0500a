#include "devices/legacy/cmos_rtc.h"

#include <algorithm>
#include <chrono>

#include "base/log.h"

namespace rv {

namespace {

constexpr uint8_t kSeconds = 0x00;
constexpr uint8_t kMinutes = 0x02;
constexpr uint8_t kHours = 0x04;
constexpr uint8_t kDayOfWeek = 0x06;
constexpr uint8_t kDayOfMonth = 0x07;
constexpr uint8_t kMonth = 0x08;
constexpr uint8_t kYear = 0x09;
constexpr uint8_t kRegA = 0x0a;
constexpr uint8_t kRegB = 0x0b;
constexpr uint8_t kRegC = 0x0c;
constexpr uint8_t kRegD = 0x0d;
constexpr uint8_t kCentury = 0x32;  // the ACPI FADT's default century index

constexpr uint8_t kRegAUpdateInProgress = 0x80;
constexpr uint8_t kRegADefault = 0x26;  // 32.768 kHz time base, 1024 Hz rate
constexpr uint8_t kRegBSet = 0x80;
constexpr uint8_t kRegBUpdateIrq = 0x10;
constexpr uint8_t kRegBBinary = 0x04;
constexpr uint8_t kRegB24Hour = 0x02;
constexpr uint8_t kRegBDefault = kRegB24Hour;  // BCD, 24-hour: what PC firmware sets
constexpr uint8_t kRegDValidRam = 0x80;        // battery good
constexpr uint8_t kHourPm = 0x80;
constexpr uint8_t kIndexMask = 0x7f;  // bit 7 of the index masks NMI; not ours to model

bool is_time_register(uint8_t index) {
    switch (index) {
        case kSeconds:
        case kMinutes:
        case kHours:
        case kDayOfWeek:
        case kDayOfMonth:
        case kMonth:
        case kYear:
        case kCentury:
            return true;
        default:
            return false;
    }
}

void put16(std::array<uint8_t, 128>& cmos, uint8_t index, uint64_t value) {
    cmos[index] = static_cast<uint8_t>(value);
    cmos[index + 1] = static_cast<uint8_t>(value >> 8);
}

}  // namespace

int64_t CmosRtc::system_clock() {
    using namespace std::chrono;
    return duration_cast<seconds>(system_clock::now().time_since_epoch()).count();
}

CmosRtc::CmosRtc(Clock clock) : m_clock(std::move(clock)) {
    m_cmos[kRegA] = kRegADefault;
    m_cmos[kRegB] = kRegBDefault;
    m_cmos[kRegD] = kRegDValidRam;
}

void CmosRtc::read(uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(m_mutex);
    for (size_t i = 0; i < data.size(); ++i) {
        const uint64_t port = offset + i;
        // The index port is write-only on real chips; reading back the
        // index is harmless and helps debugging.
        data[i] = port == 0 ? m_index : port == 1 ? read_data() : 0xff;
    }
}

void CmosRtc::write(uint64_t offset, std::span<const uint8_t> data) {
    std::lock_guard lock(m_mutex);
    for (size_t i = 0; i < data.size(); ++i) {
        const uint64_t port = offset + i;
        if (port == 0) {
            m_index = data[i] & kIndexMask;
        } else if (port == 1) {
            write_data(data[i]);
        }
    }
}

void CmosRtc::set_memory_size(uint64_t below_4g_bytes, uint64_t above_4g_bytes) {
    constexpr uint64_t kKiB = 1024;
    constexpr uint64_t kMiB = 1024 * kKiB;
    std::lock_guard lock(m_mutex);
    put16(m_cmos, 0x15, 640);  // base memory in KiB
    const uint64_t extended_kib =
        below_4g_bytes > kMiB ? std::min<uint64_t>((below_4g_bytes - kMiB) / kKiB, 0xffff) : 0;
    put16(m_cmos, 0x17, extended_kib);
    put16(m_cmos, 0x30, extended_kib);
    const uint64_t above_16m =
        below_4g_bytes > 16 * kMiB
            ? std::min<uint64_t>((below_4g_bytes - 16 * kMiB) / (64 * kKiB), 0xffff)
            : 0;
    put16(m_cmos, 0x34, above_16m);
    const uint64_t above_4g = std::min<uint64_t>(above_4g_bytes / (64 * kKiB), 0xffffff);
    m_cmos[0x5b] = static_cast<uint8_t>(above_4g);
    m_cmos[0x5c] = static_cast<uint8_t>(above_4g >> 8);
    m_cmos[0x5d] = static_cast<uint8_t>(above_4g >> 16);
}

uint8_t CmosRtc::read_data() {
    const uint8_t index = m_index;
    if (is_time_register(index)) {
        if (!set_mode()) refresh_time();  // while SET, the guest's frozen values
        return m_cmos[index];
    }
    switch (index) {
        case kRegA:
            return m_cmos[kRegA] & static_cast<uint8_t>(~kRegAUpdateInProgress);
        case kRegC:
            return 0;  // no interrupt flags are ever raised; reading clears them anyway
        case kRegD:
            return kRegDValidRam;
        default:
            return m_cmos[index];
    }
}

void CmosRtc::write_data(uint8_t value) {
    const uint8_t index = m_index;
    if (is_time_register(index)) {
        if (set_mode()) {
            m_cmos[index] = value;  // takes effect when SET is cleared
            return;
        }
        // Writing one field of a running clock: take the current time,
        // change that field and keep counting from there.
        refresh_time();
        m_cmos[index] = value;
        commit_time();
        return;
    }
    switch (index) {
        case kRegA:
            m_cmos[kRegA] = value & static_cast<uint8_t>(~kRegAUpdateInProgress);
            return;
        case kRegB: {
            const bool was_set = set_mode();
            uint8_t next = value;
            if (next & kRegBSet) next &= static_cast<uint8_t>(~kRegBUpdateIrq);  // as the chip does
            // The frozen registers were written in the old data mode, so read
            // them back before the mode bits change.
            if (was_set && !(next & kRegBSet)) commit_time();
            m_cmos[kRegB] = next;
            if (!was_set && (next & kRegBSet)) refresh_time();  // freeze the current time
            return;
        }
        case kRegC:
        case kRegD:
            return;  // read-only
        default:
            m_cmos[index] = value;
            return;
    }
}

bool CmosRtc::set_mode() const {
    return m_cmos[kRegB] & kRegBSet;
}

uint8_t CmosRtc::encode(unsigned value) const {
    if (m_cmos[kRegB] & kRegBBinary) return static_cast<uint8_t>(value);
    return static_cast<uint8_t>(((value / 10) << 4) | (value % 10));
}

bool CmosRtc::decode(uint8_t raw, unsigned& value) const {
    if (m_cmos[kRegB] & kRegBBinary) {
        value = raw;
        return true;
    }
    if ((raw >> 4) > 9 || (raw & 0x0f) > 9) return false;
    value = (raw >> 4) * 10 + (raw & 0x0f);
    return true;
}

void CmosRtc::refresh_time() {
    using namespace std::chrono;
    const sys_seconds now{seconds{m_clock() + m_offset}};
    const sys_days day = floor<days>(now);
    const year_month_day date{day};
    const hh_mm_ss time{now - day};
    // Two-digit fields: a clock outside years 0-9999 wraps rather than
    // producing invalid BCD.
    const int year = static_cast<int>(date.year());
    const int century = (year / 100) % 100;
    const unsigned hour = static_cast<unsigned>(time.hours().count());

    m_cmos[kSeconds] = encode(static_cast<unsigned>(time.seconds().count()));
    m_cmos[kMinutes] = encode(static_cast<unsigned>(time.minutes().count()));
    if (m_cmos[kRegB] & kRegB24Hour) {
        m_cmos[kHours] = encode(hour);
    } else {
        const unsigned hour12 = hour % 12 == 0 ? 12 : hour % 12;
        m_cmos[kHours] = static_cast<uint8_t>(encode(hour12) | (hour >= 12 ? kHourPm : 0));
    }
    m_cmos[kDayOfWeek] = encode(weekday{day}.c_encoding() + 1);  // 1 = Sunday
    m_cmos[kDayOfMonth] = encode(static_cast<unsigned>(date.day()));
    m_cmos[kMonth] = encode(static_cast<unsigned>(date.month()));
    m_cmos[kYear] = encode(static_cast<unsigned>(((year % 100) + 100) % 100));
    m_cmos[kCentury] = encode(static_cast<unsigned>((century + 100) % 100));
}

void CmosRtc::commit_time() {
    using namespace std::chrono;
    unsigned second = 0, minute = 0, hour = 0, mday = 0, mon = 0, yy = 0, cc = 0;
    bool ok = decode(m_cmos[kSeconds], second) && decode(m_cmos[kMinutes], minute) &&
              decode(m_cmos[kDayOfMonth], mday) && decode(m_cmos[kMonth], mon) &&
              decode(m_cmos[kYear], yy) && decode(m_cmos[kCentury], cc);
    if (m_cmos[kRegB] & kRegB24Hour) {
        ok = ok && decode(m_cmos[kHours], hour) && hour < 24;
    } else {
        const bool pm = m_cmos[kHours] & kHourPm;
        ok = ok && decode(m_cmos[kHours] & static_cast<uint8_t>(~kHourPm), hour) && hour >= 1 &&
             hour <= 12;
        hour = hour % 12 + (pm ? 12 : 0);
    }
    const year_month_day date{year{static_cast<int>(cc * 100 + yy)}, month{mon}, day{mday}};
    ok = ok && second < 60 && minute < 60 && yy < 100 && cc < 100 && date.ok();
    if (!ok) {
        // A guest bug, not ours to crash on: keep the old time.
        log::warn("cmos_rtc: guest set an invalid time, ignored");
        return;
    }
    const auto guest = sys_days{date} + hours{hour} + minutes{minute} + seconds{second};
    m_offset = guest.time_since_epoch().count() - m_clock();
}

void CmosRtc::State::encode(snapshot::Writer& w) const {
    w.raw(cmos);
    w.u8(index);
    w.i64(offset);
}

CmosRtc::State CmosRtc::State::decode(snapshot::Reader& r) {
    State s;
    s.cmos = r.array<128>();
    s.index = r.u8();
    s.offset = r.i64();
    return s;
}

CmosRtc::State CmosRtc::save() const {
    std::lock_guard lock(m_mutex);
    return State{m_cmos, m_index, m_offset};
}

Result<void> CmosRtc::restore(const State& s) {
    if (s.index > kIndexMask) return input_error("cmos_rtc state: index {:#x}", s.index);
    // About 290 billion years either way; beyond it the time arithmetic overflows.
    constexpr int64_t kMaxOffset = int64_t{1} << 53;
    if (s.offset > kMaxOffset || s.offset < -kMaxOffset) return input_error("cmos_rtc state: clock offset {} s", s.offset);
    std::lock_guard lock(m_mutex);
    m_cmos = s.cmos;
    m_index = s.index;
    m_offset = s.offset;
    return {};
}

}  // namespace rv
