// A PiixIde over temp image files and plain guest memory, with a recording
// event registrar the test pumps itself (the event loop's job) and recording
// IRQ lines, plus the register sequences a driver would use. IdeRig is one
// such controller (a test may build two, e.g. to restore one's state into
// the other); IdeTest is the fixture with one.
#pragma once

#include <gtest/gtest.h>
#include <sys/epoll.h>

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "devices/legacy/ide/ata.h"
#include "devices/legacy/ide/bmdma.h"
#include "devices/legacy/ide/piix_ide.h"
#include "support/bus_access.h"
#include "support/epoll_registrar.h"
#include "support/recording_irq_line.h"
#include "unit/backends/block_test_util.h"

namespace rv::test {

using RecordingRegistrar = EpollRegistrar;

inline GuestMemory make_ide_memory(uint64_t size) {
    GuestMemory::RegionSpec spec{GuestAddress(0), size};
    auto memory = GuestMemory::create(std::span(&spec, 1));
    if (!memory) throw std::runtime_error("test memory: " + memory.error().message());
    return std::move(*memory);
}

struct DriveSpec {
    uint64_t size{1 << 20};
    bool read_only{false};
    BlockOptions::Engine engine{BlockOptions::Engine::Sync};
    BlockOptions::Cache cache{BlockOptions::Cache::Writeback};
    uint64_t min_direct_alignment{0};  // cache=none: e.g. 4096 for a 4 KiB-sector host disk
    std::optional<RateLimiterConfig> rate_limiter{};  // on clock_ns
};

class IdeRig {
  public:  // helpers are shared with free functions in the tests
    static constexpr uint64_t kMemSize = 4 << 20;

    // Creates the controller with the given drives (index as in PiixIde).
    void start(std::array<std::optional<DriveSpec>, 4> specs = {DriveSpec{}}) {
        std::array<std::optional<IdeDrive>, 4> drives;
        for (unsigned i = 0; i < 4; ++i) {
            if (!specs[i]) continue;
            images[i].emplace(specs[i]->size);
            BlockOptions options{.read_only = specs[i]->read_only,
                                 .cache = specs[i]->cache,
                                 .engine = specs[i]->engine,
                                 .min_direct_alignment = specs[i]->min_direct_alignment};
            auto backend = BlockBackend::open(images[i]->path(), options);
            ASSERT_TRUE(backend) << backend.error().message();
            drives[i] =
                IdeDrive{std::move(*backend), fmt::format("SERIAL-{}", i), specs[i]->rate_limiter};
        }
        auto ide = PiixIde::create(memory, std::move(drives), irq[0], irq[1], events, clock_ns);
        ASSERT_TRUE(ide) << ide.error().message();
        dev = std::move(*ide);
    }

    BusDevice& cmd(unsigned ch = 0) { return *dev->command_block(ch); }
    BusDevice& ctl(unsigned ch = 0) { return *dev->control_block(ch); }

    uint8_t reg(unsigned r, unsigned ch = 0) { return read8(cmd(ch), r); }
    void set_reg(unsigned r, uint8_t v, unsigned ch = 0) { write8(cmd(ch), r, v); }
    uint8_t status(unsigned ch = 0) { return reg(ata::reg::kStatusCommand, ch); }
    uint8_t alt_status(unsigned ch = 0) { return read8(ctl(ch), 0); }
    uint8_t error(unsigned ch = 0) { return reg(ata::reg::kErrorFeature, ch); }
    void select(unsigned unit, unsigned ch = 0) {
        set_reg(ata::reg::kDevice, static_cast<uint8_t>(0xA0 | ata::kDevLba | (unit << 4)), ch);
    }
    void lba28(uint32_t lba, uint8_t count, unsigned unit = 0, unsigned ch = 0) {
        set_reg(ata::reg::kCount, count, ch);
        set_reg(ata::reg::kLbaLow, static_cast<uint8_t>(lba), ch);
        set_reg(ata::reg::kLbaMid, static_cast<uint8_t>(lba >> 8), ch);
        set_reg(ata::reg::kLbaHigh, static_cast<uint8_t>(lba >> 16), ch);
        set_reg(ata::reg::kDevice,
                static_cast<uint8_t>(0xA0 | ata::kDevLba | (unit << 4) | ((lba >> 24) & 0xF)), ch);
    }
    void lba48(uint64_t lba, uint16_t count, unsigned unit = 0, unsigned ch = 0) {
        // "Previous" bytes first, as libata's tf_load does.
        set_reg(ata::reg::kCount, static_cast<uint8_t>(count >> 8), ch);
        set_reg(ata::reg::kLbaLow, static_cast<uint8_t>(lba >> 24), ch);
        set_reg(ata::reg::kLbaMid, static_cast<uint8_t>(lba >> 32), ch);
        set_reg(ata::reg::kLbaHigh, static_cast<uint8_t>(lba >> 40), ch);
        set_reg(ata::reg::kCount, static_cast<uint8_t>(count), ch);
        set_reg(ata::reg::kLbaLow, static_cast<uint8_t>(lba), ch);
        set_reg(ata::reg::kLbaMid, static_cast<uint8_t>(lba >> 8), ch);
        set_reg(ata::reg::kLbaHigh, static_cast<uint8_t>(lba >> 16), ch);
        set_reg(ata::reg::kDevice, static_cast<uint8_t>(ata::kDevLba | (unit << 4)), ch);
    }
    void command(uint8_t op, unsigned ch = 0) { set_reg(ata::reg::kStatusCommand, op, ch); }

