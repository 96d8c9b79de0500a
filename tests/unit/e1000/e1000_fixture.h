// An e1000 over plain guest memory, a socketpair backend, a polling event
// registrar and a recording INTx line, with driver-side helpers: register
// access through BAR0/BAR1, descriptor rings laid out in guest memory, and
// Ethernet/IPv4/TCP frame builders with an independent checksum checker.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>

#include "devices/legacy/e1000/e1000.h"
#include "devices/legacy/e1000/e1000_regs.h"
#include "support/fake_net_backend.h"
#include "support/recording_irq_line.h"

namespace rv::test {

inline constexpr std::array<uint8_t, 6> kMac{0x52, 0x54, 0x00, 0xAB, 0xCD, 0xEF};
inline constexpr std::array<uint8_t, 6> kPeerMac{0x02, 0x00, 0x00, 0x00, 0x00, 0x01};

inline GuestMemory make_memory(uint64_t size) {
    GuestMemory::RegionSpec spec{GuestAddress(0), size};
    auto memory = GuestMemory::create(std::span(&spec, 1));
    if (!memory) throw std::runtime_error(memory.error().message());
    return std::move(*memory);
}

// ---- frames ---------------------------------------------------------------

inline void put16(std::vector<uint8_t>& f, size_t at, uint16_t v) {
    f[at] = static_cast<uint8_t>(v >> 8);
    f[at + 1] = static_cast<uint8_t>(v);
}
inline uint16_t get16(const std::vector<uint8_t>& f, size_t at) {
    return static_cast<uint16_t>((f[at] << 8) | f[at + 1]);
}
inline uint32_t get32(const std::vector<uint8_t>& f, size_t at) {
    return (uint32_t{get16(f, at)} << 16) | get16(f, at + 2);
}

// Plain ones'-complement sum, written separately from the device's.
inline uint32_t ref_sum(const std::vector<uint8_t>& f, size_t from, size_t to, uint32_t sum = 0) {
    for (size_t i = from; i < to; i += 2) {
        uint32_t hi = f[i];
        uint32_t lo = i + 1 < to ? f[i + 1] : 0;
        sum += (hi << 8) | lo;
    }
    return sum;
}
inline uint16_t ref_fold(uint32_t sum) {
    while (sum >> 16) sum = (sum & 0xFFFF) + (sum >> 16);
    return static_cast<uint16_t>(sum);
}

inline std::vector<uint8_t> eth_frame(std::array<uint8_t, 6> dst, size_t payload,
                                      uint16_t type = 0x0800, uint8_t seed = 1) {
    std::vector<uint8_t> f(14 + payload);
    std::copy(dst.begin(), dst.end(), f.begin());
    std::copy(kPeerMac.begin(), kPeerMac.end(), f.begin() + 6);
    put16(f, 12, type);
    for (size_t i = 0; i < payload; ++i) f[14 + i] = static_cast<uint8_t>(seed + i * 13);
    return f;
}

inline constexpr size_t kIpOff = 14;
inline constexpr size_t kTcpOff = 34;
inline constexpr size_t kTcpHdrEnd = 54;

// Ethernet + IPv4 + TCP with `payload` bytes, as Linux hands it to the
// e1000 for offload: IP checksum 0, TCP checksum holding the pseudo-header
// sum (with the TCP length unless for_tso, which leaves length 0).
inline std::vector<uint8_t> tcp_frame(size_t payload, uint32_t seq, uint8_t flags, bool for_tso) {
    std::vector<uint8_t> f = eth_frame(kPeerMac, 40 + payload);
    std::fill(f.begin() + kIpOff, f.begin() + kTcpHdrEnd, 0);
    f[kIpOff] = 0x45;
    put16(f, kIpOff + 2, for_tso ? 0 : static_cast<uint16_t>(40 + payload));
    put16(f, kIpOff + 4, 0x1234);  // id
    f[kIpOff + 8] = 64;
    f[kIpOff + 9] = 6;
    const uint8_t addrs[8] = {10, 0, 0, 1, 10, 0, 0, 2};
    std::memcpy(&f[kIpOff + 12], addrs, 8);
    put16(f, kTcpOff, 40000);
    put16(f, kTcpOff + 2, 80);
    put16(f, kTcpOff + 4, static_cast<uint16_t>(seq >> 16));
    put16(f, kTcpOff + 6, static_cast<uint16_t>(seq));
    f[kTcpOff + 12] = 5 << 4;
    f[kTcpOff + 13] = flags;
    put16(f, kTcpOff + 14, 65535);
    uint32_t pseudo = ref_sum(f, kIpOff + 12, kIpOff + 20) + 6 + (for_tso ? 0 : 20 + payload);
    put16(f, kTcpOff + 16, ref_fold(pseudo));  // not complemented: a partial sum
    return f;
}

inline bool ipv4_checksum_ok(const std::vector<uint8_t>& f) {
    return ref_fold(ref_sum(f, kIpOff, kIpOff + 20)) == 0xFFFF;
}
inline bool tcp_checksum_ok(const std::vector<uint8_t>& f) {
    size_t tcp_len = f.size() - kTcpOff;
    uint32_t sum = ref_sum(f, kIpOff + 12, kIpOff + 20) + 6 + static_cast<uint32_t>(tcp_len);
    return ref_fold(ref_sum(f, kTcpOff, f.size(), sum)) == 0xFFFF;
}

// ---- the device -------------------------------------------------------------

class E1000Test : public ::testing::Test {
  protected:
    static constexpr uint64_t kMemSize = 4 << 20;
    static constexpr uint64_t kTxRing = 0x10000;
    static constexpr uint64_t kRxRing = 0x20000;
    static constexpr uint64_t kTxBuffers = 0x40000;
    static constexpr uint64_t kRxBuffers = 0x100000;
    static constexpr uint64_t kRxBufferStride = 0x4000;

