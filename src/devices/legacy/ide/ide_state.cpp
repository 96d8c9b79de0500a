// Snapshot state of the IDE controller: each channel's task file, command
// and data phase, bus-master registers and disk settings, and the PCI
// function's config space. Saving first completes any backend I/O in flight
// (complete_in_flight), so a state never holds a transfer half done.
#include <algorithm>
#include <tuple>

#include "base/log.h"
#include "devices/legacy/ide/ata_channel.h"
#include "devices/legacy/ide/piix_ide.h"

namespace rv::ide {

using namespace ata;
using SavedPhase = AtaChannel::State::Phase;

namespace {

constexpr uint64_t kBufferBytes = AtaChannel::kBufferSectors * kSectorSize;
constexpr uint8_t kBmStatusMask =
    kBmStatusActive | kBmStatusError | kBmStatusInterrupt | kBmStatusDmaCapable;

// The commands that move data, as execute() starts them.
struct DataCommand {
    uint8_t opcode;
    bool write;
    bool dma;
    bool multiple;  // DRQ blocks of the disk's READ/WRITE MULTIPLE count
    bool lba48;     // up to 65536 sectors rather than 256
};
constexpr std::array<DataCommand, 12> kDataCommands{{
    {cmd::kReadSectors, false, false, false, false},
    {cmd::kReadSectorsExt, false, false, false, true},
    {cmd::kReadMultiple, false, false, true, false},
    {cmd::kReadMultipleExt, false, false, true, true},
    {cmd::kWriteSectors, true, false, false, false},
    {cmd::kWriteSectorsExt, true, false, false, true},
    {cmd::kWriteMultiple, true, false, true, false},
    {cmd::kWriteMultipleExt, true, false, true, true},
    {cmd::kReadDma, false, true, false, false},
    {cmd::kReadDmaExt, false, true, false, true},
    {cmd::kWriteDma, true, true, false, false},
    {cmd::kWriteDmaExt, true, true, false, true},
}};

Result<void> check_disk(const AtaChannel::DiskState& d, unsigned unit) {
    // What SET MULTIPLE, INITIALIZE DEVICE PARAMETERS and SET FEATURES accept.
    if (d.multiple > kMaxMultipleSectors || (d.multiple & (d.multiple - 1)) != 0)
        return input_error("disk {}: multiple count {}", unit, d.multiple);
    if (d.heads == 0 || d.heads > 16 || d.sectors_per_track == 0 || d.sectors_per_track > 255)
        return input_error("disk {}: {} heads, {} sectors per track", unit, d.heads,
                           d.sectors_per_track);
    const uint8_t mode_class = d.transfer_mode & 0xF8;
    const uint8_t mode = d.transfer_mode & 0x07;
    if (d.transfer_mode != 0 && !(mode_class == kXferMwdma && mode <= kMaxMwdmaMode) &&
        !(mode_class == kXferUdma && mode <= kMaxUdmaMode))
        return input_error("disk {}: transfer mode {:#04x}", unit, d.transfer_mode);
    return {};
}

// The command fields against the command and the disk it runs on.
Result<void> check_transfer(const AtaChannel::State& s, const BlockBackend& disk) {
    if (s.block == 0 || s.block > kMaxMultipleSectors)
        return input_error("{} sectors per DRQ block", s.block);
    if (s.opcode == cmd::kIdentify) {
        if (s.phase != SavedPhase::PioIn || s.write || s.dma || s.lba || s.remaining || s.sectors ||
            s.block != 1 || s.buffer.size() != kSectorSize)
            return input_error("IDENTIFY with the fields of a transfer");
        return {};
    }
    const auto c = std::ranges::find(kDataCommands, s.opcode, &DataCommand::opcode);
    if (c == kDataCommands.end())
        return input_error("command {:#04x} in progress, which has no data phase", s.opcode);
    if (c->write != s.write || c->dma != s.dma)
        return input_error("command {:#04x} as a {} {}", s.opcode, s.dma ? "DMA" : "PIO",
                           s.write ? "write" : "read");
    const uint64_t block = c->multiple ? s.disks[s.unit]->multiple : 1;
    if (s.block != block)
        return input_error("command {:#04x} in blocks of {} sectors, not {}", s.opcode, s.block,
                           block);
    if (s.sectors == 0 || s.sectors > (c->lba48 ? 65536u : 256u) || s.remaining > s.sectors)
        return input_error("command {:#04x} of {} sectors with {} to go", s.opcode, s.sectors,
                           s.remaining);
    if (s.lba > disk.sectors() || s.remaining > disk.sectors() - s.lba)
        return input_error("LBA {} + {} beyond the disk's {} sectors", s.lba, s.remaining,
                           disk.sectors());
    if (s.write && disk.read_only()) return input_error("a write to a read-only disk");
    return {};
}

// Positions in the buffer, per phase.
Result<void> check_data_phase(const AtaChannel::State& s) {
    const uint64_t len = s.buffer.size();
    switch (s.phase) {
        case SavedPhase::PioIn: {
            if (s.write || s.dma) return input_error("PIO data-in for a write or DMA command");
            // The buffer holds whole sectors the disk has already read.
            if (len == 0 || len % kSectorSize != 0 || len > kBufferBytes ||
                (s.sectors != 0 && len > (s.sectors - s.remaining) * kSectorSize))
                return input_error("{} bytes buffered for the guest", len);
            // Blocks start at multiples of the block size; the guest is inside one.
            const uint64_t block_bytes = s.block * kSectorSize;
            const uint64_t start = s.buf_pos - s.buf_pos % block_bytes;
            if (s.buf_pos >= len || s.block_end != std::min(start + block_bytes, len))
                return input_error("at byte {} of {}, the DRQ block ending at {}", s.buf_pos, len,
                                   s.block_end);
            return {};
        }
        case SavedPhase::PioOut:
            if (!s.write || s.dma) return input_error("PIO data-out for a read or DMA command");
            if (s.remaining == 0 || s.block_end != std::min(s.remaining, s.block) * kSectorSize ||
                s.buf_pos >= s.block_end || len != s.buf_pos)
                return input_error("{} bytes written of a DRQ block ending at {} ({} kept)",
                                   s.buf_pos, s.block_end, len);
            return {};
        case SavedPhase::DmaReady:
            if (!s.dma) return input_error("a PIO command waiting for the bus master");
            // Starting the bus master with the command waiting begins the transfer.
            if (s.bm_command & kBmCmdStart)
                return input_error("a DMA command waiting for a bus master already started");
            [[fallthrough]];
        case SavedPhase::Throttled:
            // Nothing has moved yet: the whole command is still to do.
            if (s.remaining != s.sectors || len != 0 || s.buf_pos != 0 || s.block_end != 0)
                return input_error("a command not yet started with {} of {} sectors to go",
                                   s.remaining, s.sectors);
            return {};
        case SavedPhase::Idle:
            break;
    }
    return {};
}

auto command_fields(const AtaChannel::State& s) {
    return std::tie(s.unit, s.opcode, s.lba, s.remaining, s.sectors, s.block, s.write, s.dma,
                    s.buffer, s.buf_pos, s.block_end);
}

}  // namespace

void AtaChannel::State::encode(snapshot::Writer& w) const {
    for (const auto& d : disks) {
        w.boolean(d.has_value());
        if (!d) continue;
        for (uint8_t v : {d->status, d->error, d->multiple}) w.u8(v);
        w.boolean(d->write_cache);
        w.u8(d->transfer_mode);
        w.u16(d->heads);
        w.u16(d->sectors_per_track);
    }
    for (uint8_t v : {feature, count, lba_low, lba_mid, lba_high, hob_feature, hob_count,
                      hob_lba_low, hob_lba_mid, hob_lba_high, device, control})
        w.u8(v);
    w.boolean(intrq);
    w.u8(static_cast<uint8_t>(phase));
    w.u8(unit);
    w.u8(opcode);
    for (uint64_t v : {lba, remaining, sectors, block}) w.u64(v);
    w.boolean(write);
    w.boolean(dma);
    w.blob(buffer);
    w.u64(buf_pos);
    w.u64(block_end);
    w.u8(bm_command);
    w.u8(bm_status);
    w.u32(bm_prd);
}

AtaChannel::State AtaChannel::State::decode(snapshot::Reader& r) {
    State s;
    for (auto& d : s.disks) {
        if (!r.boolean()) continue;  // also after a short read: the reader is failed
        d = DiskState{};  // (not emplace(): clang 16 rejects it here)
        for (uint8_t* v : {&d->status, &d->error, &d->multiple}) *v = r.u8();
        d->write_cache = r.boolean();
        d->transfer_mode = r.u8();
        d->heads = r.u16();
        d->sectors_per_track = r.u16();
    }
    for (uint8_t* v :
         {&s.feature, &s.count, &s.lba_low, &s.lba_mid, &s.lba_high, &s.hob_feature, &s.hob_count,
          &s.hob_lba_low, &s.hob_lba_mid, &s.hob_lba_high, &s.device, &s.control})
        *v = r.u8();
    s.intrq = r.boolean();
    s.phase = static_cast<SavedPhase>(r.u8());  // range-checked by check()
    s.unit = r.u8();
    s.opcode = r.u8();
    for (uint64_t* v : {&s.lba, &s.remaining, &s.sectors, &s.block}) *v = r.u64();
    s.write = r.boolean();
    s.dma = r.boolean();
    s.buffer = r.blob(kBufferBytes);
    s.buf_pos = r.u64();
    s.block_end = r.u64();
    s.bm_command = r.u8();
    s.bm_status = r.u8();
    s.bm_prd = r.u32();
    return s;
}

// Backend I/O in flight cannot be saved: it may be halfway through guest RAM
// or the image, and neither dropping it (a completed write lost) nor
// resubmitting it after restore (a write replayed over newer data) is right.
// So wait for it and deliver its completion as the event loop would, then
// again for whatever that starts (the next DMA chunk, a write-through
// flush), until the channel waits only for the guest or the limiter.
void AtaChannel::complete_in_flight() {
    while (m_pending != Pending::None) {
        BlockBackend* b = backend(m_xfer.unit);
        b->drain();
        if (process_completions(m_xfer.unit) == 0) break;
    }
    if (m_pending == Pending::None && m_phase != Phase::Backend && m_phase != Phase::Dma) return;
    // Never expected: every submission completes once and drain() waits for
    // all of them. Fail the command rather than wait forever.
    log::error("ide: I/O in flight did not complete before a snapshot; the command fails");
    cancel();
    complete_error(kErrAbrt);
}

AtaChannel::State AtaChannel::save() {
    complete_in_flight();
    State s;
    for (unsigned unit = 0; unit < 2; ++unit) {
        if (!m_disks[unit]) continue;
        const AtaDisk& d = *m_disks[unit];
        s.disks[unit] = DiskState{d.status,        d.error, d.multiple,         d.write_cache,
                                  d.transfer_mode, d.heads, d.sectors_per_track};
    }
    std::tie(s.feature, s.count, s.lba_low, s.lba_mid, s.lba_high) =
        std::tie(m_feature, m_count, m_lba_low, m_lba_mid, m_lba_high);
    std::tie(s.hob_feature, s.hob_count, s.hob_lba_low, s.hob_lba_mid, s.hob_lba_high) =
        std::tie(m_hob_feature, m_hob_count, m_hob_lba_low, m_hob_lba_mid, m_hob_lba_high);
    s.device = m_device;
    s.control = m_control;
    s.intrq = m_intrq;
    s.bm_command = m_bm_command;
    s.bm_status = m_bm_status;
    s.bm_prd = m_bm_prd;
    switch (m_phase) {
        case Phase::PioIn:
            s.phase = State::Phase::PioIn;
            s.buffer.assign(m_buffer.get(), m_buffer.get() + m_buf_len);
            break;
        case Phase::PioOut:
            s.phase = State::Phase::PioOut;
            s.buffer.assign(m_buffer.get(), m_buffer.get() + m_buf_pos);
            break;
        case Phase::DmaReady:
            s.phase = State::Phase::DmaReady;
            break;
        case Phase::Throttled:
            s.phase = State::Phase::Throttled;
            break;
        case Phase::Idle:  // what the last command left in m_xfer and the buffer is not state
            return s;
        case Phase::Backend:  // complete_in_flight() leaves neither
        case Phase::Dma:
            return s;
    }
    if (s.phase == State::Phase::PioIn || s.phase == State::Phase::PioOut) {
        s.buf_pos = m_buf_pos;
        s.block_end = m_block_end;
    }
    s.unit = static_cast<uint8_t>(m_xfer.unit);
    s.opcode = m_xfer.opcode;
    s.lba = m_xfer.lba;
    s.remaining = m_xfer.remaining;
    s.sectors = m_xfer.sectors;
    s.block = m_xfer.block;
    s.write = m_xfer.write;
    s.dma = m_xfer.dma;
    return s;
}

Result<void> AtaChannel::check(const State& s) const {
    for (unsigned unit = 0; unit < 2; ++unit) {
        if (s.disks[unit] && !m_disks[unit])
            return input_error("a disk in slot {}, where this controller has none", unit);
        // ATA has no hot plug: the guest would find a disk it never probed.
        if (!s.disks[unit] && m_disks[unit])
            return input_error("no disk in slot {}, where this controller has one", unit);
        if (s.disks[unit]) RV_TRY_VOID(check_disk(*s.disks[unit], unit));
    }
    if ((s.bm_command & ~(kBmCmdStart | kBmCmdToMemory)) || (s.bm_status & ~kBmStatusMask) ||
        (s.bm_prd & 3))
        return input_error("reserved bus-master bits (command {:#04x}, status {:#04x}, PRD {:#x})",
                           s.bm_command, s.bm_status, s.bm_prd);
    if (static_cast<uint8_t>(s.phase) > static_cast<uint8_t>(SavedPhase::Throttled))
        return input_error("phase {}", static_cast<unsigned>(s.phase));
    if (s.phase == SavedPhase::Idle) {
        if (command_fields(s) != command_fields(State{}))
            return input_error("an idle channel with a command's fields set");
        return {};
    }
    if (s.control & kCtlSrst) return input_error("a command in progress during a reset");
    if (s.unit > 1 || !m_disks[s.unit])
        return input_error("a command on unit {}, where there is no disk", s.unit);
    RV_TRY_VOID(check_transfer(s, *m_disks[s.unit]->backend));
    return check_data_phase(s);
}

void AtaChannel::restore(const State& s) {
    cancel();  // nothing runs before the guest does; whatever did is dropped
    for (unsigned unit = 0; unit < 2; ++unit) {
        if (!m_disks[unit] || !s.disks[unit]) continue;
        AtaDisk& d = *m_disks[unit];
        const DiskState& from = *s.disks[unit];
        std::tie(d.status, d.error, d.multiple, d.write_cache, d.transfer_mode, d.heads,
                 d.sectors_per_track) =
            std::tie(from.status, from.error, from.multiple, from.write_cache, from.transfer_mode,
                     from.heads, from.sectors_per_track);
    }
    std::tie(m_feature, m_count, m_lba_low, m_lba_mid, m_lba_high) =
        std::tie(s.feature, s.count, s.lba_low, s.lba_mid, s.lba_high);
    std::tie(m_hob_feature, m_hob_count, m_hob_lba_low, m_hob_lba_mid, m_hob_lba_high) =
        std::tie(s.hob_feature, s.hob_count, s.hob_lba_low, s.hob_lba_mid, s.hob_lba_high);
    m_device = s.device;
    m_control = s.control;
    m_intrq = s.intrq;
    m_xfer = Transfer{.unit = s.unit,
                      .opcode = s.opcode,
                      .lba = s.lba,
                      .remaining = s.remaining,
                      .sectors = s.sectors,
                      .block = s.block,
                      .write = s.write,
                      .dma = s.dma};
    constexpr std::array kPhases{Phase::Idle, Phase::PioIn, Phase::PioOut, Phase::DmaReady,
                                 Phase::Throttled};
    m_phase = kPhases[static_cast<uint8_t>(s.phase)];
    std::ranges::copy(s.buffer, m_buffer.get());
    m_buf_len = s.phase == State::Phase::PioIn ? s.buffer.size() : 0;
    m_buf_pos = s.buf_pos;
    m_block_end = s.block_end;
    m_pending_sectors = 0;
    m_dma_table_longer = false;
    m_bm_command = s.bm_command;
    m_bm_status = s.bm_status;
    m_bm_prd = s.bm_prd;
    // The limiter held the command back; it asks again from the event loop.
    if (m_phase == Phase::Throttled) m_limiter_timer.arm(0);
    // Driven even when unchanged: the line may not match a fresh channel's idea of it.
    m_irq_level = m_intrq && !(m_control & kCtlNien);
    if (m_irq) m_irq->set_level(m_irq_level);
}

}  // namespace rv::ide