    // Delivers backend completions until the channel is no longer BSY.
    void settle(unsigned ch = 0) {
        for (int i = 0; i < 1000 && (alt_status(ch) & ata::kStatusBsy); ++i) events.pump(5000);
        ASSERT_FALSE(alt_status(ch) & ata::kStatusBsy) << "still busy";
    }

    // Reads `bytes` from the data port in accesses of `width` bytes.
    std::vector<uint8_t> read_data(size_t bytes, unsigned width = 2, unsigned ch = 0) {
        std::vector<uint8_t> out(bytes);
        for (size_t at = 0; at < bytes; at += width) cmd(ch).read(0, std::span(&out[at], width));
        return out;
    }
    void write_data(const std::vector<uint8_t>& data, unsigned width = 2, unsigned ch = 0) {
        for (size_t at = 0; at < data.size(); at += width)
            cmd(ch).write(0, std::span(&data[at], width));
    }

    // PIO data-in: for each DRQ block, wait for it, read it.
    std::vector<uint8_t> pio_in(uint64_t sectors, uint64_t block = 1, unsigned ch = 0) {
        std::vector<uint8_t> out;
        for (uint64_t done = 0; done < sectors;) {
            settle(ch);
            uint8_t st = status(ch);
            EXPECT_EQ(st & (ata::kStatusDrq | ata::kStatusErr), ata::kStatusDrq)
                << "sector " << done;
            if (!(st & ata::kStatusDrq)) break;
            uint64_t n = std::min(block, sectors - done);
            auto part = read_data(n * 512, 2, ch);
            out.insert(out.end(), part.begin(), part.end());
            done += n;
        }
        return out;
    }
    // PIO data-out, one DRQ block at a time.
    void pio_out(const std::vector<uint8_t>& data, uint64_t block = 1, unsigned ch = 0) {
        for (size_t at = 0; at < data.size();) {
            settle(ch);
            ASSERT_TRUE(status(ch) & ata::kStatusDrq) << "no DRQ at byte " << at;
            size_t n = std::min<size_t>(block * 512, data.size() - at);
            write_data(std::vector<uint8_t>(data.begin() + at, data.begin() + at + n), 2, ch);
            at += n;
        }
        settle(ch);
    }

    // Bus master: BAR 4 registers of channel `ch`.
    uint8_t bm_status(unsigned ch = 0) {
        uint8_t v = 0;
        dev->bar_read(4, ch * 8 + ide::kBmStatus, std::span(&v, 1));
        return v;
    }
    void bm_write8(unsigned off, uint8_t v, unsigned ch = 0) {
        dev->bar_write(4, ch * 8 + off, std::span(&v, 1));
    }
    void bm_set_prd(uint32_t addr, unsigned ch = 0) {
        std::array<uint8_t, 4> b{static_cast<uint8_t>(addr), static_cast<uint8_t>(addr >> 8),
                                 static_cast<uint8_t>(addr >> 16),
                                 static_cast<uint8_t>(addr >> 24)};
        dev->bar_write(4, ch * 8 + ide::kBmPrdTable, b);
    }
    void enable_bus_master() {
        uint16_t v = kPciCommandIo | kPciCommandBusMaster;
        std::array<uint8_t, 2> b{static_cast<uint8_t>(v), static_cast<uint8_t>(v >> 8)};
        dev->config_write(pci_reg::kCommand, b);
    }
    void write_prd(uint64_t table, std::vector<ide::PrdEntry> entries) {
        for (size_t i = 0; i < entries.size(); ++i)
            ASSERT_TRUE(memory.write_obj(GuestAddress(table + 8 * i), entries[i]));
    }
    std::vector<uint8_t> guest_bytes(uint64_t addr, size_t len) {
        std::vector<uint8_t> out(len);
        EXPECT_TRUE(memory.read(GuestAddress(addr), out));
        return out;
    }

    GuestMemory memory = make_ide_memory(kMemSize);
    std::array<std::shared_ptr<RecordingIrqLine>, 2> irq{std::make_shared<RecordingIrqLine>(),
                                                         std::make_shared<RecordingIrqLine>()};
    RecordingRegistrar events;
    std::array<std::optional<TempImage>, 4> images;
    NsClock clock_ns;  // the rate limiters' (empty: CLOCK_MONOTONIC)
    std::shared_ptr<PiixIde> dev;
};

class IdeTest : public testing::Test, public IdeRig {};

}  // namespace rv::test
