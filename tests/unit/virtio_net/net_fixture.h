// A virtio-net device over a socketpair backend, with driver-side rx and tx
// queues in plain guest memory, activated the way a transport would.
#pragma once

#include <gtest/gtest.h>

#include <cstring>

#include "devices/virtio/net/net_wire.h"
#include "devices/virtio/net/virtio_net.h"
#include "support/fake_driver_queue.h"
#include "unit/virtio_net/net_fakes.h"

namespace rv::test {

inline constexpr std::array<uint8_t, 6> kTestMac{0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

// Offered features minus the ones a test wants off.
inline uint64_t all_net_features() {
    using namespace virtio;
    return kFVersion1 | kNetFMac | kNetFStatus | kNetFCsum | kNetFGuestCsum | kNetFHostTso4 |
           kNetFHostTso6 | kNetFHostEcn | kNetFGuestTso4 | kNetFGuestTso6 | kNetFGuestEcn |
           kNetFMrgRxbuf;
}

// A 12-byte header (num_buffers 0) followed by `frame_len` patterned bytes.
inline std::vector<uint8_t> make_packet(size_t frame_len, uint8_t seed = 1, uint8_t flags = 0,
                                        uint8_t gso_type = 0) {
    std::vector<uint8_t> p(kVnetHdrSize + frame_len);
    p[0] = flags;
    p[1] = gso_type;
    for (size_t i = 0; i < frame_len; ++i)
        p[kVnetHdrSize + i] = static_cast<uint8_t>(seed + i * 7 + i / 251);
    return p;
}

inline uint16_t num_buffers_of(const std::vector<uint8_t>& bytes) {
    uint16_t n;
    std::memcpy(&n, bytes.data() + kVnetHdrNumBuffersOffset, 2);
    return n;
}

class NetTest : public ::testing::Test {
  protected:
    static constexpr uint64_t kMemSize = 16 << 20;

    explicit NetTest(GuestMemory memory = make_test_memory(kMemSize))
        : mem(std::move(memory)),
          rxq(mem, FakeDriverQueue::packed_layout(256, GuestAddress(0x1000)),
              GuestAddress(0x100000), 6 << 20),
          txq(mem, FakeDriverQueue::packed_layout(256, GuestAddress(0x8000)),
              GuestAddress(0x800000), 6 << 20) {
        auto [backend, state] = FakeNetBackend::create();
        net = state;
        auto created = virtio::VirtioNet::create(std::move(backend), {.mac = kTestMac});
        if (!created) throw std::runtime_error(created.error().message());
        dev = std::move(*created);
    }

    Result<void> try_activate(uint64_t features, bool event_idx = false, size_t queues = 2) {
        std::vector<virtio::Queue> qs;
        auto rx = rxq.create_queue(256, event_idx, true);
        auto tx = txq.create_queue(256, event_idx, true);
        if (!rx || !tx) throw std::runtime_error("queue creation failed");
        qs.push_back(std::move(*rx));
        if (queues > 1) qs.push_back(std::move(*tx));
        return dev->activate(virtio::ActivateArgs{.memory = mem,
                                                  .interrupt = irq,
                                                  .queues = std::move(qs),
                                                  .acked_features = features,
                                                  .events = events});
    }
    void activate(uint64_t features = all_net_features(), bool event_idx = false) {
        auto r = try_activate(features, event_idx);
        ASSERT_TRUE(r) << r.error().message();
    }
    uint32_t interest() const { return events.events(net->device_end.get()); }

    // Declared before dev: the device unregisters from them when destroyed.
    GuestMemory mem;
    FakeDriverQueue rxq;
    FakeDriverQueue txq;
    NetFakeRegistrar events;
    std::shared_ptr<NetRecordingInterrupt> irq = std::make_shared<NetRecordingInterrupt>();
    std::shared_ptr<FakeNetState> net;
    std::unique_ptr<virtio::VirtioNet> dev;
};

}  // namespace rv::test
