// The IDE controller's snapshot state: save -> encode -> decode -> restore
// into a controller made afresh over images with the same contents -> save
// gives the same state, and the restored controller answers the next
// register and data-port accesses as the original does. Saving completes
// DMA in flight (it is never lost or replayed); a command the rate limiter
// holds resumes after restore; impossible states are refused and leave the
// controller as it was.
#include "ide_test_util.h"
#include "snapshot/state_codec.h"
#include "support/state_roundtrip.h"
#include "support/limiter_timer.h"
#include "support/manual_clock.h"

namespace rv::test {
namespace {

using namespace ata;
using ide::kBmCmdStart;
using ide::kBmCmdToMemory;
using ide::kBmCommand;
using ide::kBmStatusActive;
using ide::kBmStatusInterrupt;
using ide::kPrdEndOfTable;
using Phase = ide::AtaChannel::State::Phase;

constexpr uint64_t kTable = 0x1000;

using test::expect_truncation_refused;
using test::through_bytes;

// What a driver can read without changing anything: per channel the
// alternate status, the task file but Status (whose read acknowledges
// INTRQ), the bus-master registers and the IRQ line; then the config space.
std::vector<uint8_t> observe(IdeRig& r) {
    std::vector<uint8_t> out;
    for (unsigned ch = 0; ch < 2; ++ch) {
        out.push_back(r.alt_status(ch));
        for (unsigned index = reg::kErrorFeature; index <= reg::kDevice; ++index)
            out.push_back(r.reg(index, ch));
        std::array<uint8_t, 8> bm{};
        r.dev->bar_read(4, ch * 8, bm);
        out.insert(out.end(), bm.begin(), bm.end());
        out.push_back(r.irq[ch]->level());
    }
    std::array<uint8_t, kPciConfigSize> config{};
    r.dev->config_read(0, config);
    out.insert(out.end(), config.begin(), config.end());
    return out;
}

class IdeStateTest : public IdeTest {
  protected:
    // Drives 0, 1 (primary) and 2 (secondary master); slot 3 is empty.
    void start_both(std::array<std::optional<DriveSpec>, 4> specs = {DriveSpec{}, DriveSpec{},
                                                                     DriveSpec{}}) {
        start(specs);
        other.start(specs);
        enable_bus_master();
    }
    // The same bytes in both controllers' images (the medium is not state).
    void write_image(unsigned drive, uint64_t lba, const std::vector<uint8_t>& data) {
        images[drive]->write(lba * 512, data);
        other.images[drive]->write(lba * 512, data);
    }
    // Saves this controller's state and restores it, through bytes, into `other`.
    PiixIde::State transfer() {
        const PiixIde::State saved = dev->save();
        auto restored = other.dev->restore(through_bytes(saved));
        EXPECT_TRUE(restored.has_value()) << restored.error().message();
        EXPECT_EQ(other.dev->save(), saved);
        EXPECT_EQ(observe(other), observe(*this));
        return saved;
    }

