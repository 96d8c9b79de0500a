// The e1000 register file: width handling, side effects of the special
// registers, plain storage for the rest, and the power-on/reset state.
#include <algorithm>

#include "base/log.h"
#include "devices/legacy/e1000/e1000.h"

namespace rv {

using namespace e1000;

namespace {

// Registers with no side effects: the guest's value is kept and read back.
bool is_plain(uint32_t offset) {
    switch (offset) {
        case reg::kCtrlExt:
        case reg::kFcal:
        case reg::kFcah:
        case reg::kFct:
        case reg::kFcttv:
        case reg::kTxcw:
        case reg::kRxcw:
        case reg::kTipg:
        case reg::kAifs:
        case reg::kLedctl:
        case reg::kPba:
        case reg::kFcrtl:
        case reg::kFcrth:
        case reg::kRdbal:
        case reg::kRdbah:
        case reg::kRdlen:
        case reg::kRdtr:
        case reg::kRxdctl:
        case reg::kRadv:
        case reg::kRsrpd:
        case reg::kTxdmac:
        case reg::kTdbal:
        case reg::kTdbah:
        case reg::kTdlen:
        case reg::kTdh:
        case reg::kTidv:
        case reg::kTxdctl:
        case reg::kTadv:
        case reg::kTspmt:
        case reg::kRxcsum:
        case reg::kWuc:
        case reg::kWufc:
        case reg::kWus:
        case reg::kManc:
        case reg::kIpav:
        // Packet buffer FIFO pointers (diagnostics only).
        case 0x2410:
        case 0x2418:
        case 0x2420:
        case 0x2428:
        case 0x2430:
        case 0x3410:
        case 0x3418:
        case 0x3420:
        case 0x3428:
        case 0x3430:
            return true;
        default:
            break;
    }
    return (offset >= reg::kMta && offset < reg::kMtaEnd) ||
           (offset >= reg::kRal0 && offset < reg::kRaEnd) ||
           (offset >= reg::kVfta && offset < reg::kVftaEnd) ||
           (offset >= 0x5840 && offset < 0x5860);  // IPv4 address table (wake-up)
}

bool is_stat(uint32_t offset) {
    return offset >= reg::kStatsStart && offset < reg::kStatsEnd;
}

// Low halves of 64-bit counters clear when the high half is read.
bool is_stat_low(uint32_t offset) {
    return offset == stat::kGorcl || offset == stat::kGotcl || offset == stat::kTorl ||
           offset == stat::kTotl;
}

// Write-one-to-act registers: bytes a narrow write does not cover are 0.
bool is_w1(uint32_t offset) {
    return offset == reg::kIcr || offset == reg::kIcs || offset == reg::kIms || offset == reg::kImc;
}

}  // namespace

bool E1000::kept_in_file(uint32_t offset) {
    switch (offset) {
        case reg::kCtrl:
        case reg::kItr:
        case reg::kVet:
        case reg::kRctl:
        case reg::kTctl:
        case reg::kRdh:
        case reg::kRdt:
        case reg::kTdt:
            return true;
        default:
            return is_stat(offset) || is_plain(offset);
    }
}

void E1000::note_unknown(uint32_t offset, bool write) {
    size_t bit = (offset / 4) % m_unknown_logged.size();
    if (m_unknown_logged[bit]) return;
    m_unknown_logged[bit] = true;
    log::debug("e1000: {} of unimplemented register {:#x} ({})", write ? "write" : "read", offset,
               write ? "ignored" : "reads 0");
}

// Splits any access (1..8 bytes, any alignment) into per-register pieces.
// A narrow write merges with the register's current value (read without
// side effects), so only the bytes written change.
void E1000::access(uint64_t offset, std::span<uint8_t> data, bool write) {
    size_t done = 0;
    while (done < data.size()) {
        uint64_t at = offset + done;
        uint32_t byte = static_cast<uint32_t>(at & 3);
        size_t n = std::min<size_t>(4 - byte, data.size() - done);
        std::span<uint8_t> piece = data.subspan(done, n);
        done += n;
        if (at >= kMmioBarSize) continue;  // reads stay zero
        uint32_t offset32 = static_cast<uint32_t>(at & ~3ull);
        if (write) {
            uint32_t value = n == 4 ? 0 : peek_reg(offset32);
            for (size_t i = 0; i < n; ++i) {
                value &= ~(0xFFu << (8 * (byte + i)));
                value |= uint32_t{piece[i]} << (8 * (byte + i));
            }
            write_reg(offset32, value);
        } else {
            uint32_t value = read_reg(offset32);
            for (size_t i = 0; i < n; ++i)
                piece[i] = static_cast<uint8_t>(value >> (8 * (byte + i)));
        }
    }
}

// IOADDR selects a register, IODATA reads or writes it (SDM 13.2.2).
void E1000::io_access(uint64_t offset, std::span<uint8_t> data, bool write) {
    if (offset >= kIoData && offset < kIoData + 4) {
        access(m_io_addr + (offset - kIoData), data.first(std::min<size_t>(data.size(), 4)), write);
        return;
    }
    if (offset >= kIoAddr + 4 || data.empty()) return;  // reserved: reads 0
    std::array<uint8_t, 4> bytes{};
    store_le(bytes, m_io_addr);
    size_t n = std::min<size_t>(data.size(), 4 - offset);
    for (size_t i = 0; i < n; ++i) {
        if (write)
            bytes[offset + i] = data[i];
        else
            data[i] = bytes[offset + i];
    }
    if (write) m_io_addr = load_le(bytes) & 0x1FFFC;  // a dword offset inside BAR0
}

uint32_t E1000::peek_reg(uint32_t offset) const {
    if (is_w1(offset)) return 0;
    switch (offset) {
        case reg::kEecd:
            return m_eeprom.read_eecd();
        case reg::kEerd:
            return m_eeprom.read_eerd();
        case reg::kMdic:
            return m_mdic;
        default:
            return offset < reg::kFileEnd ? m_regs.get(offset) : 0;
    }
}

uint32_t E1000::read_reg(uint32_t offset) {
    switch (offset) {
        case reg::kCtrl:
            return m_regs.get(reg::kCtrl);
        case reg::kStatus:
            // The link is always up at 1000 Mb/s full duplex (see phy.h).
            return kStatusFd | kStatusLu | kStatusSpeed1000;
        case reg::kEecd:
            return m_eeprom.read_eecd();
        case reg::kEerd:
            return m_eeprom.read_eerd();
        case reg::kMdic:
            return m_mdic;
        case reg::kIcr: {
            uint32_t v = m_icr;  // reading acknowledges every cause
            m_icr = 0;
            update_irq();
            return v;
        }
        case reg::kIms:
            return m_ims;
        case reg::kIcs:
        case reg::kImc:
            return 0;  // write-only
        case reg::kItr:
        case reg::kVet:
        case reg::kRctl:
        case reg::kTctl:
        case reg::kRdh:
        case reg::kRdt:
        case reg::kTdt:
            return m_regs.get(offset);
        default:
            break;
    }
    if (is_stat(offset)) {
        uint32_t v = m_regs.get(offset);
        if (!is_stat_low(offset)) {
            m_regs.set(offset, 0);
            if (is_stat_low(offset - 4)) m_regs.set(offset - 4, 0);
        }
        return v;
    }
    if (is_plain(offset)) return m_regs.get(offset);
    note_unknown(offset, false);
    return 0;
}

void E1000::write_reg(uint32_t offset, uint32_t value) {
    switch (offset) {
        case reg::kCtrl:
            if (value & kCtrlRst) return reset_locked();  // self-clearing
            if (value & kCtrlPhyRst) m_phy.reset();
            m_regs.set(reg::kCtrl, value & ~(kCtrlRst | kCtrlPhyRst));
            return;
        case reg::kStatus:
            return;  // read-only
        case reg::kEecd:
            return m_eeprom.write_eecd(value);
        case reg::kEerd:
            return m_eeprom.write_eerd(value);
        case reg::kMdic:
            m_mdic = m_phy.mdic_access(value);
            if (value & kMdicIntEnable) raise(kIntMdac);
            return;
        case reg::kIcr:  // write one to clear
            m_icr &= ~value;
            return update_irq();
        case reg::kIcs:
            return raise(value);
        case reg::kIms:
            m_ims |= value & kIntMask;
            return update_irq();
        case reg::kImc:
            m_ims &= ~value;
            return update_irq();
        case reg::kItr:
            m_regs.set(offset, value & 0xFFFF);
            return;
        case reg::kVet:
            m_regs.set(offset, value & 0xFFFF);
            return;
        case reg::kRctl:
            m_regs.set(offset, value);
            // Enabling lets waiting packets in; disabling stops polling.
            return process_rx(true);
        case reg::kTctl:
            m_regs.set(offset, value);
            return process_tx();
        case reg::kTdt:
            m_regs.set(offset, value & 0xFFFF);
            return process_tx();
        case reg::kRdt:
            m_regs.set(offset, value & 0xFFFF);
            // Fresh descriptors: fill them from the backend now, on this
            // vCPU thread (as QEMU's flush on RDT does), rather than
            // re-register the fd and wait for the event loop. Under a
            // receive stream the tap always has packets queued, the ring is
            // full again after the write, and the fd is never re-registered.
            return process_rx(true);
        case reg::kRdh:
        case reg::kRdlen:
        case reg::kRdbal:
        case reg::kRdbah:
            m_regs.set(offset, offset == reg::kRdh ? value & 0xFFFF : value);
            return update_rx_interest();
        case reg::kTdh:
            m_regs.set(offset, value & 0xFFFF);
            return;
        default:
            break;
    }
    if (is_stat(offset)) return;  // counters are read-only
    if (is_plain(offset)) return m_regs.set(offset, value);
    note_unknown(offset, true);
}

void E1000::reset_locked() {
    m_regs.clear();
    m_regs.set(reg::kCtrl, kCtrlFd | kCtrlSlu | (2u << 8));  // SPEED 1000
    m_regs.set(reg::kVet, 0x8100);
    m_regs.set(reg::kPba, 0x00100030);  // 48 KiB receive, 16 KiB transmit
    m_regs.set(reg::kLedctl, 0x07068302);
    m_regs.set(reg::kTxcw, 0x000001A0);
    m_regs.set(reg::kRxdctl, 0x00010000);
    m_regs.set(reg::kTxdctl, 0x00010000);
    // The MAC loads RAR0 from the EEPROM at reset.
    m_regs.set(reg::kRal0, uint32_t{m_eeprom.word(0)} | (uint32_t{m_eeprom.word(1)} << 16));
    m_regs.set(reg::kRah0, m_eeprom.word(2) | kRahAv);
    m_eeprom.reset();
    m_phy.reset();
    m_tx.reset();
    m_icr = 0;
    m_ims = 0;
    m_mdic = kMdicReady;
    m_io_addr = 0;
    if (m_rx_pending) ++m_stats.rx_dropped;  // nowhere to go after a reset
    m_rx_pending = false;
    m_rx_paid = false;
    // Nothing is held for the limiters any more (their tokens stay spent).
    m_rx_throttled = false;
    m_tx_throttled = false;
    m_rx_limit.timer.disarm();
    m_tx_limit.timer.disarm();
    m_rx_limit.timer.release(m_rx_limit.limiter);
    m_tx_limit.timer.release(m_tx_limit.limiter);
    m_next_irq_ns = 0;
    update_irq();
    update_rx_interest();
}

}  // namespace rv
