// A multiqueue virtio-net (kPairs rx/tx pairs and a control queue) over one
// socketpair backend per pair, with driver-side queues for every index
// (2k rx, 2k + 1 tx, 2N control), activated the way the PCI transport does
// it: the enabled queues plus their indices.
#pragma once

#include <gtest/gtest.h>

#include <memory>

#include "unit/virtio_net/net_fixture.h"

namespace rv::test {

class NetMqTest : public ::testing::Test {
  protected:
    static constexpr unsigned kPairs = 2;
    static constexpr uint16_t kCtrl = 2 * kPairs;
    static constexpr uint64_t kMemSize = 32 << 20;
    static constexpr uint64_t kDataSize = 4 << 20;

    NetMqTest() : mem(make_test_memory(kMemSize)) {
        fresh_rings();
        recreate({.mac = kTestMac});
    }

    // Cleared rings for every queue (a new driver after a reset).
    void fresh_rings() {
        queues.clear();
        for (uint16_t q = 0; q <= kCtrl; ++q) {
            const uint16_t size =
                q == kCtrl ? virtio::VirtioNet::kCtrlQueueSize : virtio::VirtioNet::kQueueSize;
            queues.push_back(std::make_unique<FakeDriverQueue>(
                mem, FakeDriverQueue::packed_layout(size, GuestAddress(0x1000 + q * 0x8000ull)),
                GuestAddress(0x100000 + q * kDataSize), kDataSize));
        }
    }

    void recreate(const virtio::VirtioNetConfig& config) {
        dev.reset();  // off the registrar first
        auto [backends, peers] = FakeNetBackend::create_queues(kPairs);
        nets = peers;
        auto created = virtio::VirtioNet::create(std::move(backends), config);
        if (!created) throw std::runtime_error(created.error().message());
        dev = std::move(*created);
    }

    static uint64_t mq_features() {
        return all_net_features() | virtio::kNetFMq | virtio::kNetFCtrlVq;
    }

    // Activates with the queues `enabled` (default: every one, as Linux does).
    Result<void> try_activate(uint64_t features, std::vector<uint16_t> enabled = {},
                              bool event_idx = false) {
        if (enabled.empty())
            for (uint16_t q = 0; q <= kCtrl; ++q) enabled.push_back(q);
        std::vector<virtio::Queue> qs;
        for (uint16_t q : enabled) {
            auto queue = queues[q]->create_queue(queues[q]->size(), event_idx, true);
            if (!queue) throw std::runtime_error("queue creation failed");
            qs.push_back(std::move(*queue));
        }
        return dev->activate(virtio::ActivateArgs{.memory = mem,
                                                  .interrupt = irq,
                                                  .queues = std::move(qs),
                                                  .acked_features = features,
                                                  .events = events,
                                                  .queue_indices = std::move(enabled)});
    }
    void activate(uint64_t features = mq_features()) {
        auto r = try_activate(features);
        ASSERT_TRUE(r) << r.error().message();
    }

    FakeDriverQueue& rxq(unsigned pair) { return *queues[2 * pair]; }
    FakeDriverQueue& txq(unsigned pair) { return *queues[2 * pair + 1]; }
    FakeDriverQueue& ctrlq() { return *queues[kCtrl]; }
    uint32_t interest(unsigned pair) const { return events.events(nets[pair]->device_end.get()); }

    // Sends a command (class, command, data) with a 1-byte ack buffer and
    // returns the used element and what the device wrote.
    struct CtrlReply {
        std::optional<UsedElem> used;
        std::vector<uint8_t> written;
    };
    CtrlReply send_ctrl(std::vector<BufferSpec> chain, uint16_t queue = kCtrl) {
        FakeDriverQueue& q = *queues[queue];
        uint16_t head = q.add_chain(chain);
        dev->queue_notify(queue);
        CtrlReply reply;
        reply.used = q.pop_used();
        if (reply.used) reply.written = q.writable_data(head, reply.used->len);
        return reply;
    }
    static std::vector<uint8_t> command(uint8_t cls, uint8_t cmd, std::vector<uint8_t> data) {
        data.insert(data.begin(), {cls, cmd});
        return data;
    }
    static std::vector<uint8_t> pairs_set(uint16_t n) {
        return command(virtio::kNetCtrlMq, virtio::kNetCtrlMqVqPairsSet,
                       {static_cast<uint8_t>(n), static_cast<uint8_t>(n >> 8)});
    }
    // VQ_PAIRS_SET n as Linux sends it (header and data in one buffer here);
    // returns the ack byte, or -1 if the chain came back without one.
    int set_pairs(uint16_t n) {
        auto reply = send_ctrl({{pairs_set(n), false}, {1, true}});
        if (!reply.used || reply.written.size() != 1) return -1;
        return reply.written[0];
    }

    // Declared before dev: the device unregisters from them when destroyed.
    GuestMemory mem;
    std::vector<std::unique_ptr<FakeDriverQueue>> queues;
    NetFakeRegistrar events;
    std::shared_ptr<NetRecordingInterrupt> irq = std::make_shared<NetRecordingInterrupt>();
    std::vector<std::shared_ptr<FakeNetState>> nets;
    std::unique_ptr<virtio::VirtioNet> dev;
};

}  // namespace rv::test
