// The PIIX4 IDE function (8086:7111) in legacy ("compatibility") mode, as
// Linux's ata_piix drives it: two channels at the ISA ports 0x1F0/0x3F6
// (IRQ 14) and 0x170/0x376 (IRQ 15), bus-master DMA through the 16-byte I/O
// BAR 4, and up to four ATA disks on block backends. PIIX4 rather than PIIX3
// so ata_piix allows UDMA33 (it treats the PIIX3 as MWDMA-only).
//
// Wiring (the VMM):
//   auto ide = PiixIde::create(memory, std::move(drives), irq14, irq15, event_loop);
//   pci_root->add(ide);                                   // BAR 4 = BMIDE
//   pio.insert(ide->command_block(0), PioAddress{PiixIde::kPrimaryCommandBase}, 8);
//   pio.insert(ide->control_block(0), PioAddress{PiixIde::kPrimaryControlPort}, 1);
//   ... the same for channel 1 with the secondary addresses.
// The backends' completion fds are registered with `events` in create() and
// removed when the device is destroyed.
//
// Rate limiting: each drive may have a RateLimiter (IdeDrive::rate_limiter,
// PiixIde::set_rate_limiter at runtime) and a rate limit group it draws
// from too (IdeDrive::rate_limit_group); see AtaChannel. A channel's limiter
// timer is registered once one of its drives has a limiter or group in force.
//
// One mutex guards the whole controller, the limiters included; port, BAR
// and config accesses (vCPU threads), backend completions and limiter timers
// (event loop) and set_rate_limiter (the API's thread) all take it.
#pragma once

#include <array>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "backends/block/block_backend.h"
#include "base/error.h"
#include "bus/bus.h"
#include "devices/event_registrar.h"
#include "devices/interrupt.h"
#include "devices/legacy/ide/ata_channel.h"
#include "devices/pci/config_space.h"
#include "devices/pci/pci_device.h"
#include "devices/rate_limiter.h"
#include "memory/guest_memory.h"
#include "snapshot/state_codec.h"

namespace rv {

struct IdeDrive {  // one ATA disk
    std::unique_ptr<BlockBackend> backend;
    std::string serial;                             // up to 20 characters; empty = generated
    std::optional<RateLimiterConfig> rate_limiter;  // none: unlimited
    std::shared_ptr<RateLimitGroup> rate_limit_group;  // also drawn from; none: its limiter only
};

class PiixIde final : public PciDevice {
  public:
    static constexpr uint16_t kPrimaryCommandBase = 0x1F0;
    static constexpr uint16_t kPrimaryControlPort = 0x3F6;
    static constexpr uint16_t kSecondaryCommandBase = 0x170;
    static constexpr uint16_t kSecondaryControlPort = 0x376;
    static constexpr uint16_t kVendorId = 0x8086;
    static constexpr uint16_t kDeviceId = 0x7111;  // 82371AB/EB/MB PIIX4 IDE
    static constexpr uint8_t kBmBar = 4;
    static constexpr uint64_t kBmBarSize = 16;
    // PIIX config registers: IDETIM (primary 0x40, secondary 0x42), SIDETIM,
    // UDMACTL, UDMATIM. Bit 15 of IDETIM enables the channel's decode.
    static constexpr uint16_t kIdeTimPrimary = 0x40;
    static constexpr uint16_t kIdeTimSecondary = 0x42;
    static constexpr uint16_t kIdeTimDecodeEnable = 0x8000;

    // drives[0] primary master, [1] primary slave, [2] secondary master,
    // [3] secondary slave; an empty optional is an absent disk. Each drive
    // needs a backend. `clock_ns` is the rate limiters' clock, for tests
    // (empty: CLOCK_MONOTONIC).
    static Result<std::shared_ptr<PiixIde>> create(const GuestMemory& memory,
                                                   std::array<std::optional<IdeDrive>, 4> drives,
                                                   std::shared_ptr<IrqLine> irq14,
                                                   std::shared_ptr<IrqLine> irq15,
                                                   EventRegistrar& events, NsClock clock_ns = {});
    ~PiixIde() override;

    // Port-I/O devices for channel 0 (primary) or 1 (secondary): the
    // 8-port command block and the 1-port control block.
    std::shared_ptr<BusDevice> command_block(unsigned channel);
    std::shared_ptr<BusDevice> control_block(unsigned channel);