    E1000Test() : mem(make_memory(kMemSize)) { make_device({}); }

    // (Re)creates the device, with a fresh backend, and the given hook for
    // applying posted writes (E1000Config::flush_posted).
    void make_device(std::function<void()> flush_posted) {
        dev.reset();  // off the registrar before the new one registers
        auto [backend, p] = FakeNetBackend::create();
        peer = p;
        E1000Config config{.mac = kMac,
                           .clock_ns = [c = clock] { return c->load(); },
                           .flush_posted = std::move(flush_posted)};
        auto created = E1000::create(mem, std::move(backend), config, events);
        if (!created) throw std::runtime_error(created.error().message());
        dev = std::move(*created);
        dev->assign_intx(irq);
    }

    void write32(uint32_t offset, uint32_t value) {
        std::array<uint8_t, 4> b{};
        store_le(b, value);
        dev->bar_write(e1000::kMmioBar, offset, b);
    }
    uint32_t read32(uint32_t offset) {
        std::array<uint8_t, 4> b{};
        dev->bar_read(e1000::kMmioBar, offset, b);
        return load_le(b);
    }
    void io_write32(uint32_t offset, uint32_t value) {
        std::array<uint8_t, 4> b{};
        store_le(b, value);
        dev->bar_write(e1000::kIoBar, offset, b);
    }
    uint32_t io_read32(uint32_t offset) {
        std::array<uint8_t, 4> b{};
        dev->bar_read(e1000::kIoBar, offset, b);
        return load_le(b);
    }

    void poke(uint64_t addr, std::span<const uint8_t> bytes) {
        ASSERT_TRUE(mem.write(GuestAddress(addr), bytes));
    }
    std::vector<uint8_t> peek(uint64_t addr, size_t len) {
        std::vector<uint8_t> out(len);
        EXPECT_TRUE(mem.read(GuestAddress(addr), out));
        return out;
    }

