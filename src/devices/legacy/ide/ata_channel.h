// One IDE channel: the shared ATA task-file registers, a master and a slave
// disk, the command state machine (PIO in/out, bus-master DMA, non-data
// commands) and the channel's bus-master (BMIDE) registers. Independent of
// PCI: PiixIde owns two channels and routes port, BAR and completion events
// here.
//
// Not synchronised: every call is made with the controller's mutex held, on
// a vCPU thread (register accesses) or the event-loop thread (completions).
// Disk I/O never runs on the caller's thread: a command that needs data
// submits to the disk's BlockBackend and stays BSY until the completion.
//
// Rate limiting: each disk may have a RateLimiter (Firecracker's drive
// rate_limiter). An ATA read or write command (PIO or DMA) costs 1 op and
// all its data bytes, charged once when the command starts. Refused, the
// drive stays BSY (phase Throttled) and the command starts later from the
// channel's limiter timer; a reset or SRST meanwhile abandons it.
//
// Reset and cancellation: a command in flight when the guest resets the
// channel (SRST) or stops the bus master mid-transfer is cancelled by
// draining its backend (the I/O may still be writing into guest RAM or our
// buffer, so we wait for it) and discarding the completion; every
// submission also carries a fresh tag, and a completion whose tag is not the
// one awaited is ignored, so nothing from a cancelled command can touch the
// device state afterwards.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backends/block/block_backend.h"
#include "devices/interrupt.h"
#include "devices/legacy/ide/ata.h"
#include "devices/legacy/ide/bmdma.h"
#include "devices/rate_limiter.h"
#include "devices/rate_limiter_timer.h"
#include "memory/guest_memory.h"
#include "snapshot/state_codec.h"

namespace rv::ide {

// What a disk did, for the accounting (issue 14) and --stats. A read or write
// command (PIO or DMA, LBA28 or LBA48, single or multiple) counts once, with
// all its data bytes, when it completes without error; one that fails,
// aborts or is cancelled (SRST, bus master stopped) counts in neither.
struct AtaIoCounters {
    uint64_t commands{0};  // every command the disk executed, failed ones too
    uint64_t reads{0};
    uint64_t writes{0};
    uint64_t read_bytes{0};
    uint64_t write_bytes{0};
};

struct AtaDisk {
    std::unique_ptr<BlockBackend> backend;
    std::string serial;
    uint8_t status{ata::kStatusReady};
    uint8_t error{ata::kErrDiagPassed};
    uint8_t multiple{ata::kMaxMultipleSectors};  // READ/WRITE MULTIPLE block, 0 = off
    bool write_cache{true};
    uint8_t transfer_mode{0};  // SET FEATURES 0x03 value (for IDENTIFY words 63/88)
    uint16_t heads{ata::kDefaultHeads};
    uint16_t sectors_per_track{ata::kDefaultSectorsPerTrack};
    RateLimiter limiter;    // unlimited unless configured
    uint64_t throttled{0};  // commands the limiter held back (each try counts)
    AtaIoCounters io;
};

class AtaChannel {
  public:
    // Sectors buffered for PIO: one backend read fills up to this many, and
    // the guest drains them a DRQ block at a time.
    static constexpr uint64_t kBufferSectors = 256;

    AtaChannel(const GuestMemory& memory, std::array<std::optional<AtaDisk>, 2> disks,
               std::shared_ptr<IrqLine> irq);
    ~AtaChannel();
    AtaChannel(const AtaChannel&) = delete;
    AtaChannel& operator=(const AtaChannel&) = delete;

    // Command block (8 ports) and control block (alt status / device control).
    void command_read(unsigned reg, std::span<uint8_t> data);
    void command_write(unsigned reg, std::span<const uint8_t> data);
    uint8_t alt_status() const;
    void control_write(uint8_t value);

    // This channel's 8 bytes of the BMIDE BAR.
    void bm_read(unsigned offset, std::span<uint8_t> data) const;
    void bm_write(unsigned offset, std::span<const uint8_t> data);
    // PCI command register's bus-master enable: without it no DMA starts.
    void set_bus_master_enabled(bool enabled) { m_bus_master = enabled; }

    // The event loop saw disk `unit`'s completion fd readable. Returns how
    // many completions the backend delivered (stale ones included).
    size_t process_completions(unsigned unit);

    BlockBackend* backend(unsigned unit) const;
    bool has_disks() const { return m_disks[0] || m_disks[1]; }

