// libFuzzer target for the split virtqueue (src/devices/virtio/queue.cpp).
// The input chooses the queue size, negotiated ring features and ring
// layout, supplies the whole 64 KiB guest memory image (rings, descriptor
// tables, indirect tables, buffers) and a script of device operations, some
// of which let the "guest" rewrite memory between device steps. Nothing may
// crash, hang or trip a sanitizer.
//
// Input layout:
//   [0]     features: bit0 EVENT_IDX, bit1 INDIRECT_DESC, bit2 fuzz-chosen ring
//           addresses (else a valid packed layout), bit3 fold descriptor
//           addresses/lengths into RAM (helps the fuzzer reach deep paths)
//   [1]     log2 of the queue size (mod 10: 1..512)
//   [2..7]  ring addresses when bit2 is set (3 x u16, in 64 KiB)
//   [8..39] operation script (32 ops)
//   [40..]  guest memory image, copied from address 0
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>

#include "devices/virtio/queue.h"
#include "memory/guest_memory.h"

namespace {

using rv::GuestAddress;
using rv::GuestMemory;
using namespace rv::virtio;

constexpr uint64_t kMemSize = 64 * 1024;
constexpr size_t kHeader = 8;
constexpr size_t kOps = 32;
constexpr size_t kMaxIo = 4096;  // bytes copied per chain, keeps each input fast

GuestMemory& memory() {
    // One mapping for the whole run; each input rewrites it completely.
    static GuestMemory mem = [] {
        GuestMemory::RegionSpec spec{GuestAddress(0), kMemSize};
        auto m = GuestMemory::create(std::span(&spec, 1));
        if (!m) __builtin_trap();
        return std::move(*m);
    }();
    return mem;
}

uint16_t u16_at(const uint8_t* p) {
    uint16_t v;
    std::memcpy(&v, p, 2);
    return v;
}

void fold_descriptors(const GuestMemory& mem, const QueueConfig& c) {
    for (uint32_t i = 0; i < c.size; ++i) {
        GuestAddress at(c.desc.value + 16ull * i);
        auto d = mem.read_obj<VirtqDesc>(at);
        if (!d) return;
        d->addr &= kMemSize - 1;
        d->len &= 0x3fff;
        (void)mem.write_obj(at, *d);
    }
}

// Exercise the copy paths on a chain, then hand it back.
void consume(const GuestMemory& mem, Queue& queue, const DescriptorChain& chain, uint8_t op) {
    std::array<uint8_t, kMaxIo> buf{};
    ChainReader reader(mem, chain);
    if (op & 0x10) (void)reader.skip(op);
    (void)reader.read(std::span(buf).first(std::min<size_t>(kMaxIo, op * 16 + 1)));
    (void)reader.read_obj<uint64_t>();
    ChainWriter writer(mem, chain);
    auto scatter = writer.remaining_buffers();
    (void)scatter;
    (void)writer.write(std::span(buf).first(std::min<size_t>(kMaxIo, op * 8)));
    if (op & 0x20) (void)writer.advance(op);
    uint32_t written = static_cast<uint32_t>(writer.written());
    (void)queue.add_used(mem, chain.head, written);
    (void)chain.readable_bytes();
    (void)chain.writable_bytes();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < kHeader + kOps) return 0;
    const GuestMemory& mem = memory();
    uint8_t features = data[0];
    uint16_t qsize = static_cast<uint16_t>(1u << (data[1] % 10));

    // Guest memory image: input bytes from 0, zeros after.
    (void)mem.fill(GuestAddress(0), 0, kMemSize);
    size_t image = std::min<size_t>(size - kHeader - kOps, kMemSize);
    (void)mem.write(GuestAddress(0), std::span(data + kHeader + kOps, image));

    QueueConfig config;
    if (features & 4) {
        config = {qsize, GuestAddress(u16_at(data + 2)), GuestAddress(u16_at(data + 4)),
                  GuestAddress(u16_at(data + 6))};
    } else {
        // Packed layout at 0x1000, as a Linux driver would lay it out.
        uint64_t avail = 0x1000 + 16ull * qsize;
        uint64_t used = (avail + 6 + 2ull * qsize + 3) & ~3ull;
        config = {qsize, GuestAddress(0x1000), GuestAddress(avail), GuestAddress(used)};
    }
    auto created = Queue::create(mem, config, kMaxQueueSize, features & 1, features & 2);
    if (!created) return 0;
    Queue queue = std::move(*created);
    if (features & 8) fold_descriptors(mem, config);

    std::optional<DescriptorChain> last;
    bool can_undo = false;
    const uint8_t* ops = data + kHeader;
    for (size_t i = 0; i < kOps; ++i) {
        uint8_t op = ops[i];
        switch (op & 7) {
            case 0:
            case 1: {  // pop and complete
                auto r = queue.pop(mem);
                can_undo = r && *r;
                if (r && *r) {
                    consume(mem, queue, **r, op);
                    last = std::move(*r);
                }
                break;
            }
            case 2:  // pop, then give it back
                if (can_undo) queue.undo_pop();
                can_undo = false;
                break;
            case 3:
                (void)queue.needs_notification(mem);
                break;
            case 4:
                (void)queue.enable_notification(mem);
                break;
            case 5:
                (void)queue.disable_notification(mem);
                break;
            case 6:  // a stray or repeated completion (bogus heads must be rejected)
                (void)queue.add_used(mem, last ? last->head : static_cast<uint16_t>(op << 5), op);
                break;
            case 7: {  // the guest bumps avail idx behind the device's back
                GuestAddress at(config.avail.value + 2);
                uint16_t idx =
                    static_cast<uint16_t>(mem.read_obj<uint16_t>(at).value_or(0) + (op >> 3));
                (void)mem.write_obj(GuestAddress(config.avail.value + 2), idx);
                break;
            }
        }
    }
    return 0;
}
