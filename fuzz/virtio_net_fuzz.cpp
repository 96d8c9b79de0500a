// Fuzzes virtio-net with hostile rings: the input lays out rx/tx descriptor
// tables, indirect tables and avail rings in a small two-region guest
// memory, picks the negotiated features, then plays a sequence of driver
// notifications, packets from the host side, event-loop passes, ring pokes
// and resets. The device must neither crash nor make the event loop spin.
#include <fuzzer/FuzzedDataProvider.h>
#include <sys/socket.h>

#include <array>
#include <cstdlib>

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

    const uint16_t qsize = static_cast<uint16_t>(1u << fdp.ConsumeIntegralInRange<int>(0, 4));
    const QueueConfig rx = layout(kRxRing, qsize);
    const QueueConfig tx = layout(kTxRing, qsize);
    write_descs(fdp, rx);
    write_descs(fdp, tx);
    // Scratch area: indirect tables, virtio-net headers and frames.
    auto blob = fdp.ConsumeBytes<uint8_t>(fdp.ConsumeIntegralInRange<size_t>(0, 8192));
    (void)mem.write(kScratch, blob);

    auto [backend, net] = rv::test::FakeNetBackend::create();
    int sndbuf = 1 << 20;
    (void)::setsockopt(net->peer.get(), SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    auto created = VirtioNet::create(std::move(backend), {.mac = {0x52, 0x54, 0, 1, 2, 3}});
    if (!created) std::abort();
    VirtioNet& dev = **created;
    rv::test::NetFakeRegistrar events;
    auto irq = std::make_shared<rv::test::NetRecordingInterrupt>();

    uint64_t features = fdp.ConsumeIntegral<uint64_t>() & dev.device_features();
    if (fdp.ConsumeBool()) features |= kFVersion1;
    auto activate = [&] {
        const bool event_idx = features & kFRingEventIdx;
        const bool indirect = features & kFRingIndirectDesc;
        auto rq = Queue::create(mem, rx, VirtioNet::kQueueSize, event_idx, indirect);
        auto tq = Queue::create(mem, tx, VirtioNet::kQueueSize, event_idx, indirect);
        if (!rq || !tq) std::abort();  // the fixed layout is always valid
        std::vector<Queue> queues;
        queues.push_back(std::move(*rq));
        queues.push_back(std::move(*tq));
        (void)dev.activate(ActivateArgs{.memory = mem,
                                        .interrupt = irq,
                                        .queues = std::move(queues),
                                        .acked_features = features,
                                        .events = events});
    };
    activate();

    std::vector<uint8_t> sink(70000);
    for (int step = 0; step < 64 && fdp.remaining_bytes() > 0; ++step) {
        switch (fdp.ConsumeIntegralInRange<int>(0, 8)) {
            case 0:
                dev.queue_notify(VirtioNet::kTxQueue);
                break;
            case 1:
                dev.queue_notify(VirtioNet::kRxQueue);
                break;
            case 2: {  // a packet from the host network, header bytes included
                size_t len = fdp.ConsumeIntegralInRange<size_t>(0, kNetMaxPacketLen + 16);
                std::vector<uint8_t> packet(len);
                auto head = fdp.ConsumeBytes<uint8_t>(std::min<size_t>(len, 16));
                std::copy(head.begin(), head.end(), packet.begin());
                (void)::send(net->peer.get(), packet.data(), packet.size(), MSG_DONTWAIT);
                break;
            }
            case 3:
                // Level-triggered like the real loop: a device that keeps its
                // fd ready without making progress would spin forever.
                if (events.run_until_idle(50) >= 50) std::abort();
                break;
            case 4:  // the host network drains what the guest sent
                while (::recv(net->peer.get(), sink.data(), sink.size(), MSG_DONTWAIT) > 0) {
                }
                break;
            case 5:
                publish(fdp, fdp.ConsumeBool() ? rx : tx,
                        fdp.ConsumeIntegralInRange<uint16_t>(0, 4));
                break;
            case 6:
                write_descs(fdp, fdp.ConsumeBool() ? rx : tx);
                break;
            case 7: {  // raw pokes at ring flags / event indexes / avail idx
                const QueueConfig& q = fdp.ConsumeBool() ? rx : tx;
                uint64_t off = fdp.ConsumeIntegralInRange<uint64_t>(0, 6 + 2ull * q.size);
                (void)mem.write_obj(GuestAddress(q.avail.value + off),
                                    fdp.ConsumeIntegral<uint16_t>());
                break;
            }
            case 8:
                dev.reset();
                if (fdp.ConsumeBool()) activate();
                break;
        }
    }
    if (events.run_until_idle(50) >= 50) std::abort();
    dev.reset();
    return 0;
}