namespace rv {

void PiixIde::State::encode(snapshot::Writer& w) const {
    config.encode(w);
    for (const auto& channel : channels) channel.encode(w);
}

PiixIde::State PiixIde::State::decode(snapshot::Reader& r) {
    State s;
    s.config = PciConfigSpace::State::decode(r);
    for (auto& channel : s.channels) channel = ide::AtaChannel::State::decode(r);
    return s;
}

PiixIde::State PiixIde::save() {
    std::lock_guard lock(m_lock);
    return State{m_config.save(), {m_channels[0]->save(), m_channels[1]->save()}};
}

Result<void> PiixIde::restore(const State& s) {
    std::lock_guard lock(m_lock);
    // Everything is checked before anything changes; the config space
    // checks and applies in one step, and the channels cannot fail after.
    for (unsigned channel = 0; channel < 2; ++channel)
        RV_TRY_VOID(with_context(m_channels[channel]->check(s.channels[channel]),
                                 fmt::format("ide state: channel {}", channel)));
    // A held command needs the limiter timer to resume, even where this
    // controller has no limits. Attached early, an unused timer is harmless.
    for (unsigned channel = 0; channel < 2; ++channel)
        if (s.channels[channel].phase == ide::AtaChannel::State::Phase::Throttled)
            RV_TRY_VOID(attach_limiter_timer(channel));
    RV_TRY_VOID(m_config.restore(s.config));
    sync_bus_master();
    for (unsigned channel = 0; channel < 2; ++channel)
        m_channels[channel]->restore(s.channels[channel]);
    return {};
}

}  // namespace rv
