// The virtio PCI transport's snapshot State: save -> bytes -> restore into a
// new transport over the same guest memory -> save is identical; the
// restored device is re-activated at the saved ring positions (the next
// chain it takes is the one after the original's last), gets a kick per
// enabled queue, and the guest reads the same registers. Impossible states
// are refused before anything changes.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/epoll.h>

#include <array>
#include <map>

#include "devices/virtio/common_cfg_layout.h"
#include "devices/virtio/pci_transport.h"
#include "support/fake_driver_queue.h"
#include "support/fake_msi_router.h"
#include "support/epoll_registrar.h"
#include "support/recording_irq_line.h"

namespace rv::virtio {
namespace {

constexpr uint64_t kFeatureA = 1ull << 5;

// Keeps the queues it is given, so a test can pop from them as a device would.
class QueueKeepingDevice final : public VirtioDevice {
  public:
    std::string_view name() const override { return "fake-virtio"; }
    uint32_t device_type() const override { return kTypeConsole; }
    uint64_t device_features() const override { return kFeatureA | kFRingEventIdx; }
    std::vector<uint16_t> queue_max_sizes() const override { return {64, 64, 32}; }
    void read_config(uint64_t offset, std::span<uint8_t> data) override {
        for (size_t i = 0; i < data.size(); ++i)
            data[i] = offset + i < config.size() ? config[offset + i] : 0;
    }
    void write_config(uint64_t offset, std::span<const uint8_t> data) override {
        for (size_t i = 0; i < data.size(); ++i)
            if (offset + i < config.size()) config[offset + i] = data[i];
    }
    Result<void> activate(ActivateArgs args) override {
        ++activations;
        queues = std::move(args.queues);
        return {};
    }
    void reset() override { queues.clear(); }
    void queue_notify(uint16_t index) override { notified.push_back(index); }
    Result<void> quiesce() override {
        ++quiesced;
        return {};
    }
    std::vector<Queue::State> queue_states() const override {
        std::vector<Queue::State> out;
        for (const Queue& q : queues) out.push_back(q.save());
        return out;
    }
    std::vector<uint8_t> save_state() const override {
        return std::vector<uint8_t>(config.begin(), config.end());
    }
    Result<void> restore_state(std::span<const uint8_t> state) override {
        if (state.size() != config.size()) return input_error("fake: {} bytes", state.size());
        std::copy(state.begin(), state.end(), config.begin());
        return {};
    }

    std::array<uint8_t, 4> config{1, 2, 3, 4};
    std::vector<Queue> queues;
    std::vector<uint16_t> notified;
    int activations{0};
    int quiesced{0};
};

using test::EpollRegistrar;

// One transport with its device, as the guest drives it.
struct Side {
    Side(const GuestMemory& memory, test::FakeMsiRouter& router, EpollRegistrar& registrar) {
        auto r = VirtioPciTransport::create(dev, memory, router, registrar);
        EXPECT_TRUE(r) << r.error().message();
        t = *r;
        t->assign_intx(intx);
    }
    uint64_t bar(uint64_t off, size_t len) {
        std::array<uint8_t, 8> b{};
        t->bar_read(kPciBarIndex, off, std::span(b).first(len));
        return load_le(std::span(b).first(len));
    }
    void bar_w(uint64_t off, size_t len, uint64_t v) {
        std::array<uint8_t, 8> b{};
        store_le(std::span(b).first(len), v);
        t->bar_write(kPciBarIndex, off, std::span(b).first(len));
    }
    void cfg_w(uint16_t off, size_t len, uint32_t v) {
        std::array<uint8_t, 4> b{};
        store_le(std::span(b).first(len), v);
        t->config_write(off, std::span(b).first(len));
    }
    uint32_t cfg(uint16_t off, size_t len = 4) {
        std::array<uint8_t, 4> b{};
        t->config_read(off, std::span(b).first(len));
        return load_le(std::span(b).first(len));
    }
    uint16_t msix_cap() {
        for (uint8_t at = static_cast<uint8_t>(cfg(0x34, 1)); at != 0;
             at = static_cast<uint8_t>(cfg(at + 1, 1)))
            if (cfg(at, 1) == kPciCapIdMsix) return at;
        ADD_FAILURE() << "no MSI-X capability";
        return 0;
    }
    // Everything the guest can read in the common config, for each queue.
    std::vector<uint64_t> common_image() {
        std::vector<uint64_t> out;
        for (uint16_t q = 0; q < 3; ++q) {
            uint64_t select = bar(common::kQueueSelect, 2);
            bar_w(common::kQueueSelect, 2, q);
            for (uint64_t off = 0; off < common::kSize; off += 2) out.push_back(bar(off, 2));
            bar_w(common::kQueueSelect, 2, select);
        }
        return out;
    }

