#include "devices/legacy/uart16550.h"

#include <algorithm>
#include <utility>

#include "base/log.h"

namespace rv {

namespace {

// Register offsets (DLAB selects the divisor latch at 0 and 1).
constexpr uint64_t kRbrThr = 0;  // DLL when DLAB
constexpr uint64_t kIer = 1;     // DLM when DLAB
constexpr uint64_t kIirFcr = 2;
constexpr uint64_t kLcr = 3;
constexpr uint64_t kMcr = 4;
constexpr uint64_t kLsr = 5;
constexpr uint64_t kMsr = 6;
constexpr uint64_t kScr = 7;

constexpr uint8_t kIerRxData = 0x01;
constexpr uint8_t kIerThre = 0x02;
constexpr uint8_t kIerLineStatus = 0x04;
constexpr uint8_t kIerModemStatus = 0x08;
// Bits 4-7 are reserved on a 16550A and read back as zero; Linux's probe
// relies on that to tell it apart from XScale and 16750 parts.
constexpr uint8_t kIerMask = 0x0f;

constexpr uint8_t kIirNoInterrupt = 0x01;
constexpr uint8_t kIirModemStatus = 0x00;
constexpr uint8_t kIirThre = 0x02;
constexpr uint8_t kIirRxData = 0x04;
constexpr uint8_t kIirLineStatus = 0x06;
constexpr uint8_t kIirRxTimeout = 0x0c;
constexpr uint8_t kIirFifoEnabled = 0xc0;

constexpr uint8_t kFcrEnable = 0x01;
constexpr uint8_t kFcrClearRx = 0x02;
constexpr uint8_t kFcrTriggerShift = 6;
constexpr std::array<uint8_t, 4> kRxTriggerLevels{1, 4, 8, 14};

constexpr uint8_t kLcrDlab = 0x80;

constexpr uint8_t kMcrDtr = 0x01;
constexpr uint8_t kMcrRts = 0x02;
constexpr uint8_t kMcrOut1 = 0x04;
constexpr uint8_t kMcrOut2 = 0x08;
constexpr uint8_t kMcrLoop = 0x10;
constexpr uint8_t kMcrMask = 0x1f;

constexpr uint8_t kLsrDataReady = 0x01;
constexpr uint8_t kLsrOverrun = 0x02;
constexpr uint8_t kLsrThre = 0x20;
constexpr uint8_t kLsrTemt = 0x40;

constexpr uint8_t kMsrDcts = 0x01;
constexpr uint8_t kMsrDdsr = 0x02;
constexpr uint8_t kMsrTeri = 0x04;
constexpr uint8_t kMsrDdcd = 0x08;
constexpr uint8_t kMsrCts = 0x10;
constexpr uint8_t kMsrDsr = 0x20;
constexpr uint8_t kMsrRi = 0x40;
constexpr uint8_t kMsrDcd = 0x80;

}  // namespace

Uart16550::Uart16550(std::shared_ptr<IrqLine> irq, OutputSink output)
    : m_irq(std::move(irq)), m_output(std::move(output)) {}

void Uart16550::read(uint64_t offset, std::span<uint8_t> data) {
    std::unique_lock lock(m_mutex);
    const bool was_full = capacity_locked() == 0;
    for (size_t i = 0; i < data.size(); ++i) data[i] = read_register(offset + i);
    update_irq();
    Effects effects;
    effects.space_freed = was_full && capacity_locked() > 0;
    finish(lock, effects);
}

void Uart16550::write(uint64_t offset, std::span<const uint8_t> data) {
    std::unique_lock lock(m_mutex);
    const bool was_full = capacity_locked() == 0;
    Effects effects;
    for (size_t i = 0; i < data.size(); ++i) write_register(offset + i, data[i], effects);
    update_irq();
    effects.space_freed = was_full && capacity_locked() > 0;
    finish(lock, effects);
}

void Uart16550::enqueue_input(std::span<const uint8_t> bytes) {
    std::lock_guard lock(m_mutex);
    if (m_mcr & kMcrLoop) {
        log::debug("uart16550: dropping {} input bytes in loopback mode", bytes.size());
        return;
    }
    for (uint8_t byte : bytes) receive_byte(byte);
    update_irq();
}

size_t Uart16550::input_capacity() const {
    std::lock_guard lock(m_mutex);
    return capacity_locked();
}

void Uart16550::set_input_space_callback(std::function<void()> callback) {
    std::lock_guard lock(m_mutex);
    m_on_input_space = std::move(callback);
}

uint8_t Uart16550::read_register(uint64_t reg) {
    switch (reg) {
        case kRbrThr:
            if (m_lcr & kLcrDlab) return static_cast<uint8_t>(m_divisor);
            return pop_rx();
        case kIer:
            if (m_lcr & kLcrDlab) return static_cast<uint8_t>(m_divisor >> 8);
            return m_ier;
        case kIirFcr: {
            const uint8_t value = iir();
            // Reading IIR acknowledges a THRE interrupt, but only when it is the
            // source being reported: a higher-priority source hides it.
            if ((value & 0x0f) == kIirThre) m_thr_ipending = false;
            return value;
        }
        case kLcr:
            return m_lcr;
        case kMcr:
            return m_mcr;
        case kLsr: {
            uint8_t value = kLsrThre | kLsrTemt;  // transmission is instantaneous
            if (m_rx_count > 0) value |= kLsrDataReady;
            if (m_overrun) value |= kLsrOverrun;
            m_overrun = false;  // error bits clear on read
            return value;
        }
        case kMsr: {
            const uint8_t value = modem_lines() | m_msr_delta;
            m_msr_delta = 0;
            return value;
        }
        case kScr:
            return m_scr;
        default:
            return 0;
    }
}

void Uart16550::write_register(uint64_t reg, uint8_t value, Effects& effects) {
    switch (reg) {
        case kRbrThr:
            if (m_lcr & kLcrDlab) {
                m_divisor = static_cast<uint16_t>((m_divisor & 0xff00) | value);
                return;
            }
            // The write acknowledges THRE; the byte then leaves at once, the
            // holding register is empty again and THRE re-arms. Without the
            // re-arm Linux would stall after each FIFO-sized burst, because it
            // waits for the next THRE interrupt to send more.
            if (m_mcr & kMcrLoop) {
                receive_byte(value);
            } else {
                effects.has_tx = true;
                effects.tx = value;
            }
            m_thr_ipending = true;
            return;
        case kIer: {
            if (m_lcr & kLcrDlab) {
                m_divisor = static_cast<uint16_t>((m_divisor & 0x00ff) | (value << 8));
                return;
            }
            const uint8_t old = m_ier;
            m_ier = value & kIerMask;
            // Enabling ETBEI while THR is empty raises THRE even if an IIR read
            // had acknowledged it before (QEMU and Bochs do the same). Linux's
            // startup test toggles IER.THRI and expects exactly this; without
            // it the driver marks the port UART_BUG_THRE and polls by timer.
            if ((m_ier & kIerThre) && !(old & kIerThre)) m_thr_ipending = true;
            if (!(m_ier & kIerThre)) m_thr_ipending = false;
            return;
        }
        case kIirFcr:
            write_fcr(value);
            return;
        case kLcr:
            m_lcr = value;
            return;
        case kMcr:
            write_mcr(value);
            return;
        case kScr:
            m_scr = value;
            return;
        default:
            // LSR and MSR are read-only (their factory-test writes are ignored).
            return;
    }
}

void Uart16550::write_fcr(uint8_t value) {
    const bool enable = value & kFcrEnable;
    // Switching between FIFO and 16450 mode empties the FIFOs.
    if (enable != m_fifo_enabled) clear_rx();
    m_fifo_enabled = enable;
    if (!enable) return;  // the other FCR bits only act with the FIFO enabled
    if (value & kFcrClearRx) clear_rx();
    // Clearing the (always empty) TX FIFO and DMA mode need no emulation.
    // Bit 5 (16750 64-byte mode) is ignored, so IIR never reports it.
    m_rx_trigger = kRxTriggerLevels[value >> kFcrTriggerShift];
}

void Uart16550::write_mcr(uint8_t value) {
    const uint8_t old_lines = modem_lines();
    m_mcr = value & kMcrMask;
    const uint8_t new_lines = modem_lines();
    const uint8_t changed = old_lines ^ new_lines;
    if (changed & kMsrCts) m_msr_delta |= kMsrDcts;
    if (changed & kMsrDsr) m_msr_delta |= kMsrDdsr;
    if (changed & kMsrDcd) m_msr_delta |= kMsrDdcd;
    if ((old_lines & kMsrRi) && !(new_lines & kMsrRi)) m_msr_delta |= kMsrTeri;
}

// The modem input lines (MSR bits 4-7). Normally a connected, ready peer;
// in loopback mode they mirror the MCR outputs as the 16550 wires them.
uint8_t Uart16550::modem_lines() const {
    if (!(m_mcr & kMcrLoop)) return kMsrCts | kMsrDsr | kMsrDcd;
    uint8_t lines = 0;
    if (m_mcr & kMcrRts) lines |= kMsrCts;
    if (m_mcr & kMcrDtr) lines |= kMsrDsr;
    if (m_mcr & kMcrOut1) lines |= kMsrRi;
    if (m_mcr & kMcrOut2) lines |= kMsrDcd;
    return lines;
}

void Uart16550::receive_byte(uint8_t byte) {
    if (m_rx_count >= (m_fifo_enabled ? kRxFifoSize : 1)) {
        m_overrun = true;
        log::debug("uart16550: receive overrun, byte dropped");
        return;
    }
    m_rx[(m_rx_head + m_rx_count) % kRxFifoSize] = byte;
    ++m_rx_count;
}

uint8_t Uart16550::pop_rx() {
    if (m_rx_count == 0) return 0;
    const uint8_t byte = m_rx[m_rx_head];
    m_rx_head = (m_rx_head + 1) % kRxFifoSize;
    --m_rx_count;
    return byte;
}

void Uart16550::clear_rx() {
    m_rx_head = 0;
    m_rx_count = 0;
}

size_t Uart16550::capacity_locked() const {
    if (m_mcr & kMcrLoop) return 0;
    const size_t size = m_fifo_enabled ? kRxFifoSize : 1;
    return m_rx_count >= size ? 0 : size - m_rx_count;
}

// Highest-priority pending enabled interrupt: line status > received data >
// THR empty > modem status.
uint8_t Uart16550::iir() const {
    const uint8_t fifo_bits = m_fifo_enabled ? kIirFifoEnabled : 0;
    if ((m_ier & kIerLineStatus) && m_overrun) return fifo_bits | kIirLineStatus;
    if ((m_ier & kIerRxData) && m_rx_count > 0) {
        // Below the trigger level a real 16550 only interrupts after a
        // character timeout; we raise it at once (no timer), but report it
        // as a timeout so the guest sees the same IIR code.
        const bool below_trigger = m_fifo_enabled && m_rx_count < m_rx_trigger;
        return fifo_bits | (below_trigger ? kIirRxTimeout : kIirRxData);
    }
    if ((m_ier & kIerThre) && m_thr_ipending) return fifo_bits | kIirThre;
    if ((m_ier & kIerModemStatus) && m_msr_delta) return fifo_bits | kIirModemStatus;
    return fifo_bits | kIirNoInterrupt;
}

void Uart16550::update_irq() {
    const bool level = !(iir() & kIirNoInterrupt);
    if (level == m_irq_level) return;
    m_irq_level = level;
    // Under the device lock, so concurrent accesses cannot reorder changes.
    if (m_irq) m_irq->set_level(level);
}

void Uart16550::finish(std::unique_lock<std::mutex>& lock, const Effects& effects) {
    std::function<void()> on_space;
    if (effects.space_freed) on_space = m_on_input_space;
    // Take the sink lock before dropping the device lock so that bytes from
    // two vCPUs reach the sink in the order they were written to THR.
    std::unique_lock sink_lock(m_sink_mutex, std::defer_lock);
    if (effects.has_tx) sink_lock.lock();
    lock.unlock();
    if (effects.has_tx && m_output) m_output(std::span(&effects.tx, 1));
    if (sink_lock.owns_lock()) sink_lock.unlock();
    if (on_space) on_space();
}

void Uart16550::State::encode(snapshot::Writer& w) const {
    w.blob(rx);
    w.u16(divisor);
    for (uint8_t v : {ier, lcr, mcr, scr, msr_delta, rx_trigger}) w.u8(v);
    for (bool v : {fifo_enabled, overrun, thr_ipending}) w.boolean(v);
}

Uart16550::State Uart16550::State::decode(snapshot::Reader& r) {
    State s;
    s.rx = r.blob(kRxFifoSize);
    s.divisor = r.u16();
    for (uint8_t* v : {&s.ier, &s.lcr, &s.mcr, &s.scr, &s.msr_delta, &s.rx_trigger}) *v = r.u8();
    for (bool* v : {&s.fifo_enabled, &s.overrun, &s.thr_ipending}) *v = r.boolean();
    return s;
}

Uart16550::State Uart16550::save() const {
    std::lock_guard lock(m_mutex);
    State s;
    for (size_t i = 0; i < m_rx_count; ++i) s.rx.push_back(m_rx[(m_rx_head + i) % kRxFifoSize]);
    s.divisor = m_divisor;
    s.ier = m_ier;
    s.lcr = m_lcr;
    s.mcr = m_mcr;
    s.scr = m_scr;
    s.msr_delta = m_msr_delta;
    s.rx_trigger = m_rx_trigger;
    s.fifo_enabled = m_fifo_enabled;
    s.overrun = m_overrun;
    s.thr_ipending = m_thr_ipending;
    return s;
}

Result<void> Uart16550::restore(const State& s) {
    if (s.rx.size() > (s.fifo_enabled ? kRxFifoSize : 1))
        return input_error("uart16550 state: {} received bytes with the FIFO {}", s.rx.size(),
                           s.fifo_enabled ? "on" : "off");
    if ((s.ier & ~kIerMask) || (s.mcr & ~kMcrMask) || (s.msr_delta & 0xf0))
        return input_error("uart16550 state: reserved bits set (IER {:#x}, MCR {:#x}, MSR delta {:#x})", s.ier,
                           s.mcr, s.msr_delta);
    if (std::ranges::find(kRxTriggerLevels, s.rx_trigger) == kRxTriggerLevels.end())
        return input_error("uart16550 state: RX trigger level {}", s.rx_trigger);
    std::lock_guard lock(m_mutex);
    m_rx_head = 0;
    m_rx_count = s.rx.size();
    std::ranges::copy(s.rx, m_rx.begin());
    m_divisor = s.divisor;
    m_ier = s.ier;
    m_lcr = s.lcr;
    m_mcr = s.mcr;
    m_scr = s.scr;
    m_msr_delta = s.msr_delta;
    m_rx_trigger = s.rx_trigger;
    m_fifo_enabled = s.fifo_enabled;
    m_overrun = s.overrun;
    m_thr_ipending = s.thr_ipending;
    update_irq();
    return {};
}

}  // namespace rv
