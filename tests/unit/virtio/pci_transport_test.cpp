#include "devices/virtio/pci_transport.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <map>
#include <mutex>

#include "devices/pci/pci_root.h"
#include "support/fake_msi_router.h"
#include "support/epoll_registrar.h"
#include "support/recording_irq_line.h"

namespace rv::virtio {
namespace {

constexpr uint64_t kFeatureA = 1ull << 5;
constexpr uint64_t kFeatureB = 1ull << 40;
constexpr uint64_t kNotOffered = 1ull << 7;

// Common config offsets (4.1.4.3).
constexpr uint64_t kDevFeatSel = 0x00, kDevFeat = 0x04, kDrvFeatSel = 0x08, kDrvFeat = 0x0C;
constexpr uint64_t kMsixConfig = 0x10, kNumQueues = 0x12, kStatus = 0x14, kGeneration = 0x15;
constexpr uint64_t kQSelect = 0x16, kQSize = 0x18, kQMsix = 0x1A, kQEnable = 0x1C;
constexpr uint64_t kQNotifyOff = 0x1E, kQDesc = 0x20, kQDriver = 0x28, kQDevice = 0x30;

class FakeVirtioDevice final : public VirtioDevice {
  public:
    std::string_view name() const override { return "fake-virtio"; }
    uint32_t device_type() const override { return kTypeBlock; }
    uint64_t device_features() const override { return kFeatureA | kFeatureB | kFRingEventIdx; }
    std::vector<uint16_t> queue_max_sizes() const override { return {256, 128}; }
    void read_config(uint64_t offset, std::span<uint8_t> data) override {
        for (size_t i = 0; i < data.size(); ++i)
            data[i] = offset + i < config.size() ? config[offset + i] : 0;
    }
    void write_config(uint64_t offset, std::span<const uint8_t> data) override {
        for (size_t i = 0; i < data.size(); ++i)
            if (offset + i < config.size()) config[offset + i] = data[i];
    }
    Result<void> activate(ActivateArgs args) override {
        std::lock_guard lock(m);
        ++activations;
        acked = args.acked_features;
        queue_configs.clear();
        for (const auto& q : args.queues) queue_configs.push_back(q.config());
        queue_indices = args.queue_indices;
        interrupt = args.interrupt;
        if (fail_activate) return make_error("fake activation failure");
        return {};
    }
    void reset() override {
        std::lock_guard lock(m);
        ++resets;
        interrupt.reset();
    }
    void queue_notify(uint16_t index) override {
        std::lock_guard lock(m);
        notified.push_back(index);
    }
    bool needs_reset() const override { return broken; }

    std::mutex m;
    std::array<uint8_t, 16> config{0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17};
    int activations{0};
    int resets{0};
    uint64_t acked{0};
    std::vector<QueueConfig> queue_configs;
    std::vector<uint16_t> queue_indices;
    std::shared_ptr<Interrupt> interrupt;
    std::vector<uint16_t> notified;
    bool fail_activate{false};
    bool broken{false};
};

using test::EpollRegistrar;

struct TransportTest : ::testing::Test {
    GuestMemory memory = [] {
        std::array<GuestMemory::RegionSpec, 1> spec{{{GuestAddress{0}, 1 << 20}}};
        return std::move(*GuestMemory::create(spec));
    }();
    test::FakeMsiRouter router;
    EpollRegistrar events;
    std::shared_ptr<FakeVirtioDevice> dev = std::make_shared<FakeVirtioDevice>();
    std::shared_ptr<test::RecordingIrqLine> intx = std::make_shared<test::RecordingIrqLine>();
    std::shared_ptr<VirtioPciTransport> t = [this] {
        auto r = VirtioPciTransport::create(dev, memory, router, events);
        EXPECT_TRUE(r);
        (*r)->assign_intx(intx);
        return *r;
    }();