    // Rate limiting. The timer brings back a command the limiter held; the
    // controller registers it (attach) and calls on_limiter_timer when it
    // fires. set_rate_limiter retries a held command at once (by the timer).
    Result<void> attach_limiter_timer(EventRegistrar& events, std::function<void()> on_expiry) {
        return m_limiter_timer.attach(events, std::move(on_expiry));
    }
    void detach_limiter_timer() { m_limiter_timer.detach(); }
    int limiter_timer_fd() const { return m_limiter_timer.fd(); }
    bool limited() const;  // some disk has a limiter in force
    void set_rate_limiter(unsigned unit, const std::optional<RateLimiterConfig>& config);
    void on_limiter_timer();
    uint64_t throttled(unsigned unit) const { return m_disks[unit] ? m_disks[unit]->throttled : 0; }
    AtaIoCounters io_counters(unsigned unit) const {
        return m_disks[unit] ? m_disks[unit]->io : AtaIoCounters{};
    }
    bool rate_limited() const { return m_phase == Phase::Throttled; }
    // No command in progress (for tests and the fuzzer).
    bool idle() const { return m_phase == Phase::Idle; }

    // Snapshots (ide_state.cpp). A disk's registers and the settings the
    // guest changed by command; its medium and serial come from the config.
    struct DiskState {
        uint8_t status{ata::kStatusReady};
        uint8_t error{ata::kErrDiagPassed};
        uint8_t multiple{ata::kMaxMultipleSectors};
        bool write_cache{true};
        uint8_t transfer_mode{0};
        uint16_t heads{ata::kDefaultHeads};
        uint16_t sectors_per_track{ata::kDefaultSectorsPerTrack};
        bool operator==(const DiskState&) const = default;
    };
    // A channel with no backend I/O in flight (save() completes it first),
    // versioned with PiixIde::State. So no DMA bookkeeping is state: a DMA
    // command is saved before the bus master starts it (DmaReady: the PRD
    // table is walked at the start) or after it ended, never with a cursor
    // of host addresses into guest RAM. INTRQ's level is derived (intrq and
    // not nIEN); the I/O counters, limiter tokens and log throttle are the
    // VMM's, not the guest's.
    struct State {
        // The phases a channel can be saved in: Backend and Dma (I/O in
        // flight) never are.
        enum class Phase : uint8_t { Idle, PioIn, PioOut, DmaReady, Throttled };

        std::array<std::optional<DiskState>, 2> disks;  // set: a disk in that slot
        // Task file, current and previous (HOB) bytes.
        uint8_t feature{0}, count{1}, lba_low{1}, lba_mid{0}, lba_high{0};
        uint8_t hob_feature{0}, hob_count{0}, hob_lba_low{0}, hob_lba_mid{0}, hob_lba_high{0};
        uint8_t device{0};
        uint8_t control{0};  // SRST, nIEN, HOB
        bool intrq{false};
        // The command in progress; all defaults when Idle.
        Phase phase{Phase::Idle};
        uint8_t unit{0};
        uint8_t opcode{0};
        uint64_t lba{0};        // next sector the backend reads or writes
        uint64_t remaining{0};  // sectors the backend has still to read or write
        uint64_t sectors{0};    // the command's; 0 for IDENTIFY
        uint64_t block{1};      // sectors per DRQ block
        bool write{false};
        bool dma{false};
        // PioIn: what the last disk read (or IDENTIFY) put in the buffer,
        // buf_pos bytes of it taken by the guest; PioOut: the buf_pos bytes
        // of the current block the guest has written. block_end: where the
        // DRQ block ends. Empty and 0 in the other phases.
        std::vector<uint8_t> buffer;
        uint64_t buf_pos{0};
        uint64_t block_end{0};
        // Bus master (BMIDE) registers.
        uint8_t bm_command{0};
        uint8_t bm_status{0};
        uint32_t bm_prd{0};

        void encode(snapshot::Writer& w) const;
        static State decode(snapshot::Reader& r);
        bool operator==(const State&) const = default;
    };
    // Completes the backend I/O in flight first (see complete_in_flight).
    State save();
    // Refuses (InvalidInput) a state no channel with these disks could be
    // in: a disk where this channel has none or none where it has one, a
    // transfer beyond a disk or writing a read-only one, positions outside
    // the buffer, unknown phases or commands, reserved register bits.
    Result<void> check(const State& state) const;
    // Applies a state check() accepted, abandoning whatever this channel was
    // doing, and drives INTRQ to match. A Throttled command is retried from
    // the limiter timer, which the caller has attached.
    void restore(const State& state);

