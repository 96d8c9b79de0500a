// Fuzzes virtio-blk request handling: the input is a little program that
// builds descriptor chains (plain and indirect, with fuzzed headers, lengths
// and payloads), pokes raw bytes anywhere in guest memory (rings included),
// kicks the queue, delivers completions, and resets/re-activates the device.
// Guest memory is 64 KiB in two adjacent regions so buffers can straddle
// them; the disk is a 64 KiB temp image on the sync engine.
#include <sys/epoll.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <stdexcept>

#include "backends/block/block_backend.h"
#include "base/log.h"
#include "devices/virtio/blk/blk_device.h"
#include "support/fake_driver_queue.h"

namespace {

using namespace rv;

constexpr uint64_t kMemSize = 64 << 10;
constexpr uint64_t kDiskSize = 64 << 10;
constexpr uint16_t kQueueSize = 16;

class Input {
  public:
    Input(const uint8_t* data, size_t size) : m_data(data), m_size(size) {}
    bool empty() const { return m_pos >= m_size; }
    uint8_t u8() { return m_pos < m_size ? m_data[m_pos++] : 0; }
    uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }
    uint64_t u64() {
        uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v |= static_cast<uint64_t>(u8()) << (8 * i);
        return v;
    }
    std::vector<uint8_t> bytes(size_t n) {
        std::vector<uint8_t> out;
        for (size_t i = 0; i < n && !empty(); ++i) out.push_back(u8());
        return out;
    }

  private:
    const uint8_t* m_data;
    size_t m_size;
    size_t m_pos{0};
};

class NullRegistrar final : public EventRegistrar {
  public:
    Result<void> add(int, uint32_t, std::function<void(uint32_t)>) override { return {}; }
    void remove(int) override {}
};

class NullInterrupt final : public virtio::Interrupt {
  public:
    void signal_used_queue(uint16_t) override {}
    void signal_config_change() override {}
};

struct Globals {
    std::string image;
    Globals() {
        log::set_level(log::Level::Off);
        char path[] = "/tmp/rv_blk_fuzz_XXXXXX";
        int fd = ::mkstemp(path);
        if (fd < 0 || ::ftruncate(fd, kDiskSize) < 0) std::abort();
        ::close(fd);
        image = path;
    }
    ~Globals() { ::unlink(image.c_str()); }
};

std::vector<uint8_t> header(Input& in) {
    static constexpr uint32_t kTypes[] = {0, 1, 4, 8, 11, 13, 14, 99};
    virtio::blk::BlkReqHeader h{kTypes[in.u8() % 8], 0, 0};
    uint8_t sel = in.u8();
    h.sector = sel < 200 ? sel : (sel < 250 ? in.u16() : in.u64());
    std::vector<uint8_t> out(sizeof(h));
    std::memcpy(out.data(), &h, sizeof(h));
    return out;
}

void build_chain(Input& in, test::FakeDriverQueue& driver) {
    int count = 1 + in.u8() % 5;
    bool indirect = in.u8() & 1;
    std::vector<test::BufferSpec> buffers;
    for (int i = 0; i < count; ++i) {
        uint8_t kind = in.u8();
        bool writable = kind & 1;
        static constexpr uint32_t kLens[] = {0, 1, 16, 20, 512, 1024, 33, 4096};
        uint32_t len = (kind & 0x80) ? in.u16() % 8192 : kLens[(kind >> 1) % 8];
        if (!writable && i == 0 && (kind & 0x10) == 0) {
            auto h = header(in);
            if (kind & 0x20) {  // segments for DISCARD / WRITE_ZEROES
                for (int s = 0; s < 1 + (kind & 0x40 ? 1 : 0); ++s) {
                    virtio::blk::BlkDiscardSegment seg{in.u8(), in.u8(), in.u8() % 3u};
                    const auto* p = reinterpret_cast<const uint8_t*>(&seg);
                    h.insert(h.end(), p, p + sizeof(seg));
                }
            }
            buffers.emplace_back(h, false);
        } else if (!writable) {
            auto data = in.bytes(std::min<uint32_t>(len, 64));
            data.resize(len);
            buffers.emplace_back(data, false);
        } else {
            buffers.emplace_back(len, true);
        }
    }
    if (indirect)
        driver.add_indirect_chain(buffers);
    else
        driver.add_chain(buffers);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static Globals globals;
    if (::truncate(globals.image.c_str(), 0) < 0 ||
        ::truncate(globals.image.c_str(), kDiskSize) < 0)
        return 0;
    Input in(data, size);
    bool read_only = in.u8() & 1;

    GuestMemory::RegionSpec specs[] = {{GuestAddress(0), kMemSize / 2},
                                       {GuestAddress(kMemSize / 2), kMemSize / 2}};
    auto memory = GuestMemory::create(specs);
    if (!memory) std::abort();
    auto config = test::FakeDriverQueue::packed_layout(kQueueSize, GuestAddress(0));
    auto backend = BlockBackend::open(
        globals.image, {.read_only = read_only, .engine = BlockOptions::Engine::Sync});
    if (!backend) std::abort();
    NullRegistrar events;
    auto irq = std::make_shared<NullInterrupt>();
    virtio::VirtioBlk dev(std::move(*backend), "fuzz");
    uint64_t features =
        dev.device_features() & ~(static_cast<uint64_t>(in.u8()) << 28 & (3ull << 28));

    auto driver = std::make_unique<test::FakeDriverQueue>(*memory, config, GuestAddress(0x1000),
                                                          kMemSize - 0x1000);
    auto activate = [&] {
        auto queue =
            driver->create_queue(virtio::VirtioBlk::kQueueSize, features & virtio::kFRingEventIdx,
                                 features & virtio::kFRingIndirectDesc);
        if (!queue) return;
        std::vector<virtio::Queue> queues;
        queues.push_back(std::move(*queue));
        (void)dev.activate({*memory, irq, std::move(queues), features, events});
    };
    activate();

    for (int steps = 0; !in.empty() && steps < 256; ++steps) {
        try {
            switch (in.u8() % 7) {
                case 0:
                case 1:
                    build_chain(in, *driver);
                    break;
                case 2: {  // raw poke anywhere, rings included
                    uint64_t at = in.u16() % kMemSize;
                    auto bytes = in.bytes(in.u8() % 32);
                    (void)memory->write(GuestAddress(at), bytes);
                    break;
                }
                case 3:
                    dev.queue_notify(in.u8() % 2);
                    break;
                case 4:
                    dev.process_completions();
                    break;
                case 5:
                    while (driver->pop_used()) {
                    }
                    break;
                case 6:
                    dev.reset();
                    driver = std::make_unique<test::FakeDriverQueue>(
                        *memory, config, GuestAddress(0x1000), kMemSize - 0x1000);
                    activate();
                    break;
            }
        } catch (const std::exception&) {
            // The fake driver ran out of descriptors or saw a poked ring.
        }
    }
    dev.queue_notify(0);
    for (int i = 0; i < 4; ++i) dev.process_completions();
    dev.reset();
    return 0;
}