    uint64_t bar(uint64_t off, size_t len) {
        std::array<uint8_t, 8> b{};
        t->bar_read(kPciBarIndex, off, std::span(b).first(len));
        uint64_t v = 0;
        for (size_t i = len; i-- > 0;) v = (v << 8) | b[i];
        return v;
    }
    void bar_w(uint64_t off, size_t len, uint64_t v) {
        std::array<uint8_t, 8> b{};
        store_le(std::span(b).first(len), v);
        t->bar_write(kPciBarIndex, off, std::span(b).first(len));
        events.pump();  // the loop serves a kick before the guest's next access
    }
    uint32_t cfg(uint16_t off, size_t len = 4) {
        std::array<uint8_t, 4> b{};
        t->config_read(off, std::span(b).first(len));
        return load_le(std::span(b).first(len));
    }
    void cfg_w(uint16_t off, size_t len, uint32_t v) {
        std::array<uint8_t, 4> b{};
        store_le(std::span(b).first(len), v);
        t->config_write(off, std::span(b).first(len));
    }
    uint8_t status() { return static_cast<uint8_t>(bar(kStatus, 1)); }
    void set_status(uint8_t s) { bar_w(kStatus, 1, s); }
    void write_features(uint64_t f) {
        bar_w(kDrvFeatSel, 4, 0);
        bar_w(kDrvFeat, 4, f & 0xFFFF'FFFF);
        bar_w(kDrvFeatSel, 4, 1);
        bar_w(kDrvFeat, 4, f >> 32);
    }
    bool negotiate(uint64_t f) {
        set_status(kStatusAcknowledge);
        set_status(kStatusAcknowledge | kStatusDriver);
        write_features(f);
        set_status(kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
        return status() & kStatusFeaturesOk;
    }
    void program_queue(uint16_t q, uint16_t size, uint64_t base) {
        bar_w(kQSelect, 2, q);
        bar_w(kQSize, 2, size);
        bar_w(kQDesc, 4, base & 0xFFFF'FFFF);  // lo/hi halves as Linux does
        bar_w(kQDesc + 4, 4, base >> 32);
        bar_w(kQDriver, 8, base + 0x1000);
        bar_w(kQDevice, 4, base + 0x2000);
        bar_w(kQDevice + 4, 4, 0);
        bar_w(kQEnable, 2, 1);
    }
    void driver_ok() {
        set_status(kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
    }
    // Finds the MSI-X capability and sets message control.
    void msix_control(uint16_t value) {
        for (uint8_t at = static_cast<uint8_t>(cfg(0x34, 1)); at != 0;
             at = static_cast<uint8_t>(cfg(at + 1, 1)))
            if (cfg(at, 1) == kPciCapIdMsix) return cfg_w(at + 2, 2, value);
        FAIL() << "no MSI-X capability";
    }
    void msix_vector(uint16_t v, uint64_t addr, uint32_t data) {
        uint64_t e = kPciMsixTableOffset + 16ull * v;
        bar_w(e, 4, addr & 0xFFFF'FFFF);
        bar_w(e + 4, 4, addr >> 32);
        bar_w(e + 8, 4, data);
        bar_w(e + 12, 4, 0);
    }
};

TEST_F(TransportTest, PciIdentityAndBar) {
    EXPECT_EQ(cfg(0x00), 0x1042'1AF4u);  // 0x1040 + block
    EXPECT_EQ(cfg(0x08), 0x0180'0001u);  // class 01 80 00, revision 1
    EXPECT_EQ(cfg(0x2C), 0x0040'1AF4u);
    EXPECT_EQ(cfg(0x3D, 1), 1u);
    EXPECT_TRUE(cfg(0x06, 2) & kPciStatusCapList);
    auto bars = t->bars();
    ASSERT_EQ(bars.size(), 1u);
    EXPECT_EQ(bars[0].index, 4);
    EXPECT_TRUE(bars[0].is_64bit);
    cfg_w(0x20, 4, 0xFFFF'FFFF);
    cfg_w(0x24, 4, 0xFFFF'FFFF);
    EXPECT_EQ(cfg(0x20), static_cast<uint32_t>(~(kPciBarSize - 1)) | 0x4u);
    EXPECT_EQ(cfg(0x24), 0xFFFF'FFFFu);
    EXPECT_EQ(cfg(0x10), 0u);
}

TEST_F(TransportTest, CapabilitiesDescribeTheBar) {
    struct Cap {
        uint8_t type, bar;
        uint32_t offset, length;
    };
    std::vector<Cap> caps;
    uint32_t multiplier = 0, msix_table = 0, msix_pba = 0, msix_ctrl = 0;
    int guard = 0;
    for (uint8_t at = static_cast<uint8_t>(cfg(0x34, 1)); at != 0 && ++guard < 20;
         at = static_cast<uint8_t>(cfg(at + 1, 1))) {
        uint8_t id = static_cast<uint8_t>(cfg(at, 1));
        if (id == kPciCapIdVendor) {
            caps.push_back({static_cast<uint8_t>(cfg(at + 3, 1)),
                            static_cast<uint8_t>(cfg(at + 4, 1)), cfg(at + 8), cfg(at + 12)});
            EXPECT_GE(cfg(at + 2, 1), 16u);
            if (caps.back().type == kPciCapNotifyCfg) multiplier = cfg(at + 16);
        } else if (id == kPciCapIdMsix) {
            msix_ctrl = cfg(at + 2, 2);
            msix_table = cfg(at + 4);
            msix_pba = cfg(at + 8);
        }
    }
    auto find = [&](uint8_t type) {
        for (const auto& c : caps)
            if (c.type == type) return c;
        ADD_FAILURE() << "no cap type " << int(type);
        return Cap{};
    };
    EXPECT_EQ(find(kPciCapCommonCfg).offset, 0x0000u);
    EXPECT_GE(find(kPciCapCommonCfg).length, 0x38u);
    EXPECT_EQ(find(kPciCapIsrCfg).offset, 0x1000u);
    EXPECT_EQ(find(kPciCapDeviceCfg).offset, 0x2000u);
    EXPECT_EQ(find(kPciCapNotifyCfg).offset, 0x3000u);
    EXPECT_GE(find(kPciCapNotifyCfg).length, 2 * 4u);
    EXPECT_EQ(find(kPciCapCommonCfg).bar, 4);
    EXPECT_EQ(find(kPciCapNotifyCfg).bar, 4);
    (void)find(kPciCapPciCfg);
    EXPECT_EQ(multiplier, 4u);
    EXPECT_EQ(msix_ctrl & 0x7FF, 2u);  // 3 vectors: 2 queues + config
    EXPECT_EQ(msix_table, 0x4000u | 4);
    EXPECT_EQ(msix_pba, 0x5000u | 4);
    for (const auto& c : caps) EXPECT_LE(uint64_t{c.offset} + c.length, kPciBarSize);
}

TEST_F(TransportTest, DeviceFeatures) {
    EXPECT_EQ(bar(kNumQueues, 2), 2u);
    bar_w(kDevFeatSel, 4, 0);
    EXPECT_EQ(bar(kDevFeat, 4), static_cast<uint32_t>(kFeatureA | kFRingEventIdx));
    bar_w(kDevFeatSel, 4, 1);
    EXPECT_EQ(bar(kDevFeat, 4), static_cast<uint32_t>((kFeatureB | kFVersion1) >> 32));
    bar_w(kDevFeatSel, 4, 2);
    EXPECT_EQ(bar(kDevFeat, 4), 0u);
}

TEST_F(TransportTest, FeaturesOkAcceptsSubsetWithVersion1) {
    EXPECT_TRUE(negotiate(kFVersion1 | kFeatureA));
    EXPECT_EQ(status(), kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
    // Features are frozen after FEATURES_OK.
    write_features(kFVersion1 | kFeatureA | kFeatureB);
    bar_w(kDrvFeatSel, 4, 1);
    EXPECT_EQ(bar(kDrvFeat, 4), 1u);  // VERSION_1 only
}

TEST_F(TransportTest, FeaturesOkRefusesUnofferedFeature) {
    EXPECT_FALSE(negotiate(kFVersion1 | kNotOffered));
    EXPECT_EQ(status(), kStatusAcknowledge | kStatusDriver);
}

TEST_F(TransportTest, FeaturesOkRequiresVersion1) {
    EXPECT_FALSE(negotiate(kFeatureA));
}

TEST_F(TransportTest, ActivationGetsProgrammedQueues) {
    ASSERT_TRUE(negotiate(kFVersion1 | kFRingEventIdx | kFeatureB));
    program_queue(0, 64, 0x10000);
    bar_w(kQSelect, 2, 1);
    EXPECT_EQ(bar(kQSize, 2), 128u);  // queue 1 left at its maximum, not enabled
    EXPECT_EQ(bar(kQNotifyOff, 2), 1u);
    bar_w(kQSelect, 2, 0);
    EXPECT_EQ(bar(kQSize, 2), 64u);
    EXPECT_EQ(bar(kQEnable, 2), 1u);
    EXPECT_EQ(bar(kQDesc, 8), 0x10000u);
    EXPECT_EQ(bar(kQDriver, 4), 0x11000u);
    EXPECT_EQ(bar(kQDevice + 4, 4), 0u);
    EXPECT_EQ(dev->activations, 0);
    driver_ok();
    ASSERT_EQ(dev->activations, 1);
    EXPECT_EQ(dev->acked, kFVersion1 | kFRingEventIdx | kFeatureB);
    ASSERT_EQ(dev->queue_configs.size(), 1u);
    EXPECT_EQ(dev->queue_configs[0].size, 64);
    EXPECT_EQ(dev->queue_configs[0].desc.value, 0x10000u);
    EXPECT_EQ(dev->queue_configs[0].avail.value, 0x11000u);
    EXPECT_EQ(dev->queue_configs[0].used.value, 0x12000u);
    EXPECT_EQ(status(), kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk | kStatusDriverOk);
    ASSERT_TRUE(dev->interrupt);
    // Writing DRIVER_OK again does not re-activate.
    driver_ok();
    EXPECT_EQ(dev->activations, 1);
}

// A device whose queues depend on the features (virtio-net's pairs) learns
// which of them the driver enabled.
TEST_F(TransportTest, ActivationNamesTheEnabledQueues) {
    ASSERT_TRUE(negotiate(kFVersion1));
    program_queue(1, 64, 0x20000);
    driver_ok();
    ASSERT_EQ(dev->activations, 1);
    ASSERT_EQ(dev->queue_configs.size(), 1u);
    EXPECT_EQ(dev->queue_configs[0].desc.value, 0x20000u);
    EXPECT_EQ(dev->queue_indices, std::vector<uint16_t>{1});
}

TEST_F(TransportTest, QueueFieldsFrozenAfterDriverOk) {
    ASSERT_TRUE(negotiate(kFVersion1));
    program_queue(0, 64, 0x10000);
    driver_ok();
    bar_w(kQSize, 2, 16);
    bar_w(kQDesc, 4, 0x20000);
    bar_w(kQMsix, 2, 0);
    bar_w(kQSelect, 2, 1);
    bar_w(kQEnable, 2, 1);
    EXPECT_EQ(bar(kQEnable, 2), 0u);
    bar_w(kQSelect, 2, 0);
    EXPECT_EQ(bar(kQSize, 2), 64u);
    EXPECT_EQ(bar(kQDesc, 4), 0x10000u);
    EXPECT_EQ(bar(kQMsix, 2), kNoVector);
}

TEST_F(TransportTest, QueueSizeAndVectorValidation) {
    bar_w(kQSelect, 2, 1);
    bar_w(kQSize, 2, 48);  // not a power of two
    EXPECT_EQ(bar(kQSize, 2), 128u);
    bar_w(kQSize, 2, 256);  // above the maximum
    EXPECT_EQ(bar(kQSize, 2), 128u);
    bar_w(kQSize, 2, 32);
    EXPECT_EQ(bar(kQSize, 2), 32u);
    bar_w(kQMsix, 2, 2);
    EXPECT_EQ(bar(kQMsix, 2), 2u);
    bar_w(kQMsix, 2, 3);  // past the 3-entry table
    EXPECT_EQ(bar(kQMsix, 2), kNoVector);
    bar_w(kMsixConfig, 2, 0);
    EXPECT_EQ(bar(kMsixConfig, 2), 0u);
    bar_w(kMsixConfig, 2, 100);
    EXPECT_EQ(bar(kMsixConfig, 2), kNoVector);
    // A queue_select past the end reads size 0 and swallows writes.
    bar_w(kQSelect, 2, 7);
    EXPECT_EQ(bar(kQSize, 2), 0u);
    bar_w(kQEnable, 2, 1);
    EXPECT_EQ(bar(kQEnable, 2), 0u);
}

TEST_F(TransportTest, WrongWidthWritesIgnored) {
    bar_w(kQSelect, 1, 1);  // 16-bit field written with a byte
    EXPECT_EQ(bar(kQSelect, 2), 0u);
    bar_w(kQSelect, 4, 0x0040'0001);  // dword spanning queue_select and queue_size
    EXPECT_EQ(bar(kQSelect, 2), 0u);
    EXPECT_EQ(bar(kQSize, 2), 256u);
    bar_w(kStatus, 2, 0x0101);  // status is a byte
    EXPECT_EQ(status(), 0u);
    bar_w(kQDesc + 2, 4, 0x1234);  // misaligned half of a 64-bit field
    EXPECT_EQ(bar(kQDesc, 8), 0u);
    // Reads of any width work (no side effects).
    bar_w(kQSelect, 2, 1);
    EXPECT_EQ(bar(kQSelect, 1), 1u);
    EXPECT_EQ(bar(kQSelect, 4), 0x0080'0001u);
}

TEST_F(TransportTest, ResetClearsEverything) {
    ASSERT_TRUE(negotiate(kFVersion1 | kFeatureA));
    program_queue(0, 64, 0x10000);
    bar_w(kQMsix, 2, 1);
    bar_w(kMsixConfig, 2, 0);
    driver_ok();
    t->signal_used_queue(0);
    ASSERT_TRUE(intx->level());
    set_status(0);
    EXPECT_EQ(dev->resets, 1);
    EXPECT_EQ(status(), 0u);
    EXPECT_FALSE(intx->level());
    EXPECT_EQ(bar(kPciIsrOffset, 1), 0u);
    EXPECT_EQ(bar(kMsixConfig, 2), kNoVector);
    bar_w(kDrvFeatSel, 4, 0);
    EXPECT_EQ(bar(kDrvFeat, 4), 0u);
    EXPECT_EQ(bar(kQSelect, 2), 0u);
    EXPECT_EQ(bar(kQSize, 2), 256u);
    EXPECT_EQ(bar(kQEnable, 2), 0u);
    EXPECT_EQ(bar(kQMsix, 2), kNoVector);
    EXPECT_EQ(bar(kQDesc, 8), 0u);
    EXPECT_EQ(bar(kQDriver, 8), 0u);
    EXPECT_EQ(bar(kQDevice, 8), 0u);
    bar_w(kPciNotifyOffset, 2, 0);
    EXPECT_TRUE(dev->notified.empty());
    // The device can be brought up again.
    ASSERT_TRUE(negotiate(kFVersion1));
    program_queue(0, 32, 0x20000);
    driver_ok();
    EXPECT_EQ(dev->activations, 2);
    EXPECT_EQ(dev->acked, kFVersion1);
}

TEST_F(TransportTest, ActivationFailureNeedsReset) {
    dev->fail_activate = true;
    ASSERT_TRUE(negotiate(kFVersion1));
    program_queue(0, 64, 0x10000);
    uint64_t gen = bar(kGeneration, 1);
    driver_ok();
    EXPECT_TRUE(status() & kStatusNeedsReset);
    EXPECT_NE(bar(kGeneration, 1), gen);
    EXPECT_TRUE(intx->level());
    EXPECT_EQ(bar(kPciIsrOffset, 1), kIsrConfig);
    // Notifications do not reach a device that is not active.
    bar_w(kPciNotifyOffset, 2, 0);
    EXPECT_TRUE(dev->notified.empty());
    // The driver cannot clear NEEDS_RESET except by resetting.
    driver_ok();
    EXPECT_TRUE(status() & kStatusNeedsReset);
    set_status(0);
    EXPECT_EQ(status(), 0u);
    EXPECT_EQ(dev->resets, 0);  // never activated
}

TEST_F(TransportTest, BadQueueLayoutNeedsResetWithoutActivating) {
    ASSERT_TRUE(negotiate(kFVersion1));
    program_queue(0, 64, 0x7FFF'0000);  // outside guest memory
    driver_ok();
    EXPECT_TRUE(status() & kStatusNeedsReset);
    EXPECT_EQ(dev->activations, 0);
}

TEST_F(TransportTest, DriverOkWithoutFeaturesOkNeedsReset) {
    set_status(kStatusAcknowledge | kStatusDriver);
    write_features(kFVersion1);
    set_status(kStatusAcknowledge | kStatusDriver | kStatusDriverOk);
    EXPECT_TRUE(status() & kStatusNeedsReset);
    EXPECT_EQ(dev->activations, 0);
}

TEST_F(TransportTest, DeviceReportedNeedsReset) {
    ASSERT_TRUE(negotiate(kFVersion1));
    program_queue(0, 64, 0x10000);
    driver_ok();
    EXPECT_FALSE(status() & kStatusNeedsReset);
    dev->broken = true;
    EXPECT_TRUE(status() & kStatusNeedsReset);
}

TEST_F(TransportTest, IsrReadClearsAndLowersIntx) {
    t->signal_used_queue(1);
    EXPECT_TRUE(intx->level());
    EXPECT_TRUE(cfg(0x06, 2) & kPciStatusInterrupt);
    t->signal_config_change();
    EXPECT_EQ(bar(kPciIsrOffset, 1), kIsrQueue | kIsrConfig);
    EXPECT_FALSE(intx->level());
    EXPECT_FALSE(cfg(0x06, 2) & kPciStatusInterrupt);
    EXPECT_EQ(bar(kPciIsrOffset, 1), 0u);
    EXPECT_EQ(intx->rising_edges(), 1u);
    // With INTx disabled in the command register, the ISR still latches.
    cfg_w(0x04, 2, kPciCommandIntxDisable);
    t->signal_used_queue(0);
    EXPECT_FALSE(intx->level());
    cfg_w(0x04, 2, 0);
    EXPECT_TRUE(intx->level());
}

TEST_F(TransportTest, MsixVectorSelection) {
    msix_control(kMsixControlEnable);
    msix_vector(1, 0xFEE0'1000, 0x41);
    msix_vector(2, 0xFEE0'2000, 0x42);
    bar_w(kQSelect, 2, 0);
    bar_w(kQMsix, 2, 1);
    bar_w(kMsixConfig, 2, 2);
    t->signal_used_queue(0);
    t->signal_config_change();
    auto d = router.delivered();
    ASSERT_EQ(d.size(), 2u);
    EXPECT_EQ(d[0], (MsiMessage{0xFEE0'1000, 0x41}));
    EXPECT_EQ(d[1], (MsiMessage{0xFEE0'2000, 0x42}));
    EXPECT_FALSE(intx->level());
    EXPECT_EQ(bar(kPciIsrOffset, 1), kIsrConfig);  // config bit is always set
    // Queue 1 has no vector: with MSI-X on it gets no interrupt at all.
    t->signal_used_queue(1);
    EXPECT_EQ(router.triggered().size(), 2u);
    EXPECT_FALSE(intx->level());
    EXPECT_EQ(bar(kPciIsrOffset, 1), 0u);
    // MSI-X off again: back to ISR + INTx.
    msix_control(0);
    t->signal_used_queue(0);
    EXPECT_EQ(router.triggered().size(), 2u);
    EXPECT_TRUE(intx->level());
}

TEST_F(TransportTest, InterruptFromDeviceReachesTransport) {
    msix_control(kMsixControlEnable);
    msix_vector(0, 0xFEE0'0000, 0x50);
    ASSERT_TRUE(negotiate(kFVersion1));
    program_queue(0, 64, 0x10000);
    bar_w(kQMsix, 2, 0);
    driver_ok();
    ASSERT_TRUE(dev->interrupt);
    dev->interrupt->signal_used_queue(0);
    ASSERT_EQ(router.delivered().size(), 1u);
    EXPECT_EQ(router.delivered()[0].data, 0x50u);
}

TEST_F(TransportTest, NotifyReachesDevice) {
    EXPECT_EQ(t->queue_count(), 2);
    EXPECT_FALSE(t->notify_address(0));
    t->bar_moved(kPciBarIndex, 0xE000'0000);
    EXPECT_EQ(t->notify_address(1), 0xE000'3004u);
    EXPECT_FALSE(t->notify_address(2));
    ASSERT_TRUE(negotiate(kFVersion1));
    program_queue(0, 64, 0x10000);
    program_queue(1, 64, 0x20000);
    bar_w(kPciNotifyOffset + 4, 2, 1);  // before DRIVER_OK: dropped
    driver_ok();
    ASSERT_EQ(dev->queue_configs.size(), 2u);
    bar_w(kPciNotifyOffset + 4, 2, 1);
    bar_w(kPciNotifyOffset, 2, 0);
    bar_w(kPciNotifyOffset + 2, 2, 0);  // not a notify register
    bar_w(kPciNotifyOffset + 8, 2, 2);  // no queue 2
    EXPECT_EQ(dev->notified, (std::vector<uint16_t>{1, 0}));
}

TEST_F(TransportTest, DeviceConfigForwarded) {
    EXPECT_EQ(bar(kPciDeviceCfgOffset + 4, 4), 0x1716'1514u);
    bar_w(kPciDeviceCfgOffset + 8, 2, 0xBEEF);
    EXPECT_EQ(dev->config[8], 0xEF);
    EXPECT_EQ(dev->config[9], 0xBE);
}

TEST_F(TransportTest, PciCfgAccessWindow) {
    uint8_t at = static_cast<uint8_t>(cfg(0x34, 1));
    while (at != 0 && !(cfg(at, 1) == kPciCapIdVendor && cfg(at + 3, 1) == kPciCapPciCfg))
        at = static_cast<uint8_t>(cfg(at + 1, 1));
    ASSERT_NE(at, 0);
    cfg_w(at + 4, 1, kPciBarIndex);
    cfg_w(at + 8, 4, kQSize);
    cfg_w(at + 12, 4, 2);
    EXPECT_EQ(cfg(at + 16, 2), 256u);
    cfg_w(at + 16, 2, 16);  // writes through to queue_size
    EXPECT_EQ(bar(kQSize, 2), 16u);
    cfg_w(at + 12, 4, 3);             // bad length: window inert
    EXPECT_EQ(cfg(at + 16, 2), 16u);  // last stored bytes, not a BAR read
    bar_w(kQSize, 2, 8);
    EXPECT_NE(cfg(at + 16, 2), 8u);
}

TEST_F(TransportTest, ThroughPciRoot) {
    MmioBus mmio;
    PioBus pio;
    auto root = PciRoot::create(mmio, pio, nullptr);
    auto slot = root->add_device(t);
    ASSERT_TRUE(slot);
    std::vector<std::pair<uint64_t, bool>> observed;
    root->set_bar_observer([&](const PciDevice& d, const PciBarInfo& bar, uint64_t at, bool mapped) {
        for (const PciIoEvent& e : d.ioevents(bar.index)) {
            EXPECT_GE(e.fd, 0);
            observed.emplace_back(at + e.offset, mapped);
        }
    });
    ASSERT_TRUE(root->allocate_bars(
        PciWindows{.mmio64_start = 0x1'0000'0000, .mmio64_end = 0x2'0000'0000}));
    auto base = root->bar_address(*slot, kPciBarIndex);
    ASSERT_TRUE(base);
    // The VMM learns where each queue's doorbell is, from the BAR observer.
    EXPECT_EQ(observed, (std::vector<std::pair<uint64_t, bool>>{
                            {*base + kPciNotifyOffset, true}, {*base + kPciNotifyOffset + 4, true}}));
    EXPECT_EQ(t->notify_address(0), *base + kPciNotifyOffset);
    std::array<uint8_t, 2> nq{};
    mmio.read(MmioAddress{*base + kNumQueues}, nq);
    EXPECT_EQ(load_le(nq), 2u);
    EXPECT_EQ(cfg(0x3C, 1), PciRoot::intx_irq(*slot));
}

TEST_F(TransportTest, KicksArriveThroughTheQueueEventfds) {
    auto io = t->ioevents(kPciBarIndex);
    ASSERT_EQ(io.size(), 2u);
    EXPECT_TRUE(t->ioevents(0).empty());
    EXPECT_EQ(io[1].offset, kPciNotifyOffset + kPciNotifyMultiplier);
    ASSERT_TRUE(negotiate(kFVersion1));
    program_queue(0, 64, 0x10000);
    program_queue(1, 64, 0x20000);
    driver_ok();
    // What KVM does for an ioeventfd write: signal the fd; the loop serves it.
    uint64_t one = 1;
    ASSERT_EQ(::write(io[1].fd, &one, sizeof one), ssize_t(sizeof one));
    EXPECT_TRUE(dev->notified.empty()) << "nothing happens on the vCPU";
    events.pump();
    EXPECT_EQ(dev->notified, (std::vector<uint16_t>{1}));
    events.pump();  // one kick, one notification
    EXPECT_EQ(dev->notified, (std::vector<uint16_t>{1}));
    // Edge-triggered: the eventfd is never read, yet each kick is one notification.
    EXPECT_EQ(events.registered_events.at(io[1].fd), uint32_t(EPOLLIN | EPOLLET));
    ASSERT_EQ(::write(io[1].fd, &one, sizeof one), ssize_t(sizeof one));
    ASSERT_EQ(::write(io[0].fd, &one, sizeof one), ssize_t(sizeof one));
    events.pump();
    std::vector<uint16_t> got = dev->notified;
    std::sort(got.begin() + 1, got.end());
    EXPECT_EQ(got, (std::vector<uint16_t>{1, 0, 1}));
}

TEST_F(TransportTest, TheTransportUnregistersItsEventfdsWhenDestroyed) {
    EXPECT_EQ(events.handlers.size(), 2u);
    t.reset();
    EXPECT_TRUE(events.handlers.empty());
}

}  // namespace
}  // namespace rv::virtio
