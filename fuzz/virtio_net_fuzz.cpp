// Fuzzes virtio-net with hostile rings: the input picks one queue pair or two
// (multiqueue), lays out the rx/tx and control descriptor tables, indirect
// tables and avail rings in a small two-region guest memory, picks the
// negotiated features, then plays a sequence of driver notifications (any
// queue), packets from the host side (any tap queue), event-loop passes,
// ring pokes (control commands such as VQ_PAIRS_SET and ANNOUNCE_ACK come
// from the scratch bytes), announces, snapshot state round trips and resets.
// The device must neither crash nor make the event loop spin.
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/socket.h>

#include <array>
#include <cstdlib>
#include <vector>

#include "base/log.h"
#include "devices/virtio/net/net_wire.h"
#include "devices/virtio/net/virtio_net.h"
#include "unit/virtio_net/net_fakes.h"

namespace {

using namespace rv;
using namespace rv::virtio;

constexpr uint64_t kRegion = 128 << 10;
constexpr uint64_t kMemSize = 2 * kRegion;  // two regions: buffers may straddle them
constexpr GuestAddress kRxRing{0x0};
constexpr GuestAddress kTxRing{0x1000};
constexpr GuestAddress kRx1Ring{0x400};  // pair 1 and the control queue (rings of
constexpr GuestAddress kTx1Ring{0x1400};  // at most 16 entries: under 0x400 bytes)
constexpr GuestAddress kCtrlRing{0x800};
constexpr GuestAddress kScratch{0x2000};  // fuzz bytes: indirect tables, headers, frames

GuestMemory& memory() {
    static GuestMemory mem = [] {
        std::array<GuestMemory::RegionSpec, 2> specs{
            GuestMemory::RegionSpec{GuestAddress(0), kRegion},
            GuestMemory::RegionSpec{GuestAddress(kRegion), kRegion}};
        auto m = GuestMemory::create(specs);
        if (!m) std::abort();
        return std::move(*m);
    }();
    return mem;
}

QueueConfig layout(GuestAddress base, uint16_t size) {
    uint64_t avail = base.value + 16ull * size;
    uint64_t used = (avail + 6 + 2ull * size + 3) & ~3ull;
    return {size, base, GuestAddress(avail), GuestAddress(used)};
}

// Mostly inside (or just past) guest memory, sometimes anywhere.
uint64_t fuzz_addr(FuzzedDataProvider& fdp) {
    if (fdp.ConsumeIntegralInRange<int>(0, 15) == 0) return fdp.ConsumeIntegral<uint64_t>();
    return fdp.ConsumeIntegralInRange<uint64_t>(0, kMemSize + 0x100);
}

uint32_t fuzz_len(FuzzedDataProvider& fdp) {
    switch (fdp.ConsumeIntegralInRange<int>(0, 7)) {
        case 0:
            return fdp.ConsumeIntegral<uint32_t>();
        case 1:
            return fdp.ConsumeIntegralInRange<uint32_t>(60000, 70000);
        default:
            return fdp.ConsumeIntegralInRange<uint32_t>(0, 3000);
    }
}

void write_descs(FuzzedDataProvider& fdp, const QueueConfig& q) {
    const GuestMemory& mem = memory();
    for (uint16_t i = 0; i < q.size; ++i) {
        VirtqDesc d{fuzz_addr(fdp), fuzz_len(fdp),
                    static_cast<uint16_t>(fdp.ConsumeIntegral<uint8_t>() & 7),
                    fdp.ConsumeIntegralInRange<uint16_t>(0, static_cast<uint16_t>(q.size + 1))};
        (void)mem.write_obj(GuestAddress(q.desc.value + 16ull * i), d);
    }
}

// Publishes `n` fuzz-chosen heads (sometimes out of range) on a queue.
void publish(FuzzedDataProvider& fdp, const QueueConfig& q, uint16_t n) {
    const GuestMemory& mem = memory();
    uint16_t idx = mem.read_obj<uint16_t>(GuestAddress(q.avail.value + 2)).value_or(0);
    for (uint16_t k = 0; k < n; ++k) {
        uint16_t head = fdp.ConsumeIntegralInRange<uint16_t>(0, static_cast<uint16_t>(q.size));
        (void)mem.write_obj(GuestAddress(q.avail.value + 4 + 2ull * ((idx + k) % q.size)), head);
    }
    (void)mem.write_obj(GuestAddress(q.avail.value + 2), static_cast<uint16_t>(idx + n));
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    rv::log::set_level(rv::log::Level::Off);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    FuzzedDataProvider fdp(data, size);
    const GuestMemory& mem = memory();
    (void)mem.fill(GuestAddress(0), 0, kMemSize);

    const unsigned pairs = fdp.ConsumeBool() ? 2 : 1;
    const uint16_t qsize = static_cast<uint16_t>(1u << fdp.ConsumeIntegralInRange<int>(0, 4));
    // rx0, tx0, (rx1, tx1 with two pairs,) control: always offered.
    std::vector<QueueConfig> rings{layout(kRxRing, qsize), layout(kTxRing, qsize)};
    if (pairs == 2)
        for (GuestAddress base : {kRx1Ring, kTx1Ring}) rings.push_back(layout(base, qsize));
    rings.push_back(layout(kCtrlRing, qsize));
    for (const QueueConfig& q : rings) write_descs(fdp, q);
    auto pick = [&]() -> const QueueConfig& {
        return rings[fdp.ConsumeIntegralInRange<size_t>(0, rings.size() - 1)];
    };
    // Scratch area: indirect tables, virtio-net headers and frames.
    auto blob = fdp.ConsumeBytes<uint8_t>(fdp.ConsumeIntegralInRange<size_t>(0, 8192));
    (void)mem.write(kScratch, blob);

    auto [backends, peers] = rv::test::FakeNetBackend::create_queues(pairs);
    for (const auto& peer : peers) {
        int sndbuf = 1 << 20;
        (void)::setsockopt(peer->peer.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    }
    auto created = VirtioNet::create(std::move(backends), {.mac = {0x52, 0x54, 0, 1, 2, 3}});
    if (!created) std::abort();
    VirtioNet& dev = **created;
    rv::test::NetFakeRegistrar events;
    auto irq = std::make_shared<rv::test::NetRecordingInterrupt>();

    uint64_t features = fdp.ConsumeIntegral<uint64_t>() & dev.device_features();
    if (fdp.ConsumeBool()) features |= kFVersion1;
    auto activate = [&] {
        const bool event_idx = features & kFRingEventIdx;
        const bool indirect = features & kFRingIndirectDesc;
        // The queues a driver with these features enables: both pairs with
        // MQ, the control queue (last) with CTRL_VQ.
        std::vector<const QueueConfig*> enabled{&rings[0], &rings[1]};
        if (pairs == 2 && (features & kNetFMq)) enabled = {&rings[0], &rings[1], &rings[2], &rings[3]};
        if (features & kNetFCtrlVq) enabled.push_back(&rings.back());
        std::vector<Queue> queues;
        for (const QueueConfig* q : enabled) {
            auto made = Queue::create(mem, *q, VirtioNet::kQueueSize, event_idx, indirect);
            if (!made) std::abort();  // the fixed layout is always valid
            queues.push_back(std::move(*made));
        }
        (void)dev.activate(ActivateArgs{.memory = mem,
                                        .interrupt = irq,
                                        .queues = std::move(queues),
                                        .acked_features = features,
                                        .events = events});
    };
    activate();

    std::vector<uint8_t> sink(70000);
    for (int step = 0; step < 64 && fdp.remaining_bytes() > 0; ++step) {
        switch (fdp.ConsumeIntegralInRange<int>(0, 10)) {
            case 0:  // any queue the device may have, and one past them
                dev.queue_notify(fdp.ConsumeIntegralInRange<uint16_t>(0, 2 * pairs + 1));
                break;
            case 1:
                dev.queue_notify(VirtioNet::kRxQueue);
                break;
            case 2: {  // a packet from the host network, header bytes included
                size_t len = fdp.ConsumeIntegralInRange<size_t>(0, kNetMaxPacketLen + 16);
                std::vector<uint8_t> packet(len);
                auto head = fdp.ConsumeBytes<uint8_t>(std::min<size_t>(len, 16));
                std::copy(head.begin(), head.end(), packet.begin());
                const auto& peer = peers[fdp.ConsumeIntegralInRange<size_t>(0, pairs - 1)];
                (void)::send(peer->peer.get(), packet.data(), packet.size(), MSG_DONTWAIT);
                break;
            }
            case 3:
                // Level-triggered like the real loop: a device that keeps its
                // fd ready without making progress would spin forever.
                if (events.run_until_idle(50) >= 50) std::abort();
                break;
            case 4:  // the host network drains what the guest sent
                for (const auto& peer : peers)
                    while (::recv(peer->peer.get(), sink.data(), sink.size(), MSG_DONTWAIT) > 0) {
                    }
                break;
            case 5:
                publish(fdp, pick(), fdp.ConsumeIntegralInRange<uint16_t>(0, 4));
                break;
            case 6:
                write_descs(fdp, pick());
                break;
            case 7: {  // raw pokes at ring flags / event indexes / avail idx
                const QueueConfig& q = pick();
                uint64_t off = fdp.ConsumeIntegralInRange<uint64_t>(0, 6 + 2ull * q.size);
                (void)mem.write_obj(GuestAddress(q.avail.value + off),
                                    fdp.ConsumeIntegral<uint16_t>());
                break;
            }
            case 8:
                dev.reset();
                if (fdp.ConsumeBool()) activate();
                break;
            case 9:  // the VM came back from a snapshot or a migration
                dev.on_resumed_elsewhere();
                break;
            case 10: {  // the device's own state, round trip or fuzzed bytes
                auto state = dev.save_state();
                if (fdp.ConsumeBool())
                    state = fdp.ConsumeBytes<uint8_t>(fdp.ConsumeIntegralInRange<size_t>(0, 4));
                (void)dev.restore_state(state);
                break;
            }
        }
    }
    if (events.run_until_idle(50) >= 50) std::abort();
    dev.reset();
    return 0;
}