    IdeRig other;  // the controller the state is restored into
};

TEST_F(IdeStateTest, PioReadMidSectorRoundTripsAndAnswersAlike) {
    start_both();
    const auto data = pattern(259 * 512, 5);
    write_image(0, 1000, data);
    // Channel 0: 259 sectors (more than the buffer holds, and a HOB count of
    // 1), the first sector and 200 bytes of the second read.
    lba48(1000, 259);
    command(cmd::kReadSectorsExt);
    ASSERT_EQ(pio_in(1), std::vector<uint8_t>(data.begin(), data.begin() + 512));
    ASSERT_EQ(read_data(200), std::vector<uint8_t>(data.begin() + 512, data.begin() + 712));
    ASSERT_TRUE(irq[0]->level());  // the second block announced, not acknowledged
    // Channel 1: nIEN, a command that completed with INTRQ masked, a HOB
    // byte left by the guest, the write cache off.
    write8(ctl(1), 0, kCtlNien);
    set_reg(reg::kCount, 0x55, 1);
    set_reg(reg::kCount, 0x66, 1);
    set_reg(reg::kErrorFeature, feature::kDisableWriteCache, 1);
    command(cmd::kSetFeatures, 1);
    ASSERT_FALSE(irq[1]->level());
    // Bus-master registers of both channels programmed.
    bm_set_prd(0x3000, 0);
    bm_write8(kBmCommand, kBmCmdToMemory, 0);
    bm_set_prd(0x2008, 1);

    const PiixIde::State saved = transfer();
    const auto& ch0 = saved.channels[0];
    EXPECT_EQ(ch0.phase, Phase::PioIn);
    EXPECT_EQ(ch0.opcode, cmd::kReadSectorsExt);
    EXPECT_EQ(ch0.buffer.size(), 256u * 512);
    EXPECT_EQ(ch0.buf_pos, 712u);
    EXPECT_EQ(ch0.block_end, 1024u);
    EXPECT_EQ(ch0.lba, 1256u);
    EXPECT_EQ(ch0.remaining, 3u);
    EXPECT_EQ(ch0.hob_count, 1);
    EXPECT_EQ(ch0.bm_prd, 0x3000u);
    EXPECT_EQ(ch0.bm_command, kBmCmdToMemory);
    const auto& ch1 = saved.channels[1];
    EXPECT_TRUE(ch1.intrq);
    EXPECT_EQ(ch1.control, kCtlNien);
    EXPECT_EQ(ch1.hob_count, 0x55);
    ASSERT_TRUE(ch1.disks[0]);
    EXPECT_FALSE(ch1.disks[0]->write_cache);
    EXPECT_FALSE(ch1.disks[1]);
    EXPECT_TRUE(other.irq[0]->level()) << "restore drives IRQ 14";
    EXPECT_FALSE(other.irq[1]->level());

    // The rest of the command, from the buffer and then from the disk.
    for (IdeRig* r : {static_cast<IdeRig*>(this), &other}) {
        EXPECT_EQ(r->read_data(312), std::vector<uint8_t>(data.begin() + 712, data.begin() + 1024));
        EXPECT_EQ(r->pio_in(257), std::vector<uint8_t>(data.begin() + 1024, data.end()));
        EXPECT_EQ(r->status(), kStatusReady);
    }
    EXPECT_EQ(observe(other), observe(*this));
    // HOB reads of channel 0; channel 1's masked interrupt shows once nIEN clears.
    for (IdeRig* r : {static_cast<IdeRig*>(this), &other}) {
        write8(r->ctl(0), 0, kCtlHob);
        write8(r->ctl(1), 0, 0);
        EXPECT_TRUE(r->irq[1]->level());
        r->set_reg(reg::kDevice, 0xA0, 1);  // clears HOB on channel 1 only
    }
    EXPECT_EQ(observe(other), observe(*this));
    EXPECT_EQ(other.reg(reg::kCount), 1) << "HOB count";
    EXPECT_EQ(other.status(1), status(1));
    EXPECT_FALSE(other.irq[1]->level());
    // The disk settings: IDENTIFY reports the write cache off on both.
    for (IdeRig* r : {static_cast<IdeRig*>(this), &other}) r->command(cmd::kIdentify, 1);
    const auto identify = pio_in(1, 1, 1);
    EXPECT_EQ(other.pio_in(1, 1, 1), identify);
    EXPECT_EQ(identify[85 * 2] & 0x20, 0) << "word 85: write cache disabled";
    expect_truncation_refused(saved);
}

TEST_F(IdeStateTest, IdentifyAndPioWriteMidBlockRoundTrip) {
    start_both();
    // Channel 0: IDENTIFY of the slave, three bytes read with byte accesses.
    select(1);
    command(cmd::kIdentify);
    settle();
    const auto first = read_data(3, 1);
    // Channel 1: WRITE MULTIPLE of 6 sectors in blocks of 4, 1.5 sectors in.
    set_reg(reg::kCount, 4, 1);
    command(cmd::kSetMultiple, 1);
    ASSERT_EQ(status(1), kStatusReady);
    const auto data = pattern(6 * 512, 9);
    lba28(300, 6, 0, 1);
    command(cmd::kWriteMultiple, 1);
    settle(1);
    write_data(std::vector<uint8_t>(data.begin(), data.begin() + 768), 2, 1);

    const PiixIde::State saved = transfer();
    EXPECT_EQ(saved.channels[0].opcode, cmd::kIdentify);
    EXPECT_EQ(saved.channels[0].buf_pos, 3u);
    EXPECT_EQ(saved.channels[0].unit, 1);
    EXPECT_EQ(saved.channels[1].phase, Phase::PioOut);
    EXPECT_EQ(saved.channels[1].buffer, std::vector<uint8_t>(data.begin(), data.begin() + 768));
    EXPECT_EQ(saved.channels[1].block_end, 4u * 512);
    EXPECT_EQ(saved.channels[1].block, 4u);
    EXPECT_EQ(other.images[2]->read(300 * 512, 512), std::vector<uint8_t>(512, 0))
        << "nothing reaches the disk before its block is whole";

    for (IdeRig* r : {static_cast<IdeRig*>(this), &other}) {
        // The rest of the first block, then the second (2 sectors).
        r->write_data(std::vector<uint8_t>(data.begin() + 768, data.begin() + 2048), 2, 1);
        r->pio_out(std::vector<uint8_t>(data.begin() + 2048, data.end()), 4, 1);
        EXPECT_EQ(r->status(1), kStatusReady);
        EXPECT_EQ(r->images[2]->read(300 * 512, data.size()), data);
    }
    auto rest = read_data(509, 1);
    EXPECT_EQ(other.read_data(509, 1), rest);
    rest.insert(rest.begin(), first.begin(), first.end());
    EXPECT_EQ(std::string(rest.begin() + 20, rest.begin() + 28), "ESIRLA1-") << "serial, swapped";
    EXPECT_EQ(observe(other), observe(*this));
}

TEST_F(IdeStateTest, SaveCompletesDmaInFlightAndRestoreDoesNotReplayIt) {
    start_both({DriveSpec{.engine = BlockOptions::Engine::IoUring}});
    const auto data = pattern(16 * 512, 3);
    ASSERT_TRUE(memory.write(GuestAddress(0x20000), data));
    ASSERT_TRUE(other.memory.write(GuestAddress(0x20000), data));
    for (IdeRig* r : {static_cast<IdeRig*>(this), &other})
        r->write_prd(kTable, {{0x20000, 16 * 512, kPrdEndOfTable}});
    // A DMA write submitted to the backend, its completion not yet delivered.
    bm_set_prd(kTable);
    lba28(40, 16);
    command(cmd::kWriteDma);
    bm_write8(kBmCommand, kBmCmdStart);
    EXPECT_FALSE(dev->idle());
    EXPECT_FALSE(irq[0]->level());

    const PiixIde::State saved = transfer();
    EXPECT_EQ(saved.channels[0].phase, Phase::Idle);
    EXPECT_TRUE(saved.channels[0].intrq);
    EXPECT_EQ(saved.channels[0].bm_status & (kBmStatusActive | kBmStatusInterrupt),
              kBmStatusInterrupt);
    EXPECT_EQ(images[0]->read(40 * 512, data.size()), data) << "the write is in the image";
    EXPECT_TRUE(irq[0]->level());
    EXPECT_TRUE(other.irq[0]->level());
    // Delivered once: the event loop finds nothing more, and the restored
    // controller does not write again (its image stands for the same file).
    events.pump();
    other.events.pump();
    EXPECT_EQ(dev->save(), saved);
    EXPECT_EQ(other.images[0]->read(40 * 512, data.size()), std::vector<uint8_t>(data.size(), 0));

    // A DMA read waiting for the bus master: both controllers run it alike.
    for (IdeRig* r : {static_cast<IdeRig*>(this), &other}) {
        r->bm_write8(kBmCommand, 0);
        r->bm_write8(ide::kBmStatus, kBmStatusInterrupt);
        EXPECT_EQ(r->status(), kStatusReady);
    }
    write_image(0, 100, pattern(8 * 512, 8));
    write_prd(kTable, {{0x40000, 8 * 512, kPrdEndOfTable}});
    other.write_prd(kTable, {{0x40000, 8 * 512, kPrdEndOfTable}});
    bm_write8(kBmCommand, kBmCmdToMemory);
    lba28(100, 8);
    command(cmd::kReadDma);
    EXPECT_EQ(transfer().channels[0].phase, Phase::DmaReady);
    for (IdeRig* r : {static_cast<IdeRig*>(this), &other}) {
        r->bm_write8(kBmCommand, kBmCmdToMemory | kBmCmdStart);
        r->events.pump(5000);
        EXPECT_EQ(r->guest_bytes(0x40000, 8 * 512), pattern(8 * 512, 8));
    }
    EXPECT_EQ(observe(other), observe(*this));
}

TEST_F(IdeStateTest, CommandHeldByTheRateLimiterResumesAfterRestore) {
    ManualNsClock clock;
    clock_ns = clock.function();
    // One command per second on drive 0 here; no limiter where it is restored.
    start({DriveSpec{.rate_limiter = RateLimiterConfig{.ops = TokenBucketConfig{1, 0, 1000}}}});
    other.start({DriveSpec{}});
    write_image(0, 20, pattern(2 * 512, 4));
    lba28(0, 1);
    command(cmd::kReadSectors);
    pio_in(1);
    lba28(20, 2);
    command(cmd::kReadSectors);
    ASSERT_EQ(alt_status(), kStatusBsy);
    ASSERT_TRUE(take_armed_timer(dev->limiter_timer_fd(0)));

    EXPECT_EQ(other.dev->limiter_timer_fd(0), -1);
    const PiixIde::State saved = transfer();
    EXPECT_EQ(saved.channels[0].phase, Phase::Throttled);
    EXPECT_EQ(saved.channels[0].remaining, 2u);
    ASSERT_GE(other.dev->limiter_timer_fd(0), 0) << "restore attaches the timer";
    EXPECT_EQ(other.pio_in(2), pattern(2 * 512, 4));
    EXPECT_EQ(other.status(), kStatusReady);
}

TEST_F(IdeStateTest, RefusesImpossibleStatesAndStaysAsItWas) {
    start_both();
    write_image(0, 0, pattern(4 * 512, 1));
    lba28(0, 4);
    command(cmd::kReadSectors);
    pio_in(1);
    const PiixIde::State good = dev->save();
    ASSERT_EQ(good.channels[0].phase, Phase::PioIn);
    ASSERT_TRUE(other.dev->restore(good));
    const size_t irq_calls = other.irq[0]->history().size();

    auto refused = [&](const char* what, const std::function<void(PiixIde::State&)>& change) {
        PiixIde::State bad = good;
        change(bad);
        auto result = other.dev->restore(bad);
        ASSERT_FALSE(result.has_value()) << what;
        EXPECT_EQ(result.error().kind(), ErrorKind::InvalidInput) << what;
        EXPECT_EQ(other.dev->save(), good) << what;
        EXPECT_EQ(other.irq[0]->history().size(), irq_calls) << what;
    };
    using S = PiixIde::State;
    refused("position beyond the buffer", [](S& s) { s.channels[0].buf_pos = 4 * 512 + 1; });
    refused("position past the block", [](S& s) { s.channels[0].block_end = 2048; });
    refused("unknown phase", [](S& s) { s.channels[0].phase = static_cast<Phase>(7); });
    refused("a command with no data phase", [](S& s) { s.channels[0].opcode = cmd::kNop; });
    refused("direction of another command",
            [](S& s) { s.channels[0].opcode = cmd::kWriteSectors; });
    refused("PIO out for a read", [](S& s) { s.channels[0].phase = Phase::PioOut; });
    refused("a larger buffer than the controller's",
            [](S& s) { s.channels[0].buffer.resize(257 * 512); });
    refused("beyond the disk", [](S& s) { s.channels[0].lba = 2049; });
    refused("more sectors to go than the command has",
            [](S& s) { s.channels[0].remaining = s.channels[0].sectors + 1; });
    refused("a disk in an empty slot", [](S& s) { s.channels[1].disks[1].emplace(); });
    refused("no disk in a filled slot", [](S& s) { s.channels[0].disks[1].reset(); });
    refused("a command on a unit without a disk", [&](S& s) {
        s.channels[1] = s.channels[0];
        s.channels[1].disks[1].reset();
        s.channels[1].unit = 1;
    });
    refused("a multiple count of 3", [](S& s) { s.channels[0].disks[0]->multiple = 3; });
    refused("no heads", [](S& s) { s.channels[0].disks[1]->heads = 0; });
    refused("UDMA5", [](S& s) { s.channels[1].disks[0]->transfer_mode = kXferUdma | 5; });
    refused("an idle channel with a command", [](S& s) { s.channels[1].opcode = cmd::kReadDma; });
    refused("a command during a reset", [](S& s) { s.channels[0].control |= kCtlSrst; });
    refused("reserved bus-master command bits", [](S& s) { s.channels[1].bm_command = 0x80; });
    refused("an unaligned PRD table", [](S& s) { s.channels[0].bm_prd = 0x1002; });
    refused("another PCI device", [](S& s) { s.config.bytes[pci_reg::kDeviceId] ^= 1; });

    // The decoder caps the buffer at the controller's size.
    S big = good;
    big.channels[0].buffer.resize(ide::AtaChannel::kBufferSectors * 512 + 1);
    EXPECT_FALSE(snapshot::decode<S>(snapshot::encode(big), "ide").has_value());
    // And a valid state still goes in afterwards.
    EXPECT_TRUE(other.dev->restore(other.dev->save()).has_value());
}

}  // namespace
}  // namespace rv::test