  private:
    enum class Phase {
        Idle,
        Backend,    // BSY: waiting for a backend completion
        PioIn,      // DRQ: the guest reads a block from m_buffer
        PioOut,     // DRQ: the guest writes a block into m_buffer
        DmaReady,   // a DMA command waits for the bus master to be started
        Dma,        // bus-master transfer submitted
        Throttled,  // BSY: a read/write waits for its disk's rate limiter
    };
    enum class Pending { None, PioRead, PioWrite, Dma, Flush, WriteThrough };

    struct Transfer {
        unsigned unit{0};
        uint8_t opcode{0};
        uint64_t lba{0};        // next sector the backend reads or writes
        uint64_t remaining{0};  // sectors not yet read or written by the backend
        uint64_t sectors{0};    // the whole command's; 0 for a command without data
        uint64_t block{1};      // sectors per DRQ block (PIO)
        bool write{false};
        bool dma{false};
    };

    // Registers.
    unsigned selected() const { return (m_device & ata::kDevSlave) ? 1 : 0; }
    AtaDisk* disk(unsigned unit) { return m_disks[unit] ? &*m_disks[unit] : nullptr; }
    uint8_t read_register(unsigned reg);
    void write_register(unsigned reg, uint8_t value);
    void data_read(std::span<uint8_t> data);
    void data_write(std::span<const uint8_t> data);
    void set_signature();
    void bm_write_byte(unsigned offset, uint8_t value);

    // Interrupts: INTRQ is a level the channel raises when a command wants
    // the host's attention; reading Status or issuing a command lowers it,
    // and nIEN masks it.
    void raise_irq();
    void clear_irq();
    void update_irq();

    // Commands (ata_commands.cpp).
    void execute(uint8_t opcode);
    void execute_diagnostic();
    void set_features(AtaDisk& d);
    void start_transfer(uint8_t opcode, bool write, bool dma, bool lba48, uint64_t block);
    void start_identify(AtaDisk& d);
    void start_data_phase();
    void submit_pio_read();
    void submit_pio_write();
    void begin_in_block();
    void begin_out_block();
    void begin_dma();
    void submit_dma_chunk();
    void submit_flush(Pending kind);
    void on_complete(uint64_t tag, int64_t result);
    void after_write();
    void complete_ok();
    void count_transfer();
    void complete_error(uint8_t error);
    void fail_dma(const Error& why);
    void cancel();
    // Marks the DMA read in flight (m_dma_reading) written, for dirty tracking.
    void mark_dma_read();
    void complete_in_flight();
    uint64_t next_tag() { return ++m_tag; }

    const GuestMemory& m_memory;
    std::array<std::optional<AtaDisk>, 2> m_disks;
    std::shared_ptr<IrqLine> m_irq;

    // Task file: "current" and "previous" (HOB) bytes of each LBA48 register.
    uint8_t m_feature{0}, m_count{0}, m_lba_low{0}, m_lba_mid{0}, m_lba_high{0};
    uint8_t m_hob_feature{0}, m_hob_count{0}, m_hob_lba_low{0}, m_hob_lba_mid{0}, m_hob_lba_high{0};
    uint8_t m_device{0};
    uint8_t m_control{0};
    bool m_intrq{false};
    bool m_irq_level{false};

    // Command state.
    Phase m_phase{Phase::Idle};
    Pending m_pending{Pending::None};
    uint64_t m_tag{0};  // tag of the awaited completion
    uint64_t m_pending_sectors{0};
    Transfer m_xfer;
    std::unique_ptr<uint8_t[]> m_buffer;
    uint64_t m_buf_pos{0};
    uint64_t m_buf_len{0};
    uint64_t m_block_end{0};

    LimiterTimer m_limiter_timer;  // attached while a disk has a limiter in force

    // Bus master.
    uint8_t m_bm_command{0};
    uint8_t m_bm_status{0};
    uint32_t m_bm_prd{0};
    bool m_bus_master{false};
    DmaCursor m_dma;
    // The guest buffers of the DMA read in flight, marked for dirty tracking
    // once it completes (or is abandoned), not when submitted.
    std::vector<iovec> m_dma_reading;
    bool m_dma_table_longer{false};
    // Guest-caused DMA aborts: logged for the first few only, so a driver
    // that keeps handing us bad PRD tables cannot flood the VMM's log.
    uint64_t m_dma_aborts{0};
};

}  // namespace rv::ide
