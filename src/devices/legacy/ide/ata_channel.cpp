// Register-level behaviour of an IDE channel: task file, data port, device
// control (SRST, nIEN, HOB), INTRQ, and the bus-master registers. Command
// execution is in ata_commands.cpp.
#include "devices/legacy/ide/ata_channel.h"

#include <algorithm>
#include <cstring>

#include "base/log.h"

namespace rv::ide {

using namespace ata;

AtaChannel::AtaChannel(const GuestMemory& memory, std::array<std::optional<AtaDisk>, 2> disks,
                       std::shared_ptr<IrqLine> irq)
    : m_memory(memory),
      m_disks(std::move(disks)),
      m_irq(std::move(irq)),
      m_buffer(new uint8_t[kBufferSectors * kSectorSize]()) {
    set_signature();
    for (unsigned unit = 0; unit < 2; ++unit)
        if (m_disks[unit]) m_bm_status |= static_cast<uint8_t>(0x20 << unit);
}

AtaChannel::~AtaChannel() {
    // The backend may still be writing into m_buffer or guest RAM.
    cancel();
}

BlockBackend* AtaChannel::backend(unsigned unit) const {
    return unit < 2 && m_disks[unit] ? m_disks[unit]->backend.get() : nullptr;
}

// The power-on / reset signature of an ATA (non-packet) device.
void AtaChannel::set_signature() {
    m_count = 1;
    m_lba_low = 1;
    m_lba_mid = 0;
    m_lba_high = 0;
    m_hob_count = m_hob_lba_low = m_hob_lba_mid = m_hob_lba_high = 0;
    m_device = 0;
}

void AtaChannel::command_read(unsigned reg, std::span<uint8_t> data) {
    if (reg == reg::kData) return data_read(data);
    // Other registers are 8 bits wide; a wider access reads consecutive ones.
    for (size_t i = 0; i < data.size(); ++i)
        data[i] = reg + i < 8 ? read_register(static_cast<unsigned>(reg + i)) : 0xFF;
}

void AtaChannel::command_write(unsigned reg, std::span<const uint8_t> data) {
    if (reg == reg::kData) return data_write(data);
    for (size_t i = 0; i < data.size() && reg + i < 8; ++i)
        write_register(static_cast<unsigned>(reg + i), data[i]);
}

uint8_t AtaChannel::read_register(unsigned reg) {
    const AtaDisk* d = m_disks[selected()] ? &*m_disks[selected()] : nullptr;
    bool hob = (m_control & kCtlHob) != 0;
    // With no disk on the channel nothing drives the bus; libata's presence
    // check (write/read back count and LBA low) then fails. An absent slave
    // next to a master reads status 0, which libata classifies as "none".
    if (!has_disks()) {
        if (reg == reg::kStatusCommand) clear_irq();
        return 0;
    }
    switch (reg) {
        case reg::kErrorFeature:
            return d ? d->error : 0;
        case reg::kCount:
            return hob ? m_hob_count : m_count;
        case reg::kLbaLow:
            return hob ? m_hob_lba_low : m_lba_low;
        case reg::kLbaMid:
            return hob ? m_hob_lba_mid : m_lba_mid;
        case reg::kLbaHigh:
            return hob ? m_hob_lba_high : m_lba_high;
        case reg::kDevice:
            return m_device;
        case reg::kStatusCommand:
            clear_irq();
            return d ? d->status : 0;
        default:
            return 0xFF;
    }
}

void AtaChannel::write_register(unsigned reg, uint8_t value) {
    // Any command-block write clears HOB, so the next reads see the current
    // bytes again.
    m_control &= static_cast<uint8_t>(~kCtlHob);
    auto push = [value](uint8_t& current, uint8_t& previous) {
        previous = current;
        current = value;
    };
    switch (reg) {
        case reg::kErrorFeature:
            push(m_feature, m_hob_feature);
            break;
        case reg::kCount:
            push(m_count, m_hob_count);
            break;
        case reg::kLbaLow:
            push(m_lba_low, m_hob_lba_low);
            break;
        case reg::kLbaMid:
            push(m_lba_mid, m_hob_lba_mid);
            break;
        case reg::kLbaHigh:
            push(m_lba_high, m_hob_lba_high);
            break;
        case reg::kDevice:
            m_device = value;
            break;
        case reg::kStatusCommand:
            execute(value);
            break;
        default:
            break;
    }
}

uint8_t AtaChannel::alt_status() const {
    unsigned unit = selected();
    return m_disks[unit] ? m_disks[unit]->status : 0;
}

void AtaChannel::control_write(uint8_t value) {
    bool was_reset = (m_control & kCtlSrst) != 0;
    bool reset = (value & kCtlSrst) != 0;
    m_control = value;
    if (reset && !was_reset) {
        // Reset asserted: abandon whatever runs and hold both disks busy.
        cancel();
        for (auto& d : m_disks)
            if (d) d->status = kStatusBsy;
        m_intrq = false;
    } else if (!reset && was_reset) {
        // Reset released: diagnostics "passed", signature in the registers,
        // no interrupt (ATA-6 9.2: SRST completes without INTRQ).
        for (auto& d : m_disks) {
            if (!d) continue;
            d->status = kStatusReady;
            d->error = kErrDiagPassed;
        }
        set_signature();
    }
    update_irq();
}

void AtaChannel::data_read(std::span<uint8_t> data) {
    std::fill(data.begin(), data.end(), 0xFF);
    if (m_phase != Phase::PioIn) return;
    size_t n = std::min<uint64_t>(data.size(), m_block_end - m_buf_pos);
    std::memcpy(data.data(), m_buffer.get() + m_buf_pos, n);
    m_buf_pos += n;
    if (m_buf_pos < m_block_end) return;
    // Block done: the next one from the buffer, the next chunk from the
    // disk, or the end of the command (PIO data-in ends without INTRQ).
    if (m_buf_pos < m_buf_len) {
        begin_in_block();
    } else if (m_xfer.remaining > 0) {
        submit_pio_read();
    } else {
        count_transfer();
        m_disks[m_xfer.unit]->status = kStatusReady;
        m_phase = Phase::Idle;
    }
}

void AtaChannel::data_write(std::span<const uint8_t> data) {
    if (m_phase != Phase::PioOut) return;
    size_t n = std::min<uint64_t>(data.size(), m_block_end - m_buf_pos);
    std::memcpy(m_buffer.get() + m_buf_pos, data.data(), n);
    m_buf_pos += n;
    if (m_buf_pos == m_block_end) submit_pio_write();
}

void AtaChannel::raise_irq() {
    m_intrq = true;
    // The PIIX latches every device interrupt in the bus-master status;
    // libata's BMDMA interrupt handler checks it before claiming a DMA IRQ.
    m_bm_status |= kBmStatusInterrupt;
    update_irq();
}

void AtaChannel::clear_irq() {
    m_intrq = false;
    update_irq();
}

void AtaChannel::update_irq() {
    bool level = m_intrq && !(m_control & kCtlNien);
    if (level == m_irq_level) return;
    m_irq_level = level;
    if (m_irq) m_irq->set_level(level);
}

void AtaChannel::bm_read(unsigned offset, std::span<uint8_t> data) const {
    for (size_t i = 0; i < data.size(); ++i) {
        unsigned at = static_cast<unsigned>(offset + i);
        uint8_t v = 0;
        if (at == kBmCommand)
            v = m_bm_command;
        else if (at == kBmStatus)
            v = m_bm_status;
        else if (at >= kBmPrdTable && at < kBmPrdTable + 4)
            v = static_cast<uint8_t>(m_bm_prd >> (8 * (at - kBmPrdTable)));
        data[i] = v;
    }
}

void AtaChannel::bm_write(unsigned offset, std::span<const uint8_t> data) {
    for (size_t i = 0; i < data.size(); ++i)
        bm_write_byte(static_cast<unsigned>(offset + i), data[i]);
}

void AtaChannel::bm_write_byte(unsigned offset, uint8_t value) {
    if (offset == kBmCommand) {
        bool was_started = (m_bm_command & kBmCmdStart) != 0;
        m_bm_command = value & (kBmCmdStart | kBmCmdToMemory);
        bool started = (m_bm_command & kBmCmdStart) != 0;
        if (started && !was_started) {
            m_bm_status |= kBmStatusActive;
            if (m_phase == Phase::DmaReady) begin_dma();
        } else if (!started && was_started) {
            m_bm_status &= static_cast<uint8_t>(~kBmStatusActive);
            if (m_phase == Phase::Dma) {
                // Stopped mid-transfer (libata's error handling): abandon the
                // command; the driver resets the channel next.
                log::debug("ide: bus master stopped during a DMA transfer");
                cancel();
                if (AtaDisk* d = disk(m_xfer.unit)) {
                    d->status = kStatusReady | kStatusErr;
                    d->error = kErrAbrt;
                }
            }
        }
    } else if (offset == kBmStatus) {
        uint8_t clear = value & (kBmStatusError | kBmStatusInterrupt);
        m_bm_status = static_cast<uint8_t>((m_bm_status & ~clear & ~kBmStatusDmaCapable) |
                                           (value & kBmStatusDmaCapable));
    } else if (offset >= kBmPrdTable && offset < kBmPrdTable + 4) {
        unsigned shift = 8 * (offset - kBmPrdTable);
        m_bm_prd = (m_bm_prd & ~(0xFFu << shift)) | (uint32_t{value} << shift);
        m_bm_prd &= ~3u;  // the table is dword-aligned
    }
}

bool AtaChannel::limited() const {
    for (const auto& d : m_disks)
        if (d && !d->limiter.unlimited()) return true;
    return false;
}

void AtaChannel::set_rate_limiter(unsigned unit, const std::optional<RateLimiterConfig>& config) {
    AtaDisk* d = disk(unit);
    if (!d) return;
    d->limiter.reconfigure(config);
    // A held command retries under the new limits at once, on the loop.
    if (m_phase == Phase::Throttled && m_xfer.unit == unit) m_limiter_timer.arm(0);
}

void AtaChannel::mark_dma_read() {
    m_memory.mark_written(m_dma_reading);
    m_dma_reading.clear();
}

// Abandons the command in flight. The backend may still be transferring
// into guest RAM or m_buffer: wait for it, then drop its completion.
void AtaChannel::cancel() {
    if (m_pending != Pending::None) {
        if (BlockBackend* b = backend(m_xfer.unit)) {
            b->drain();
            b->process_completions([](uint64_t, int64_t) {});
        }
    }
    mark_dma_read();
    if (m_phase == Phase::Throttled) m_limiter_timer.disarm();
    m_pending = Pending::None;
    m_phase = Phase::Idle;
    m_dma = DmaCursor();
    next_tag();
}

}  // namespace rv::ide