    std::shared_ptr<QueueKeepingDevice> dev = std::make_shared<QueueKeepingDevice>();
    std::shared_ptr<test::RecordingIrqLine> intx = std::make_shared<test::RecordingIrqLine>();
    std::shared_ptr<VirtioPciTransport> t;
};

struct TransportStateTest : ::testing::Test {
    GuestMemory memory = test::make_test_memory(1 << 20);
    test::FakeMsiRouter router;
    EpollRegistrar events;
    // The driver's rings for queues 0 and 2 (queue 1 stays disabled).
    test::FakeDriverQueue q0{memory, 64, GuestAddress(0x1000)};
    test::FakeDriverQueue q2{memory, 32, GuestAddress(0x40000)};

    void program(Side& s, uint16_t index, const test::FakeDriverQueue& q, uint16_t vector) {
        s.bar_w(common::kQueueSelect, 2, index);
        s.bar_w(common::kQueueSize, 2, q.size());
        s.bar_w(common::kQueueMsixVector, 2, vector);
        s.bar_w(common::kQueueDesc, 8, q.config().desc.value);
        s.bar_w(common::kQueueDriver, 8, q.config().avail.value);
        s.bar_w(common::kQueueDevice, 8, q.config().used.value);
        s.bar_w(common::kQueueEnable, 2, 1);
    }
    // A driver that brings the device up with MSI-X: queues 0 and 2 enabled.
    void bring_up(Side& s) {
        s.cfg_w(s.msix_cap() + 2, 2, kMsixControlEnable);
        for (uint16_t v = 0; v < 3; ++v) {
            uint64_t e = kPciMsixTableOffset + 16ull * v;
            s.bar_w(e, 4, 0xFEE0'0000 + 0x1000 * v);
            s.bar_w(e + 8, 4, 0x40 + v);
            s.bar_w(e + 12, 4, 0);
        }
        s.bar_w(common::kDeviceStatus, 1, kStatusAcknowledge | kStatusDriver);
        s.bar_w(common::kDriverFeatureSelect, 4, 0);
        s.bar_w(common::kDriverFeature, 4, kFeatureA | kFRingEventIdx);
        s.bar_w(common::kDriverFeatureSelect, 4, 1);
        s.bar_w(common::kDriverFeature, 4, kFVersion1 >> 32);
        s.bar_w(common::kDeviceStatus, 1, kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
        s.bar_w(common::kConfigMsixVector, 2, 0);
        program(s, 0, q0, 1);
        program(s, 2, q2, 2);
        s.bar_w(common::kQueueSelect, 2, 1);
        s.bar_w(common::kDeviceStatus, 1,
                kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
    }
    static VirtioPciTransport::State through_bytes(const VirtioPciTransport::State& s) {
        auto bytes = snapshot::encode(s);
        auto back = snapshot::decode<VirtioPciTransport::State>(bytes, "test");
        EXPECT_TRUE(back) << back.error().message();
        return back.value_or(VirtioPciTransport::State{});
    }
};

TEST_F(TransportStateTest, ActiveDeviceRoundTripsAndContinuesFromItsRingPositions) {
    Side a(memory, router, events);
    bring_up(a);
    ASSERT_EQ(a.dev->activations, 1);
    ASSERT_EQ(a.dev->queues.size(), 2u);
    // The device took and completed the first chain of queue 0; a second
    // is published but not taken yet.
    uint16_t first = q0.add_chain({{"one", false}});
    auto popped = a.dev->queues[0].pop(memory);
    ASSERT_TRUE(popped && *popped);
    EXPECT_EQ((*popped)->head, first);
    ASSERT_TRUE(a.dev->queues[0].add_used(memory, first, 0));
    uint16_t second = q0.add_chain({{"two", false}});
    a.dev->config = {9, 8, 7, 6};  // what the driver set in the device config

    auto saved = a.t->save();
    ASSERT_TRUE(saved) << saved.error().message();
    EXPECT_EQ(a.dev->quiesced, 1);
    ASSERT_EQ(saved->positions.size(), 2u);
    EXPECT_EQ(saved->positions[0].next_avail, 1);
    EXPECT_EQ(saved->positions[0].next_used, 1);

    Side b(memory, router, events);
    auto restored = b.t->restore(through_bytes(*saved));
    ASSERT_TRUE(restored) << restored.error().message();
    EXPECT_EQ(b.dev->activations, 1);
    EXPECT_EQ(b.dev->config, a.dev->config);
    auto again = b.t->save();
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, *saved);
    EXPECT_EQ(b.common_image(), a.common_image());
    EXPECT_EQ(b.cfg(b.msix_cap() + 2, 2), a.cfg(a.msix_cap() + 2, 2));

    // Each enabled queue is kicked once: the guest's last kick may not have
    // been served before the snapshot.
    events.pump();
    std::sort(b.dev->notified.begin(), b.dev->notified.end());
    EXPECT_EQ(b.dev->notified, (std::vector<uint16_t>{0, 2}));
    // The restored queue takes the second chain, not the first again, and
    // its used element goes in the next slot.
    ASSERT_EQ(b.dev->queues.size(), 2u);
    auto next = b.dev->queues[0].pop(memory);
    ASSERT_TRUE(next && *next);
    EXPECT_EQ((*next)->head, second);
    ASSERT_TRUE(b.dev->queues[0].add_used(memory, second, 0));
    EXPECT_EQ(q0.pop_used(), (test::UsedElem{first, 0}));
    EXPECT_EQ(q0.pop_used(), (test::UsedElem{second, 0}));
    // Interrupts go where the guest programmed them.
    b.t->signal_used_queue(2);
    ASSERT_FALSE(router.delivered().empty());
    EXPECT_EQ(router.delivered().back(), (MsiMessage{0xFEE0'2000, 0x42}));
}

TEST_F(TransportStateTest, InactiveDeviceRoundTripsWithoutActivating) {
    Side a(memory, router, events);
    a.bar_w(common::kDeviceStatus, 1, kStatusAcknowledge);
    program(a, 1, q0, kNoVector);  // programmed, no DRIVER_OK
    auto saved = a.t->save();
    ASSERT_TRUE(saved);
    EXPECT_EQ(a.dev->quiesced, 0);
    EXPECT_TRUE(saved->positions.empty());
    Side b(memory, router, events);
    ASSERT_TRUE(b.t->restore(through_bytes(*saved)));
    EXPECT_EQ(b.dev->activations, 0);
    EXPECT_EQ(b.common_image(), a.common_image());
    events.pump();
    EXPECT_TRUE(b.dev->notified.empty());
}

TEST_F(TransportStateTest, PendingIsrRaisesIntxAfterRestore) {
    Side a(memory, router, events);
    a.t->signal_config_change();  // MSI-X off: ISR + INTx
    ASSERT_TRUE(a.intx->level());
    auto saved = a.t->save();
    ASSERT_TRUE(saved);
    Side b(memory, router, events);
    ASSERT_TRUE(b.t->restore(*saved));
    EXPECT_TRUE(b.intx->level());
    EXPECT_EQ(b.bar(kPciIsrOffset, 1), kIsrConfig);
    EXPECT_FALSE(b.intx->level());
}

TEST_F(TransportStateTest, ImpossibleStatesAreRefusedBeforeAnythingChanges) {
    Side a(memory, router, events);
    bring_up(a);
    auto saved = a.t->save();
    ASSERT_TRUE(saved);
    int line = 0;
    auto refused = [&](auto mutate) {
        SCOPED_TRACE(++line);
        VirtioPciTransport::State s = *saved;
        mutate(s);
        Side b(memory, router, events);
        auto before = b.common_image();
        auto r = b.t->restore(s);
        EXPECT_FALSE(r);
        if (!r) {
            EXPECT_EQ(r.error().kind(), ErrorKind::InvalidInput) << r.error().message();
        }
        EXPECT_EQ(b.common_image(), before);
        EXPECT_EQ(b.dev->activations, 0);
    };
    refused([](auto& s) { s.queues.pop_back(); });
    refused([](auto& s) { s.queues[0].size = 48; });
    refused([](auto& s) { s.queues[2].size = 64; });  // its maximum is 32
    refused([](auto& s) { s.queues[0].msix_vector = 17; });
    refused([](auto& s) { s.config_vector = 4; });  // 4 vectors: 0..3
    refused([](auto& s) { s.driver_features |= 1ull << 7; });
    refused([](auto& s) { s.positions.pop_back(); });
    refused([](auto& s) { s.status = kStatusAcknowledge; });
    refused([](auto& s) { s.isr = 0x80; });
    refused([](auto& s) { s.config.bytes[0] ^= 1; });  // another vendor
    refused([](auto& s) {
        s.activated = false;  // positions for an inactive device
    });
    // The device's own bytes are its to refuse (after re-activation).
    VirtioPciTransport::State s = *saved;
    s.device.push_back(0);
    Side b(memory, router, events);
    EXPECT_FALSE(b.t->restore(s));
}

TEST_F(TransportStateTest, RestoreIntoAUsedTransportIsNotAllowed) {
    Side a(memory, router, events);
    bring_up(a);
    auto saved = a.t->save();
    ASSERT_TRUE(saved);
    auto r = a.t->restore(*saved);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().kind(), ErrorKind::NotAllowed);
}

TEST_F(TransportStateTest, TruncatedStateIsRefused) {
    Side a(memory, router, events);
    bring_up(a);
    auto saved = a.t->save();
    ASSERT_TRUE(saved);
    auto bytes = snapshot::encode(*saved);
    for (size_t len = 0; len < bytes.size(); ++len)
        EXPECT_FALSE(snapshot::decode<VirtioPciTransport::State>(std::span(bytes).first(len), "t"))
            << len;
    bytes.push_back(0);
    EXPECT_FALSE(snapshot::decode<VirtioPciTransport::State>(bytes, "t"));
}

}  // namespace
}  // namespace rv::virtio
