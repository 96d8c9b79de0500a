// The coalesced MMIO ring consumer over a plain page laid out as KVM's:
// order, wrap-around, slot release, hostile lengths and indexes, and
// dispatch to the right bus.
#include "kvm/coalesced_ring.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "vmm/vcpu.h"

namespace rv::test {
namespace {

// The producer side, written from linux/kvm.h's layout rather than the
// consumer's code: a 4 KiB page, {first, last}, then 24-byte entries.
class FakeKvmRing {
  public:
    static constexpr uint32_t kCapacity = (4096 - 8) / 24;

    uint32_t first() const { return load(0); }
    uint32_t last() const { return load(4); }
    void set_first(uint32_t v) { store(0, v); }
    void set_last(uint32_t v) { store(4, v); }

    // Appends one write the way KVM does (entry, then `last`).
    void push(uint64_t addr, std::vector<uint8_t> data, bool pio = false, uint32_t len = 0) {
        uint32_t at = last();
        uint8_t* e = page.data() + 8 + 24 * at;
        std::memcpy(e, &addr, 8);
        uint32_t l = len ? len : static_cast<uint32_t>(data.size());
        std::memcpy(e + 8, &l, 4);
        uint32_t p = pio ? 1 : 0;
        std::memcpy(e + 12, &p, 4);
        std::memset(e + 16, 0, 8);
        std::memcpy(e + 16, data.data(), std::min<size_t>(data.size(), 8));
        set_last((at + 1) % kCapacity);
    }

    std::vector<uint8_t> page = std::vector<uint8_t>(4096, 0);

  private:
    uint32_t load(size_t at) const {
        uint32_t v;
        std::memcpy(&v, page.data() + at, 4);
        return v;
    }
    void store(size_t at, uint32_t v) { std::memcpy(page.data() + at, &v, 4); }
};

struct Applied {
    uint64_t address;
    std::vector<uint8_t> data;
    bool pio;
    bool operator==(const Applied&) const = default;
};

std::vector<Applied> drain_all(kvm::CoalescedRing& ring) {
    std::vector<Applied> out;
    ring.drain([&](const kvm::CoalescedRing::Write& w) {
        out.push_back({w.address, {w.data.begin(), w.data.end()}, w.pio});
    });
    return out;
}

TEST(CoalescedRing, EmptyRingAppliesNothing) {
    FakeKvmRing kvm;
    kvm::CoalescedRing ring(kvm.page);
    EXPECT_EQ(ring.capacity(), FakeKvmRing::kCapacity);
    EXPECT_FALSE(ring.pending());
    EXPECT_TRUE(drain_all(ring).empty());
    EXPECT_EQ(ring.drained(), 0u);
}

TEST(CoalescedRing, AppliesInOrderAndFreesTheSlots) {
    FakeKvmRing kvm;
    kvm::CoalescedRing ring(kvm.page);
    kvm.push(0xfebc2818, {0x10, 0, 0, 0});
    kvm.push(0xfebc2818, {0x20, 0, 0, 0});
    kvm.push(0x3f8, {0x41}, true);
    EXPECT_TRUE(ring.pending());
    auto got = drain_all(ring);
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0], (Applied{0xfebc2818, {0x10, 0, 0, 0}, false}));
    EXPECT_EQ(got[1], (Applied{0xfebc2818, {0x20, 0, 0, 0}, false}));
    EXPECT_EQ(got[2], (Applied{0x3f8, {0x41}, true}));
    EXPECT_EQ(kvm.first(), 3u);  // every slot handed back to KVM
    EXPECT_FALSE(ring.pending());
    EXPECT_EQ(ring.drained(), 3u);
    EXPECT_TRUE(drain_all(ring).empty());  // nothing applied twice
}

TEST(CoalescedRing, WrapsAroundTheEnd) {
    FakeKvmRing kvm;
    const uint32_t start = FakeKvmRing::kCapacity - 2;
    kvm.set_first(start);
    kvm.set_last(start);
    kvm::CoalescedRing ring(kvm.page);
    for (uint8_t i = 0; i < 5; ++i) kvm.push(0x1000 + i, {i});
    EXPECT_EQ(kvm.last(), 3u);
    auto got = drain_all(ring);
    ASSERT_EQ(got.size(), 5u);
    for (uint8_t i = 0; i < 5; ++i) EXPECT_EQ(got[i], (Applied{0x1000u + i, {i}, false}));
    EXPECT_EQ(kvm.first(), 3u);
}

TEST(CoalescedRing, ClampsLengthAndSurvivesBadIndexes) {
    FakeKvmRing kvm;
    kvm::CoalescedRing ring(kvm.page);
    kvm.push(0x2000, {1, 2, 3, 4, 5, 6, 7, 8}, false, 4096);  // len past data[8]
    auto got = drain_all(ring);
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].data.size(), 8u);
    // Indexes outside the page: nothing is read from beyond it.
    kvm.set_last(FakeKvmRing::kCapacity + 7);
    EXPECT_TRUE(drain_all(ring).empty());
    kvm.set_first(5000);
    kvm.set_last(2);
    EXPECT_TRUE(drain_all(ring).empty());
    EXPECT_EQ(kvm.first(), 2u);  // resynchronised with KVM's index
}

class Recorder : public BusDevice {
  public:
    std::string_view name() const override { return "recorder"; }
    void read(uint64_t, std::span<uint8_t> data) override {
        std::fill(data.begin(), data.end(), 0);
    }
    void write(uint64_t offset, std::span<const uint8_t> data) override {
        writes.push_back({offset, {data.begin(), data.end()}, false});
    }
    std::vector<Applied> writes;
};

TEST(CoalescedRing, PostedWritesReachTheirBus) {
    FakeKvmRing kvm;
    kvm::CoalescedRing ring(kvm.page);
    PioBus pio;
    MmioBus mmio;
    auto port = std::make_shared<Recorder>();
    auto regs = std::make_shared<Recorder>();
    ASSERT_TRUE(pio.insert(port, PioAddress(0x2818), 4));
    ASSERT_TRUE(mmio.insert(regs, MmioAddress(0xfeb00000), 0x20000));
    kvm.push(0xfeb02818, {7, 0, 0, 0});
    kvm.push(0x2818, {9}, true);  // same number, port space
    kvm.push(0xfeb02818, {8, 0});
    EXPECT_EQ(apply_posted_writes(ring, pio, mmio), 3u);
    EXPECT_EQ(regs->writes,
              (std::vector<Applied>{{0x2818, {7, 0, 0, 0}, false}, {0x2818, {8, 0}, false}}));
    EXPECT_EQ(port->writes, (std::vector<Applied>{{0, {9}, false}}));
}

}  // namespace
}  // namespace rv::test