    std::string_view name() const override { return "piix4-ide"; }
    void config_read(uint16_t offset, std::span<uint8_t> data) override;
    void config_write(uint16_t offset, std::span<const uint8_t> data) override;
    std::vector<PciBarInfo> bars() const override;
    void bar_read(uint8_t index, uint64_t offset, std::span<uint8_t> data) override;
    void bar_write(uint8_t index, uint64_t offset, std::span<const uint8_t> data) override;
    // Per drive, drive{N}_{requests,reads,writes,read_bytes,write_bytes,
    // throttled} (see ide::AtaIoCounters), then the controller's own.
    DeviceCounters counters() const override;
    // Drive `drive`'s (0..3) counters under their plain names, as the
    // accounting bills a drive by its id; empty for an absent drive.
    DeviceCounters drive_counters(unsigned drive) const;

    // Replaces drive `drive`'s (0..3) rate limiter (nullopt: unlimited) while
    // the VM runs, from any thread; a command it holds back is retried under
    // the new limits at once, from the event loop. Fails for an absent drive
    // or if the channel's limiter timer cannot be set up.
    Result<void> set_rate_limiter(unsigned drive, std::optional<RateLimiterConfig> config);
    // Channel `channel`'s limiter timer fd, -1 while none is registered.
    int limiter_timer_fd(unsigned channel) const;

    // The event loop's view, public for tests that pump completions
    // themselves: the completion fd of `drive` (0..3) became readable.
    void process_completions(unsigned drive);
    // True when neither channel has a command in progress.
    bool idle() const;
    // Opens every disk's image again (BlockBackend::reopen), while idle: a
    // migration's destination, once the source has stopped writing.
    Result<void> reopen_disks();

    // Snapshots: everything the guest can observe of the controller, its
    // PCI function's config space and both channels (ide::AtaChannel::State).
    // The drives' media are not state: the images are reopened from the
    // config, and the state only says which slots have a disk.
    struct State {
        static constexpr uint32_t kVersion = 1;
        PciConfigSpace::State config;
        std::array<ide::AtaChannel::State, 2> channels;

        void encode(snapshot::Writer& w) const;
        static State decode(snapshot::Reader& r);
        bool operator==(const State&) const = default;
    };
    // Completes the backend I/O in flight first, waiting for it under the
    // lock and delivering its completions as the event loop would (a DMA
    // transfer runs to its end, raising its interrupt): a saved state never
    // holds I/O half done, and a write is either in the image and done in
    // the state or not started. So save with the vCPUs stopped (nothing new
    // is submitted) and before guest memory, which the DMA may still write.
    // A command the rate limiter holds back has moved no data; it is saved
    // as such and restore() has it ask the limiter again.
    State save();
    // Into a controller made with the same drive slots filled (the disks as
    // large, and writable where the state has a write in progress), before
    // the guest runs; drives IRQ 14 and 15 to match. Refuses (InvalidInput)
    // what no PIIX with these drives could hold, leaving the device as it was.
    Result<void> restore(const State& state);

  private:
    class PortBlock;

    PiixIde(const GuestMemory& memory, std::array<std::optional<IdeDrive>, 4> drives,
            std::shared_ptr<IrqLine> irq14, std::shared_ptr<IrqLine> irq15, NsClock clock_ns);
    void port_read(unsigned channel, bool control, uint64_t offset, std::span<uint8_t> data);
    void port_write(unsigned channel, bool control, uint64_t offset, std::span<const uint8_t> data);
    bool decodes(unsigned channel) const;
    void sync_bus_master();
    DeviceCounters drive_counters_locked(unsigned drive) const;
    Result<void> attach_limiter_timer(unsigned channel);
    void on_limiter_timer(unsigned channel);

    mutable std::mutex m_lock;
    PciConfigSpace m_config;
    std::array<std::unique_ptr<ide::AtaChannel>, 2> m_channels;
    std::array<std::shared_ptr<BusDevice>, 2> m_command_blocks;
    std::array<std::shared_ptr<BusDevice>, 2> m_control_blocks;
    EventRegistrar* m_events{nullptr};
    std::vector<int> m_registered_fds;
    std::weak_ptr<PiixIde> m_self;  // for handlers registered after create()
};

}  // namespace rv
