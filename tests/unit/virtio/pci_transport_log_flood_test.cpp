// A driver can repeat a bad common-config write on every MMIO exit. Each
// refusal is logged on the vCPU thread under the transport's lock, so the
// log must stay bounded however often the guest repeats it.
#include <gtest/gtest.h>

#include <array>

#include "devices/virtio/common_cfg_layout.h"
#include "devices/virtio/pci_transport.h"
#include "support/fake_msi_router.h"
#include "support/log_capture.h"

namespace rv::virtio {
namespace {

constexpr int kBadWrites = 10'000;
// The limiter lets a few through, then about one per interval: however slow
// the machine running the test, far fewer than this.
constexpr size_t kMaxLines = 20;

class QuietDevice final : public VirtioDevice {
  public:
    std::string_view name() const override { return "flood"; }
    uint32_t device_type() const override { return kTypeBlock; }
    uint64_t device_features() const override { return 1ull << 5; }
    std::vector<uint16_t> queue_max_sizes() const override { return {256}; }
    void read_config(uint64_t, std::span<uint8_t> data) override {
        std::fill(data.begin(), data.end(), 0);
    }
    void write_config(uint64_t, std::span<const uint8_t>) override {}
    Result<void> activate(ActivateArgs) override { return {}; }
    void reset() override {}
    void queue_notify(uint16_t) override {}
    bool needs_reset() const override { return false; }
};

struct NullEvents final : EventRegistrar {
    Result<void> add(int, uint32_t, std::function<void(uint32_t)>) override { return {}; }
    void remove(int) override {}
};

struct TransportFlood : ::testing::Test {
    GuestMemory memory = [] {
        std::array<GuestMemory::RegionSpec, 1> spec{{{GuestAddress{0}, 1 << 20}}};
        return std::move(*GuestMemory::create(spec));
    }();
    test::FakeMsiRouter router;
    NullEvents events;
    std::shared_ptr<VirtioPciTransport> t = [this] {
        auto r =
            VirtioPciTransport::create(std::make_shared<QuietDevice>(), memory, router, events);
        EXPECT_TRUE(r);
        return *r;
    }();
    test::LogCapture log;

    void bar_w(uint64_t off, size_t len, uint64_t v) {
        std::array<uint8_t, 8> b{};
        store_le(std::span(b).first(len), v);
        t->bar_write(kPciBarIndex, off, std::span(b).first(len));
    }
    void set_status(uint8_t s) { bar_w(common::kDeviceStatus, 1, s); }
};

TEST_F(TransportFlood, QueueSizeNotPowerOfTwo) {
    set_status(kStatusAcknowledge | kStatusDriver);
    bar_w(common::kQueueSelect, 2, 0);
    for (int i = 0; i < kBadWrites; ++i) bar_w(common::kQueueSize, 2, 3);
    EXPECT_GE(log.count("size 3 refused"), 1u) << "the first refusals are still logged";
    EXPECT_LE(log.count(), kMaxLines);
}

TEST_F(TransportFlood, FeaturesOkWithoutVersion1) {
    set_status(kStatusAcknowledge | kStatusDriver);
    bar_w(common::kDriverFeatureSelect, 4, 0);
    bar_w(common::kDriverFeature, 4, 1u << 5);  // offered, but no VERSION_1
    // Refused FEATURES_OK stays clear, so every write is a new refusal.
    for (int i = 0; i < kBadWrites; ++i)
        set_status(kStatusAcknowledge | kStatusDriver | kStatusFeaturesOk);
    EXPECT_FALSE(t->device_status() & kStatusFeaturesOk);
    EXPECT_GE(log.count("refusing features"), 1u);
    EXPECT_LE(log.count(), kMaxLines);
}

TEST_F(TransportFlood, DriverOkWithoutFeaturesOk) {
    for (int i = 0; i < kBadWrites; ++i) {
        set_status(0);  // reset, so the next DRIVER_OK is a new activation attempt
        set_status(kStatusAcknowledge | kStatusDriver | kStatusDriverOk);
    }
    EXPECT_TRUE(t->device_status() & kStatusNeedsReset);
    EXPECT_GE(log.count("activation failed"), 1u);
    EXPECT_LE(log.count(), kMaxLines);
}

}  // namespace
}  // namespace rv::virtio