    // ---- TX ring ----
    void setup_tx(uint32_t count, uint32_t head = 0) {
        write32(e1000::reg::kTdbal, static_cast<uint32_t>(kTxRing));
        write32(e1000::reg::kTdbah, 0);
        write32(e1000::reg::kTdlen, count * 16);
        write32(e1000::reg::kTdh, head);
        write32(e1000::reg::kTdt, head);
        write32(e1000::reg::kTctl, e1000::kTctlEn | e1000::kTctlPsp);
        tx_count = count;
        tx_tail = head;
    }
    // Writes a descriptor at the tail (raw bytes) and returns its index.
    uint32_t put_tx(const std::array<uint8_t, 16>& desc) {
        uint32_t index = tx_tail;
        poke(kTxRing + 16ull * index, desc);
        tx_tail = (tx_tail + 1) % tx_count;
        return index;
    }
    // Copies data into the TX buffer area; returns its guest address.
    uint64_t tx_data(std::span<const uint8_t> bytes) {
        uint64_t addr = kTxBuffers + tx_data_used;
        poke(addr, bytes);
        tx_data_used += (bytes.size() + 15) & ~size_t{15};
        return addr;
    }
    static std::array<uint8_t, 16> legacy_desc(uint64_t addr, uint16_t len, uint8_t cmd,
                                               uint8_t cso = 0, uint8_t css = 0) {
        std::array<uint8_t, 16> d{};
        for (int i = 0; i < 8; ++i) d[i] = static_cast<uint8_t>(addr >> (8 * i));
        d[8] = static_cast<uint8_t>(len);
        d[9] = static_cast<uint8_t>(len >> 8);
        d[10] = cso;
        d[11] = cmd;
        d[13] = css;
        return d;
    }
    static std::array<uint8_t, 16> data_desc(uint64_t addr, uint32_t len, uint8_t dcmd,
                                             uint8_t popts) {
        std::array<uint8_t, 16> d{};
        for (int i = 0; i < 8; ++i) d[i] = static_cast<uint8_t>(addr >> (8 * i));
        uint32_t dword = (len & 0xFFFFF) | (e1000::kTxDtypData << 20) |
                         (uint32_t{static_cast<uint8_t>(dcmd | e1000::kTxCmdDext)} << 24);
        store_le(std::span(d).subspan(8, 4), dword);
        d[13] = popts;
        return d;
    }
    static std::array<uint8_t, 16> context_desc(const e1000::TxContext& c) {
        std::array<uint8_t, 16> d{};
        d[0] = c.ipcss;
        d[1] = c.ipcso;
        store_le(std::span(d).subspan(2, 2), c.ipcse);
        d[4] = c.tucss;
        d[5] = c.tucso;
        store_le(std::span(d).subspan(6, 2), c.tucse);
        uint32_t dword = (c.paylen & 0xFFFFF) |
                         (uint32_t{static_cast<uint8_t>(c.tucmd | e1000::kTxCmdDext)} << 24);
        store_le(std::span(d).subspan(8, 4), dword);
        d[13] = c.hdr_len;
        store_le(std::span(d).subspan(14, 2), c.mss);
        return d;
    }
    void kick_tx() { write32(e1000::reg::kTdt, tx_tail); }
    uint8_t tx_status(uint32_t index) { return peek(kTxRing + 16ull * index + 12, 1)[0]; }
    // The virtio-net header in front of a sent frame, decoded.
    struct SentHdr {
        uint8_t flags, gso_type;
        uint16_t hdr_len, gso_size, csum_start, csum_offset, num_buffers;
    };
    struct Sent {
        SentHdr hdr;
        std::vector<uint8_t> frame;
    };
    std::vector<Sent> sent_packets() {
        std::vector<Sent> out;
        for (auto& p : peer->receive_all()) {
            EXPECT_GE(p.size(), 12u);
            if (p.size() < 12) continue;
            auto u16 = [&](size_t at) { return static_cast<uint16_t>(p[at] | (p[at + 1] << 8)); };
            out.push_back(Sent{{p[0], p[1], u16(2), u16(4), u16(6), u16(8), u16(10)},
                               std::vector<uint8_t>(p.begin() + 12, p.end())});
        }
        return out;
    }
    // Frames the device sent without any offload: the 12-byte virtio-net
    // header must be all zeros.
    std::vector<std::vector<uint8_t>> sent_frames() {
        std::vector<std::vector<uint8_t>> out;
        for (auto& s : sent_packets()) {
            EXPECT_EQ(s.hdr.flags | s.hdr.gso_type | s.hdr.hdr_len | s.hdr.gso_size |
                          s.hdr.csum_start | s.hdr.csum_offset | s.hdr.num_buffers,
                      0);
            out.push_back(std::move(s.frame));
        }
        return out;
    }

    // ---- RX ring ----
    // A ring of `count` descriptors, buffer i at kRxBuffers + i * stride;
    // gives the device `give` of them (RDT = give).
    void setup_rx(uint32_t count, uint32_t give, uint32_t rctl_extra = 0) {
        for (uint32_t i = 0; i < count; ++i) {
            std::array<uint8_t, 16> d{};
            store_le(std::span(d).first(8), kRxBuffers + i * kRxBufferStride);
            poke(kRxRing + 16ull * i, d);
        }
        write32(e1000::reg::kRdbal, static_cast<uint32_t>(kRxRing));
        write32(e1000::reg::kRdbah, 0);
        write32(e1000::reg::kRdlen, count * 16);
        write32(e1000::reg::kRdh, 0);
        write32(e1000::reg::kRdt, give);
        write32(e1000::reg::kRctl, e1000::kRctlEn | e1000::kRctlBam | rctl_extra);
    }
    struct RxDesc {
        uint16_t length;
        uint8_t status;
        uint8_t errors;
        uint16_t special;
    };
    RxDesc rx_desc(uint32_t index) {
        auto b = peek(kRxRing + 16ull * index + 8, 8);
        return RxDesc{static_cast<uint16_t>(b[0] | (b[1] << 8)), b[4], b[5],
                      static_cast<uint16_t>(b[6] | (b[7] << 8))};
    }
    std::vector<uint8_t> rx_buffer(uint32_t index, size_t len) {
        return peek(kRxBuffers + index * kRxBufferStride, len);
    }
    // Queues a frame behind a zeroed virtio-net header.
    void inject(const std::vector<uint8_t>& frame) {
        std::vector<uint8_t> p(12, 0);
        p.insert(p.end(), frame.begin(), frame.end());
        ASSERT_TRUE(peer->send(p));
    }

    std::shared_ptr<std::atomic<uint64_t>> clock =
        std::make_shared<std::atomic<uint64_t>>(1'000'000);
    GuestMemory mem;
    PollingRegistrar events;  // declared before dev: the device unregisters on destruction
    std::shared_ptr<FakeNetPeer> peer;
    std::shared_ptr<RecordingIrqLine> irq = std::make_shared<RecordingIrqLine>();
    std::shared_ptr<E1000> dev;
    uint32_t tx_count{0};
    uint32_t tx_tail{0};
    uint64_t tx_data_used{0};
};

}  // namespace rv::test
