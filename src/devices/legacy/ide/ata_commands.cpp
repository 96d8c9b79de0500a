// ATA command execution on a channel: decoding the task file, PIO data-in /
// data-out through the channel buffer, bus-master DMA straight into guest
// RAM, flushes, and the non-data commands. Backend completions arrive in
// on_complete() on the event-loop thread.
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "base/log.h"
#include "devices/legacy/ide/ata_channel.h"
#include "devices/legacy/ide/identify.h"

namespace rv::ide {

using namespace ata;

void AtaChannel::execute(uint8_t opcode) {
    AtaDisk* d = disk(selected());
    // Commands to an absent device go nowhere; a busy device (or one still
    // moving data) ignores the command register, as ATA requires.
    if (!d || m_phase != Phase::Idle || (d->status & kStatusBsy)) {
        if (d) log::debug("ide: command {:#04x} ignored while busy", opcode);
        return;
    }
    clear_irq();
    d->error = 0;
    ++d->io.commands;
    m_xfer = Transfer{.unit = selected(), .opcode = opcode};
    switch (opcode) {
        case cmd::kIdentify:
            return start_identify(*d);
        case cmd::kReadSectors:
            return start_transfer(opcode, false, false, false, 1);
        case cmd::kReadSectorsExt:
            return start_transfer(opcode, false, false, true, 1);
        case cmd::kWriteSectors:
            return start_transfer(opcode, true, false, false, 1);
        case cmd::kWriteSectorsExt:
            return start_transfer(opcode, true, false, true, 1);
        case cmd::kReadMultiple:
        case cmd::kReadMultipleExt:
        case cmd::kWriteMultiple:
        case cmd::kWriteMultipleExt:
            if (d->multiple == 0) return complete_error(kErrAbrt);
            return start_transfer(
                opcode, opcode == cmd::kWriteMultiple || opcode == cmd::kWriteMultipleExt, false,
                opcode == cmd::kReadMultipleExt || opcode == cmd::kWriteMultipleExt, d->multiple);
        case cmd::kReadDma:
            return start_transfer(opcode, false, true, false, 1);
        case cmd::kReadDmaExt:
            return start_transfer(opcode, false, true, true, 1);
        case cmd::kWriteDma:
            return start_transfer(opcode, true, true, false, 1);
        case cmd::kWriteDmaExt:
            return start_transfer(opcode, true, true, true, 1);
        case cmd::kReadVerify:
        case cmd::kReadVerifyExt:
            // Nothing to verify on an image file: only the range is checked.
            return start_transfer(opcode, false, false, opcode == cmd::kReadVerifyExt, 0);
        case cmd::kFlushCache:
        case cmd::kFlushCacheExt:
            // Writes complete before their command does, so every write the
            // guest has issued to this disk has completed: the backend's
            // flush covers them all (the barrier virtio-blk builds by hand).
            if (d->backend->read_only()) return complete_ok();
            return submit_flush(Pending::Flush);
        case cmd::kSetFeatures:
            return set_features(*d);
        case cmd::kSetMultiple:
            if (m_count > kMaxMultipleSectors || (m_count & (m_count - 1)) != 0)
                return complete_error(kErrAbrt);
            d->multiple = m_count;  // 0 disables multiple mode
            return complete_ok();
        case cmd::kInitializeParams:
            if (m_count == 0) return complete_error(kErrAbrt);
            d->sectors_per_track = m_count;
            d->heads = static_cast<uint16_t>((m_device & 0x0F) + 1);
            return complete_ok();
        case cmd::kCheckPowerMode:
            m_count = 0xFF;  // active or idle
            return complete_ok();
        case cmd::kRecalibrate:
        case cmd::kIdle:
        case cmd::kIdleImmediate:
        case cmd::kStandby:
        case cmd::kStandbyImmediate:
        case cmd::kSleep:
            return complete_ok();
        case cmd::kExecuteDiagnostic:
            return execute_diagnostic();
        case cmd::kIdentifyPacket:  // not a packet device
        case cmd::kNop:             // NOP always aborts
        default:
            log::debug("ide: command {:#04x} aborted", opcode);
            return complete_error(kErrAbrt);
    }
}

void AtaChannel::execute_diagnostic() {
    for (auto& d : m_disks) {
        if (!d) continue;
        d->status = kStatusReady;
        d->error = kErrDiagPassed;
    }
    set_signature();
    raise_irq();
}

void AtaChannel::set_features(AtaDisk& d) {
    switch (m_feature) {
        case feature::kEnableWriteCache:
            d.write_cache = true;
            return complete_ok();
        case feature::kDisableWriteCache:
            d.write_cache = false;
            return complete_ok();
        case feature::kSetTransferMode: {
            uint8_t mode_class = m_count & 0xF8;
            uint8_t mode = m_count & 0x07;
            bool ok = m_count == kXferPioDefault || m_count == kXferPioDefaultNoIordy ||
                      (mode_class == kXferPio && mode <= kMaxPioMode) ||
                      (mode_class == kXferMwdma && mode <= kMaxMwdmaMode) ||
                      (mode_class == kXferUdma && mode <= kMaxUdmaMode);
            if (!ok) return complete_error(kErrAbrt);
            // Only the DMA mode shows in IDENTIFY; PIO timing is irrelevant here.
            if (mode_class == kXferMwdma || mode_class == kXferUdma) d.transfer_mode = m_count;
            return complete_ok();
        }
        case feature::kEnableReadLookAhead:
        case feature::kDisableReadLookAhead:
        case feature::kEnableRevertDefaults:
        case feature::kDisableRevertDefaults:
            return complete_ok();
        default:
            return complete_error(kErrAbrt);
    }
}

void AtaChannel::start_identify(AtaDisk& d) {
    IdentifyParams params{.sectors = d.backend->sectors(),
                          .serial = d.serial,
                          .heads = d.heads,
                          .sectors_per_track = d.sectors_per_track,
                          .multiple = d.multiple,
                          .write_cache = d.write_cache,
                          .transfer_mode = d.transfer_mode};
    auto bytes = identify_bytes(build_identify(params));
    std::memcpy(m_buffer.get(), bytes.data(), bytes.size());
    m_buf_pos = 0;
    m_buf_len = bytes.size();
    m_xfer.block = 1;
    m_xfer.remaining = 0;
    begin_in_block();
}

// Decodes the address and count from the task file, checks them against the
// disk, and starts the data phase. block = sectors per DRQ block (0 for a
// command without data).
void AtaChannel::start_transfer(uint8_t opcode, bool write, bool dma, bool lba48, uint64_t block) {
    AtaDisk& d = *m_disks[m_xfer.unit];
    uint64_t lba = 0;
    uint64_t count = 0;
    if (lba48) {
        lba = uint64_t{m_lba_low} | uint64_t{m_lba_mid} << 8 | uint64_t{m_lba_high} << 16 |
              uint64_t{m_hob_lba_low} << 24 | uint64_t{m_hob_lba_mid} << 32 |
              uint64_t{m_hob_lba_high} << 40;
        count = uint64_t{m_count} | uint64_t{m_hob_count} << 8;
        if (count == 0) count = 65536;
    } else {
        if (m_device & kDevLba) {
            lba = uint64_t{m_lba_low} | uint64_t{m_lba_mid} << 8 | uint64_t{m_lba_high} << 16 |
                  uint64_t{m_device & 0x0Fu} << 24;
        } else {
            // CHS through the current translation; sectors count from 1.
            uint64_t cylinder = uint64_t{m_lba_mid} | uint64_t{m_lba_high} << 8;
            uint64_t head = m_device & 0x0Fu;
            uint64_t sector = m_lba_low;
            if (sector == 0 || sector > d.sectors_per_track || head >= d.heads)
                return complete_error(kErrIdnf);
            lba = (cylinder * d.heads + head) * d.sectors_per_track + sector - 1;
        }
        count = m_count ? m_count : 256;
    }
    uint64_t sectors = d.backend->sectors();
    if (lba >= sectors || count > sectors - lba) {
        log::debug("ide: command {:#04x} LBA {} + {} beyond {} sectors", opcode, lba, count,
                   sectors);
        return complete_error(kErrIdnf);
    }
    if (block == 0) return complete_ok();  // READ VERIFY
    if (write && d.backend->read_only()) return complete_error(kErrAbrt);
    m_xfer.lba = lba;
    m_xfer.remaining = count;
    m_xfer.sectors = count;
    m_xfer.block = block;
    m_xfer.write = write;
    m_xfer.dma = dma;
    // The whole command is charged up front, before any of its data moves.
    if (!m_limiter_timer.admit(d.limiter, count * kSectorSize, 1)) {
        ++d.throttled;
        m_phase = Phase::Throttled;
        d.status = kStatusBsy;
        return;
    }
    start_data_phase();
}

// The limiter's tokens should be there now (or its limits changed).
void AtaChannel::on_limiter_timer() {
    if (m_phase != Phase::Throttled) return;  // stale: reset or SRST since
    AtaDisk& d = *m_disks[m_xfer.unit];
    if (!m_limiter_timer.admit(d.limiter, m_xfer.remaining * kSectorSize, 1)) {
        ++d.throttled;  // still short (limits lowered meanwhile): re-armed
        return;
    }
    start_data_phase();
}

// A validated read/write the limiter let through: DMA waits for the bus
// master, PIO out asks for the first block, PIO in reads from the disk.
void AtaChannel::start_data_phase() {
    AtaDisk& d = *m_disks[m_xfer.unit];
    if (m_xfer.dma) {
        // The driver loads the PRD table before the command and starts the
        // bus master after it; the transfer begins with whichever is last.
        m_phase = Phase::DmaReady;
        d.status = kStatusReady | kStatusDrq;
        if (m_bm_command & kBmCmdStart) begin_dma();
    } else if (m_xfer.write) {
        m_buf_pos = 0;
        begin_out_block();  // the first DRQ block of a write comes without INTRQ
    } else {
        submit_pio_read();
    }
}

void AtaChannel::submit_pio_read() {
    AtaDisk& d = *m_disks[m_xfer.unit];
    m_pending_sectors = std::min(m_xfer.remaining, kBufferSectors);
    iovec iov{m_buffer.get(), m_pending_sectors * kSectorSize};
    m_phase = Phase::Backend;
    m_pending = Pending::PioRead;
    d.status = kStatusBsy;
    d.backend->submit_read(m_xfer.lba * kSectorSize, std::span(&iov, 1), next_tag());
}

void AtaChannel::submit_pio_write() {
    AtaDisk& d = *m_disks[m_xfer.unit];
    m_pending_sectors = m_block_end / kSectorSize;
    iovec iov{m_buffer.get(), m_block_end};
    m_phase = Phase::Backend;
    m_pending = Pending::PioWrite;
    d.status = kStatusBsy;
    d.backend->submit_write(m_xfer.lba * kSectorSize, std::span(&iov, 1), next_tag());
}

void AtaChannel::submit_flush(Pending kind) {
    AtaDisk& d = *m_disks[m_xfer.unit];
    m_phase = Phase::Backend;
    m_pending = kind;
    d.status = kStatusBsy;
    d.backend->submit_flush(next_tag());
}

// PIO data-in: the next block of the buffer is ready; INTRQ announces it.
void AtaChannel::begin_in_block() {
    m_block_end = std::min(m_buf_pos + m_xfer.block * kSectorSize, m_buf_len);
    m_phase = Phase::PioIn;
    m_disks[m_xfer.unit]->status = kStatusReady | kStatusDrq;
    raise_irq();
}

// PIO data-out: ask for the next block (the caller raises INTRQ if due).
void AtaChannel::begin_out_block() {
    m_buf_pos = 0;
    m_block_end = std::min(m_xfer.remaining, m_xfer.block) * kSectorSize;
    m_phase = Phase::PioOut;
    m_disks[m_xfer.unit]->status = kStatusReady | kStatusDrq;
}

void AtaChannel::begin_dma() {
    if (!m_bus_master) return fail_dma(Error("bus mastering is disabled in PCI command"));
    auto plan = walk_prd_table(m_memory, GuestAddress(m_bm_prd), m_xfer.remaining * kSectorSize);
    if (!plan) return fail_dma(plan.error());
    m_dma = DmaCursor(std::move(plan->iov));
    m_dma_table_longer = plan->table_longer;
    submit_dma_chunk();
}

void AtaChannel::submit_dma_chunk() {
    AtaDisk& d = *m_disks[m_xfer.unit];
    std::vector<iovec> chunk = m_dma.next(BlockBackend::kMaxIovecs, kSectorSize);
    uint64_t bytes = 0;
    for (const iovec& v : chunk) bytes += v.iov_len;
    if (chunk.empty() || bytes / kSectorSize > m_xfer.remaining)
        return fail_dma(Error("PRD regions do not split into whole sectors"));
    m_pending_sectors = bytes / kSectorSize;
    m_phase = Phase::Dma;
    m_pending = Pending::Dma;
    d.status = kStatusReady | kStatusDrq;
    if (m_xfer.write)
        d.backend->submit_write(m_xfer.lba * kSectorSize, chunk, next_tag());
    else {
        d.backend->submit_read(m_xfer.lba * kSectorSize, chunk, next_tag());
        m_dma_reading = std::move(chunk);  // (the backend copied the array)
    }
}

// A PRD table the controller cannot follow: bus-master error, the command
// aborts with an interrupt (libata reports a host bus error and resets).
void AtaChannel::fail_dma(const Error& why) {
    constexpr uint64_t kLoggedAborts = 5;
    if (++m_dma_aborts <= kLoggedAborts)
        log::warn("ide: DMA aborted: {}{}", why.message(),
                  m_dma_aborts == kLoggedAborts ? " (further aborts not logged)" : "");
    m_bm_status |= kBmStatusError;
    complete_error(kErrAbrt);
}

size_t AtaChannel::process_completions(unsigned unit) {
    BlockBackend* b = backend(unit);
    if (!b) return 0;
    return b->process_completions([&](uint64_t tag, int64_t result) {
        if (m_pending == Pending::None || unit != m_xfer.unit || tag != m_tag) {
            log::debug("ide: stale completion (tag {}) dropped", tag);
            return;
        }
        on_complete(tag, result);
    });
}

void AtaChannel::on_complete(uint64_t, int64_t result) {
    Pending kind = m_pending;
    m_pending = Pending::None;
    mark_dma_read();
    uint64_t expected = m_pending_sectors * kSectorSize;
    bool data_op = kind == Pending::PioRead || kind == Pending::PioWrite || kind == Pending::Dma;
    if (result < 0 || (data_op && static_cast<uint64_t>(result) != expected)) {
        log::warn("ide: disk I/O failed at LBA {}: {}", m_xfer.lba,
                  result < 0 ? std::strerror(static_cast<int>(-result)) : "short transfer");
        if (result == -EINVAL) return complete_error(kErrIdnf);
        return complete_error(m_xfer.write || kind == Pending::Flush ? kErrAbrt : kErrUnc);
    }
    switch (kind) {
        case Pending::PioRead:
            m_xfer.lba += m_pending_sectors;
            m_xfer.remaining -= m_pending_sectors;
            m_buf_pos = 0;
            m_buf_len = expected;
            return begin_in_block();
        case Pending::PioWrite:
        case Pending::Dma:
            m_xfer.lba += m_pending_sectors;
            m_xfer.remaining -= m_pending_sectors;
            if (kind == Pending::Dma && m_xfer.remaining > 0) return submit_dma_chunk();
            // With the write cache off a write is durable before it completes.
            if (m_xfer.write && !m_disks[m_xfer.unit]->write_cache)
                return submit_flush(Pending::WriteThrough);
            return after_write();
        case Pending::WriteThrough:
            return after_write();
        case Pending::Flush:
            return complete_ok();
        case Pending::None:
            return;
    }
}

// A data block (PIO) or the whole transfer (DMA) reached the disk.
void AtaChannel::after_write() {
    if (!m_xfer.dma && m_xfer.remaining > 0) {
        begin_out_block();
        return raise_irq();
    }
    complete_ok();
}

void AtaChannel::complete_ok() {
    count_transfer();
    if (m_xfer.dma) {
        // SFF-8038i: Active stays set when the PRD table was longer than the
        // transfer; the driver's stop clears it.
        if (!m_dma_table_longer) m_bm_status &= static_cast<uint8_t>(~kBmStatusActive);
    }
    m_disks[m_xfer.unit]->status = kStatusReady;
    m_phase = Phase::Idle;
    raise_irq();
}

// A command ended without error: a read's or write's data all moved (a PIO
// read's last block was taken by the guest: data_read calls this too).
void AtaChannel::count_transfer() {
    if (m_xfer.sectors == 0) return;  // IDENTIFY, VERIFY, FLUSH, the non-data commands
    AtaIoCounters& io = m_disks[m_xfer.unit]->io;
    const uint64_t bytes = m_xfer.sectors * kSectorSize;
    if (m_xfer.write) {
        ++io.writes;
        io.write_bytes += bytes;
    } else {
        ++io.reads;
        io.read_bytes += bytes;
    }
}

void AtaChannel::complete_error(uint8_t error) {
    if (m_xfer.dma) m_bm_status &= static_cast<uint8_t>(~kBmStatusActive);
    AtaDisk& d = *m_disks[m_xfer.unit];
    d.status = kStatusReady | kStatusErr;
    d.error = error;
    m_phase = Phase::Idle;
    m_pending = Pending::None;
    m_dma = DmaCursor();
    raise_irq();
}

}  // namespace rv::ide
