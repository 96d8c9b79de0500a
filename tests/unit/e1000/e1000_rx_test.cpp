// Receive: ring fill with wrap-around, frames spanning descriptors, a full
// ring stopping and resuming, address filtering, VLAN stripping.
#include "devices/legacy/e1000/rx.h"

#include <sys/timerfd.h>

#include <optional>
#include <utility>

#include "support/device_counters.h"
#include "unit/e1000/e1000_fixture.h"

namespace rv::test {
namespace {

using namespace e1000;

// What the guest should find in its buffers: the frame, padded to 60, and
// the FCS (CRC-32, least significant byte first).
std::vector<uint8_t> with_fcs(std::vector<uint8_t> frame) {
    if (frame.size() < 60) frame.resize(60, 0);
    uint32_t crc = 0xFFFFFFFF;
    for (uint8_t b : frame) {
        crc ^= b;
        for (int k = 0; k < 8; ++k) crc = (crc & 1) ? (crc >> 1) ^ 0xEDB88320u : crc >> 1;
    }
    crc = ~crc;
    for (int i = 0; i < 4; ++i) frame.push_back(static_cast<uint8_t>(crc >> (8 * i)));
    return frame;
}

TEST_F(E1000Test, RxRegistersOnlyWhenEnabledWithDescriptors) {
    const int fd = peer->device_end.get();
    EXPECT_FALSE(events.registered(fd));
    setup_rx(8, 0);  // enabled, but no descriptors given
    EXPECT_FALSE(events.registered(fd));
    write32(reg::kRdt, 4);
    EXPECT_TRUE(events.registered(fd));
    write32(reg::kRctl, 0);
    EXPECT_FALSE(events.registered(fd));
}

TEST_F(E1000Test, RxIntoRingWithWrapAround) {
    setup_rx(8, 7);
    write32(reg::kIms, kIntRxt0);
    std::vector<std::vector<uint8_t>> frames;
    for (int i = 0; i < 5; ++i) {
        frames.push_back(eth_frame(kMac, 100 + i, 0x0800, static_cast<uint8_t>(i)));
        inject(frames.back());
    }
    events.run_until_idle();
    EXPECT_EQ(read32(reg::kRdh), 5u);
    EXPECT_TRUE(irq->level());
    EXPECT_TRUE(read32(reg::kIcr) & kIntRxt0);
    for (uint32_t i = 0; i < 5; ++i) {
        auto d = rx_desc(i);
        auto want = with_fcs(frames[i]);
        EXPECT_EQ(d.status, kRxStaDd | kRxStaEop | kRxStaIxsm);
        EXPECT_EQ(d.errors, 0);
        ASSERT_EQ(d.length, want.size());
        EXPECT_EQ(rx_buffer(i, want.size()), want);
    }
    // The driver recycles 0..4 and sets RDT = 4 (the ring wraps: head 5..7, 0..3).
    for (uint32_t i = 0; i < 8; ++i) {
        std::array<uint8_t, 16> d{};
        store_le(std::span(d).first(8), kRxBuffers + i * kRxBufferStride);
        poke(kRxRing + 16ull * i, d);
    }
    write32(reg::kRdt, 4);
    for (int i = 0; i < 6; ++i) inject(eth_frame(kMac, 200, 0x0800, static_cast<uint8_t>(50 + i)));
    events.run_until_idle();
    EXPECT_EQ(read32(reg::kRdh), 3u);  // 5, 6, 7, 0, 1, 2
    for (uint32_t i : {5u, 6u, 7u, 0u, 1u, 2u}) EXPECT_TRUE(rx_desc(i).status & kRxStaDd);
    EXPECT_FALSE(rx_desc(3).status & kRxStaDd);
    EXPECT_EQ(rx_buffer(0, 14 + 200), eth_frame(kMac, 200, 0x0800, 53));
    EXPECT_EQ(read32(stat::kGprc), 11u);
}

TEST_F(E1000Test, RxFrameSpansDescriptors) {
    setup_rx(8, 7, 3u << kRctlBsizeShift);  // 256-byte buffers
    auto frame = eth_frame(kMac, 586);      // 600 bytes + FCS = 604
    inject(frame);
    events.run_until_idle();
    auto want = with_fcs(frame);
    EXPECT_EQ(read32(reg::kRdh), 3u);
    EXPECT_EQ(rx_desc(0).length, 256);
    EXPECT_EQ(rx_desc(1).length, 256);
    EXPECT_EQ(rx_desc(2).length, 92);
    EXPECT_EQ(rx_desc(0).status, kRxStaDd | kRxStaIxsm);
    EXPECT_EQ(rx_desc(1).status, kRxStaDd | kRxStaIxsm);
    EXPECT_EQ(rx_desc(2).status, kRxStaDd | kRxStaIxsm | kRxStaEop);
    std::vector<uint8_t> got;
    for (uint32_t i = 0; i < 3; ++i) {
        auto part = rx_buffer(i, rx_desc(i).length);
        got.insert(got.end(), part.begin(), part.end());
    }
    EXPECT_EQ(got, want);
}

TEST_F(E1000Test, RxBufferSizes) {
    EXPECT_EQ(rx_buffer_size(0), 2048u);
    EXPECT_EQ(rx_buffer_size(1u << kRctlBsizeShift), 1024u);
    EXPECT_EQ(rx_buffer_size(2u << kRctlBsizeShift), 512u);
    EXPECT_EQ(rx_buffer_size(3u << kRctlBsizeShift), 256u);
    EXPECT_EQ(rx_buffer_size(kRctlBsex | (1u << kRctlBsizeShift)), 16384u);
    EXPECT_EQ(rx_buffer_size(kRctlBsex | (2u << kRctlBsizeShift)), 8192u);
    EXPECT_EQ(rx_buffer_size(kRctlBsex | (3u << kRctlBsizeShift)), 4096u);
}

TEST_F(E1000Test, RxFullRingStopsAndResumesOnRdtWrite) {
    const int fd = peer->device_end.get();
    setup_rx(8, 3);
    write32(reg::kIms, kIntRxt0 | kIntRxdmt0);
    for (int i = 0; i < 5; ++i) inject(eth_frame(kMac, 100, 0x0800, static_cast<uint8_t>(i)));
    events.run_until_idle();
    EXPECT_EQ(read32(reg::kRdh), 3u);
    EXPECT_FALSE(events.registered(fd));   // nothing more to give: stopped polling
    EXPECT_TRUE(peer->device_readable());  // the rest waits in the backend
    EXPECT_EQ(read32(reg::kIcr), kIntRxt0 | kIntRxdmt0);
    EXPECT_EQ(dev->stats().rx_packets, 3u);
    // --stats shows why nothing moves: ring full, not polling the tap.
    auto counter = [&](std::string_view name) { return test::counter(dev->counters(), name); };
    EXPECT_EQ(counter("rx_packets"), 3u);
    EXPECT_EQ(counter("rdh"), 3u);
    EXPECT_EQ(counter("rdt"), 3u);
    EXPECT_EQ(counter("rx_polling"), 0u);
    EXPECT_EQ(counter("ims"), kIntRxt0 | kIntRxdmt0);
    EXPECT_EQ(counter("irq_level"), 0u);  // the ICR read above acknowledged it
    EXPECT_EQ(counter("icr"), 0u);
    // The guest gives two more descriptors: the RDT write itself takes both
    // waiting frames from the backend, and with the ring full again the fd
    // stays unregistered.
    write32(reg::kRdt, 5);
    EXPECT_EQ(read32(reg::kRdh), 5u);
    EXPECT_FALSE(events.registered(fd));
    EXPECT_FALSE(peer->device_readable());
    EXPECT_EQ(rx_buffer(4, 114), eth_frame(kMac, 100, 0x0800, 4));
    EXPECT_EQ(dev->stats().rx_packets, 5u);
    EXPECT_EQ(counter("rx_packets"), 5u);
    EXPECT_EQ(counter("rx_polling"), 0u);  // full again
    // Room and an empty backend: now the event loop watches the fd.
    write32(reg::kRdt, 7);
    EXPECT_TRUE(events.registered(fd));
    inject(eth_frame(kMac, 100, 0x0800, 9));
    events.run_until_idle();
    EXPECT_EQ(read32(reg::kRdh), 6u);
    EXPECT_EQ(rx_buffer(5, 114), eth_frame(kMac, 100, 0x0800, 9));
}

TEST_F(E1000Test, RxFrameHeldBackUntilEnoughDescriptors) {
    const int fd = peer->device_end.get();
    setup_rx(8, 1, 3u << kRctlBsizeShift);  // one 256-byte buffer
    inject(eth_frame(kMac, 586));           // needs three
    events.run_until_idle();
    EXPECT_EQ(read32(reg::kRdh), 0u);
    EXPECT_FALSE(events.registered(fd));
    EXPECT_FALSE(peer->device_readable());  // taken, and held by the device
    write32(reg::kRdt, 2);
    EXPECT_EQ(read32(reg::kRdh), 0u);  // still one short
    write32(reg::kRdt, 3);             // delivered on the vCPU's RDT write
    EXPECT_EQ(read32(reg::kRdh), 3u);
    EXPECT_TRUE(rx_desc(2).status & kRxStaEop);
    EXPECT_FALSE(events.registered(fd));  // ring is empty again
}

TEST_F(E1000Test, RxFilters) {
    setup_rx(32, 31, 0);
    setup_rx(32, 31, 0);
    auto run = [&](const std::vector<uint8_t>& f) {
        uint32_t before = read32(reg::kRdh);
        inject(f);
        events.run_until_idle();
        return read32(reg::kRdh) != before;
    };
    const std::array<uint8_t, 6> other{0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
    const std::array<uint8_t, 6> bcast{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
    const std::array<uint8_t, 6> mcast{0x01, 0x00, 0x5E, 0x00, 0x00, 0xFB};
    EXPECT_TRUE(run(eth_frame(kMac, 50)));
    EXPECT_FALSE(run(eth_frame(other, 50)));
    EXPECT_TRUE(run(eth_frame(bcast, 50)));  // BAM set by setup_rx
    write32(reg::kRctl, kRctlEn);
    EXPECT_FALSE(run(eth_frame(bcast, 50)));
    EXPECT_FALSE(run(eth_frame(mcast, 50)));
    // Multicast table: filter type 0 hashes dst[4] >> 4 | dst[5] << 4.
    uint32_t hash = ((mcast[4] >> 4) | (uint32_t{mcast[5]} << 4)) & 0xFFF;
    write32(reg::kMta + 4 * (hash >> 5), 1u << (hash & 31));
    EXPECT_TRUE(run(eth_frame(mcast, 50)));
    write32(reg::kMta + 4 * (hash >> 5), 0);
    EXPECT_FALSE(run(eth_frame(mcast, 50)));
    write32(reg::kRctl, kRctlEn | kRctlMpe);
    EXPECT_TRUE(run(eth_frame(mcast, 50)));
    EXPECT_FALSE(run(eth_frame(other, 50)));
    write32(reg::kRctl, kRctlEn | kRctlUpe);
    EXPECT_TRUE(run(eth_frame(other, 50)));
    // A second receive address entry.
    write32(reg::kRctl, kRctlEn);
    write32(reg::kRal0 + 8, 0x33221102);
    write32(reg::kRah0 + 8, 0x5544 | kRahAv);
    EXPECT_TRUE(run(eth_frame(other, 50)));
    write32(reg::kRah0 + 8, 0x5544);  // not valid any more
    EXPECT_FALSE(run(eth_frame(other, 50)));
    // Our own address stops matching when the guest clears AV.
    write32(reg::kRah0, read32(reg::kRah0) & ~kRahAv);
    EXPECT_FALSE(run(eth_frame(kMac, 50)));
    EXPECT_GE(dev->stats().rx_filtered, 7u);
}

TEST_F(E1000Test, RxVlanStripAndFilter) {
    setup_rx(8, 7);
    write32(reg::kCtrl, read32(reg::kCtrl) | kCtrlVme);
    auto tagged = eth_frame(kMac, 104, 0x8100);
    put16(tagged, 14, 0x2007);  // priority 1, VLAN 7
    put16(tagged, 16, 0x0800);
    inject(tagged);
    events.run_until_idle();
    auto d = rx_desc(0);
    EXPECT_TRUE(d.status & kRxStaVp);
    EXPECT_EQ(d.special, 0x2007);
    auto untagged = tagged;
    untagged.erase(untagged.begin() + 12, untagged.begin() + 16);
    EXPECT_EQ(d.length, with_fcs(untagged).size());
    EXPECT_EQ(rx_buffer(0, untagged.size()), untagged);
    // With the VLAN filter on, VLAN 7 must be in the table.
    write32(reg::kRctl, read32(reg::kRctl) | kRctlVfe);
    inject(tagged);
    events.run_until_idle();
    EXPECT_EQ(read32(reg::kRdh), 1u);
    write32(reg::kVfta, 1u << 7);
    inject(tagged);
    events.run_until_idle();
    EXPECT_EQ(read32(reg::kRdh), 2u);
}

TEST_F(E1000Test, RxStripCrcAndLongFrames) {
    setup_rx(8, 7, kRctlSecrc);
    auto frame = eth_frame(kMac, 100);
    inject(frame);
    events.run_until_idle();
    EXPECT_EQ(rx_desc(0).length, frame.size());
    // 2000 bytes without RCTL.LPE: dropped as oversize.
    inject(eth_frame(kMac, 2000));
    events.run_until_idle();
    EXPECT_EQ(read32(reg::kRdh), 1u);
    EXPECT_EQ(read32(stat::kRoc), 1u);
    write32(reg::kRctl, read32(reg::kRctl) | kRctlLpe);
    inject(eth_frame(kMac, 2000));
    events.run_until_idle();
    EXPECT_EQ(read32(reg::kRdh), 2u);  // 2014 bytes: one 2 KiB buffer (no FCS)
    // Without SECRC the FCS makes it 2018... still one buffer; 2040 + 4 is
    // one, 2050 + 4 two.
    write32(reg::kRctl, read32(reg::kRctl) & ~kRctlSecrc);
    inject(eth_frame(kMac, 2032));  // 2046 + FCS = 2050
    events.run_until_idle();
    EXPECT_EQ(read32(reg::kRdh), 4u);
    EXPECT_EQ(rx_desc(3).length, 2);
    EXPECT_TRUE(rx_desc(3).status & kRxStaEop);
}

TEST_F(E1000Test, RxHostileRing) {
    const int fd = peer->device_end.get();
    // Buffers outside RAM: the descriptor completes with an error.
    std::array<uint8_t, 16> d{};
    store_le(std::span(d).first(8), 0xFFFFFFFFF000ull);
    poke(kRxRing, d);
    write32(reg::kRdbal, static_cast<uint32_t>(kRxRing));
    write32(reg::kRdlen, 128);
    write32(reg::kRdt, 1);
    write32(reg::kRctl, kRctlEn);
    inject(eth_frame(kMac, 100));
    events.run_until_idle();
    EXPECT_EQ(rx_desc(0).errors, kRxErrRxe);
    EXPECT_TRUE(rx_desc(0).status & kRxStaDd);
    // A ring outside RAM, a bad length, RDT past the ring: never polled.
    write32(reg::kRdbal, 0xFFFFF000);
    EXPECT_FALSE(events.registered(fd));
    write32(reg::kRdbal, static_cast<uint32_t>(kRxRing));
    write32(reg::kRdlen, 100);
    EXPECT_FALSE(events.registered(fd));
    write32(reg::kRdlen, 128);
    write32(reg::kRdt, 9);
    EXPECT_FALSE(events.registered(fd));
    write32(reg::kRdt, 0x1234);
    EXPECT_FALSE(events.registered(fd));
    // Runt packets (shorter than the virtio-net header or an Ethernet
    // header) are dropped.
    write32(reg::kRdh, 0);
    write32(reg::kRdt, 7);
    ASSERT_TRUE(peer->send({1, 2, 3}));
    ASSERT_TRUE(peer->send(std::vector<uint8_t>(20, 0)));
    events.run_until_idle();
    EXPECT_EQ(read32(reg::kRdh), 0u);
    EXPECT_FALSE(peer->device_readable());
}

TEST_F(E1000Test, ResetDropsTheHeldPacketAndStopsPolling) {
    const int fd = peer->device_end.get();
    setup_rx(8, 1, 3u << kRctlBsizeShift);
    inject(eth_frame(kMac, 586));
    events.run_until_idle();
    write32(reg::kCtrl, kCtrlRst);
    EXPECT_FALSE(events.registered(fd));
    EXPECT_EQ(dev->stats().rx_dropped, 1u);
    setup_rx(8, 7);
    EXPECT_TRUE(events.registered(fd));
    events.run_until_idle();
    EXPECT_EQ(read32(reg::kRdh), 0u);  // the held packet did not survive
}

// RDT may be posted only with a flush hook. While receive is starved of
// descriptors the device asks for the posted writes itself, and asks less
// often while the guest does not refill.
TEST_F(E1000Test, PostedRdtWritesAreFetchedWhileStarved) {
    EXPECT_TRUE(dev->posted_write_ranges(kMmioBar).empty());  // no hook: never posted
    std::optional<uint32_t> posted;  // an RDT write the VMM is still holding
    int flushes = 0;
    make_device([&] {
        ++flushes;
        if (posted) write32(reg::kRdt, *std::exchange(posted, std::nullopt));
    });
    auto ranges = dev->posted_write_ranges(kMmioBar);
    ASSERT_EQ(ranges.size(), 1u);
    EXPECT_EQ(ranges[0].offset, reg::kRdt);
    EXPECT_EQ(ranges[0].size, 4u);
    EXPECT_TRUE(dev->posted_write_ranges(kIoBar).empty());
    auto counter = [&](std::string_view name) { return test::counter(dev->counters(), name); };

    const int fd = peer->device_end.get();
    setup_rx(8, 2);
    EXPECT_EQ(counter("rx_retry_armed"), 0u);  // room: nothing to ask for
    for (int i = 0; i < 4; ++i) inject(eth_frame(kMac, 100, 0x0800, static_cast<uint8_t>(i)));
    events.run_until_idle();
    EXPECT_EQ(read32(reg::kRdh), 2u);
    EXPECT_FALSE(events.registered(fd));
    EXPECT_EQ(counter("rx_retry_armed"), 1u);  // starved: the retry timer runs

    // The guest refilled, but the RDT write sits among the posted writes:
    // the retry applies it and the waiting frames go in.
    posted = 5;
    dev->on_rx_retry_timer();
    EXPECT_GE(flushes, 1);
    EXPECT_FALSE(posted);
    EXPECT_EQ(read32(reg::kRdh), 4u);
    EXPECT_EQ(rx_buffer(3, 114), eth_frame(kMac, 100, 0x0800, 3));
    EXPECT_TRUE(events.registered(fd));  // room and an empty tap: polling again
    EXPECT_EQ(counter("rx_retry_armed"), 0u);

    // Starved again with a guest that does not refill: the interval doubles.
    for (int i = 4; i < 7; ++i) inject(eth_frame(kMac, 100, 0x0800, static_cast<uint8_t>(i)));
    events.run_until_idle();
    EXPECT_EQ(read32(reg::kRdh), 5u);
    EXPECT_EQ(counter("rx_retry_armed"), 1u);
    auto next_ns = [&] {
        itimerspec spec{};
        EXPECT_EQ(::timerfd_gettime(dev->rx_retry_timer_fd(), &spec), 0);
        return uint64_t(spec.it_value.tv_sec) * 1'000'000'000ull + uint64_t(spec.it_value.tv_nsec);
    };
    EXPECT_LE(next_ns(), 1'000'000u);
    dev->on_rx_retry_timer();
    EXPECT_GT(next_ns(), 1'000'000u);
    EXPECT_LE(next_ns(), 2'000'000u);
    dev->on_rx_retry_timer();
    EXPECT_GT(next_ns(), 2'000'000u);
    EXPECT_EQ(read32(reg::kRdh), 5u);
    EXPECT_GE(counter("rx_retries"), 3u);
    // Receive off: not starved, nothing asked for.
    write32(reg::kRctl, 0);
    dev->on_rx_retry_timer();
    EXPECT_EQ(counter("rx_retry_armed"), 0u);
}

}  // namespace
}  // namespace rv::test
