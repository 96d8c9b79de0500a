// libFuzzer target for the e1000: the input is a program of register reads
// and writes (BAR0 and the BAR1 I/O window, any width), guest memory pokes
// (so rings and descriptors can say anything), frames arriving from the
// backend, event-loop passes and ITR timer expiries, over 256 KiB of guest
// memory. Nothing may crash, hang or grow without bound.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/log.h"
#include "devices/legacy/e1000/e1000.h"
#include "support/fake_net_backend.h"
#include "support/recording_irq_line.h"

namespace {

using namespace rv;
using namespace rv::e1000;

constexpr uint64_t kMemSize = 256 * 1024;

// Registers worth hitting often; raw offsets cover the rest.
constexpr std::array<uint32_t, 32> kHot{
    reg::kCtrl,   reg::kEecd,   reg::kEerd,   reg::kMdic,  reg::kIcr,   reg::kItr,   reg::kIcs,
    reg::kIms,    reg::kImc,    reg::kRctl,   reg::kTctl,  reg::kRdbal, reg::kRdbah, reg::kRdlen,
    reg::kRdh,    reg::kRdt,    reg::kTdbal,  reg::kTdbah, reg::kTdlen, reg::kTdh,   reg::kTdt,
    reg::kVet,    reg::kMta,    reg::kRal0,   reg::kRah0,  reg::kVfta,  stat::kGprc, stat::kGorch,
    reg::kStatus, reg::kRxcsum, reg::kTxdctl, 0x1F000};

class Input {
  public:
    Input(const uint8_t* data, size_t size) : m_data(data), m_size(size) {}
    bool empty() const { return m_pos >= m_size; }
    uint8_t u8() { return m_pos < m_size ? m_data[m_pos++] : 0; }
    uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }
    uint32_t u32() { return u16() | (uint32_t{u16()} << 16); }
    std::span<const uint8_t> bytes(size_t n) {
        n = std::min(n, m_size - std::min(m_pos, m_size));
        std::span<const uint8_t> out(m_data + m_pos, n);
        m_pos += n;
        return out;
    }

  private:
    const uint8_t* m_data;
    size_t m_size;
    size_t m_pos{0};
};

struct Fixture {
    Fixture() {
        log::set_level(log::Level::Off);
        GuestMemory::RegionSpec spec{GuestAddress(0), kMemSize};
        memory = std::move(*GuestMemory::create(std::span(&spec, 1)));
    }
    GuestMemory memory;
};

uint32_t pick_offset(Input& in) {
    uint8_t sel = in.u8();
    if (sel < 200) return kHot[sel % kHot.size()] + 4 * (in.u8() % 4 == 0 ? in.u8() % 32 : 0);
    return in.u32() % (kMmioBarSize + 16);  // raw, including just past the BAR
}

void write32(E1000& dev, uint32_t offset, uint32_t value) {
    std::array<uint8_t, 4> b{};
    store_le(b, value);
    dev.bar_write(kMmioBar, offset, b);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static Fixture fixture;
    GuestMemory& mem = fixture.memory;
    (void)mem.fill(GuestAddress(0), 0, kMemSize);

    test::PollingRegistrar events;
    auto [backend, peer] = test::FakeNetBackend::create();
    uint64_t now = 0;
    E1000Config config{.mac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56},
                       .clock_ns = [&now] { return now; }};
    auto created = E1000::create(mem, std::move(backend), config, events);
    if (!created) return 0;
    std::shared_ptr<E1000> dev = *created;
    auto irq = std::make_shared<test::RecordingIrqLine>();
    dev->assign_intx(irq);

    uint32_t tx_base = 0;
    uint32_t tx_tail = 0;
    Input in(data, size);
    for (int steps = 0; steps < 4096 && !in.empty(); ++steps) {
        uint8_t op = in.u8();
        switch (op % 11) {
            case 0:
            case 1: {  // MMIO write / read, width 1, 2, 4 or 8
                uint32_t offset = pick_offset(in);
                size_t width = size_t{1} << (in.u8() % 4);
                std::array<uint8_t, 8> b{};
                if (op % 11 == 0) {
                    uint64_t v = uint64_t{in.u32()} | (uint64_t{in.u32()} << 32);
                    store_le(b, v);
                    dev->bar_write(kMmioBar, offset, std::span(b.data(), width));
                } else {
                    dev->bar_read(kMmioBar, offset, std::span(b.data(), width));
                }
                break;
            }
            case 2:
            case 3: {  // I/O BAR
                uint64_t offset = in.u8() % 72;
                size_t width = size_t{1} << (in.u8() % 3);
                std::array<uint8_t, 4> b{};
                store_le(b, in.u32());
                if (op % 11 == 2)
                    dev->bar_write(kIoBar, offset, std::span(b.data(), width));
                else
                    dev->bar_read(kIoBar, offset, std::span(b.data(), width));
                break;
            }
            case 4: {  // poke guest memory (descriptors, buffers)
                uint64_t addr = in.u32() % kMemSize;
                auto bytes = in.bytes(in.u8() % 64 + 1);
                (void)mem.write(GuestAddress(addr), bytes);
                break;
            }
            case 5: {  // a frame from the network (virtio-net header + frame)
                size_t len = in.u16() % 3000;
                std::vector<uint8_t> packet(len, 0);
                auto bytes = in.bytes(std::min<size_t>(len, 64));
                std::copy(bytes.begin(), bytes.end(), packet.begin());
                (void)peer->send(packet);
                break;
            }
            case 6:
                events.run_until_idle(8);
                break;
            case 7:
                now += uint64_t{in.u16()} * 256;
                dev->on_itr_timer();
                break;
            case 8:
                // What the guest sent: any offload header must point inside
                // its frame (the tap would refuse it otherwise).
                for (const auto& p : peer->receive_all()) {
                    if (p.size() < 12) __builtin_trap();
                    size_t frame = p.size() - 12;
                    auto u16 = [&](size_t at) { return size_t(p[at] | (p[at + 1] << 8)); };
                    if ((p[0] & 1) && u16(6) + u16(8) + 2 > frame) __builtin_trap();
                    if (p[1] != 0 &&
                        (!(p[0] & 1) || u16(4) == 0 || u16(2) >= frame || (p[1] != 1 && p[1] != 4)))
                        __builtin_trap();
                }
                break;
            case 9: {  // shortcut: a sane TX and RX ring, as a driver sets them up
                uint32_t tx = (in.u8() % 16) * 0x1000;
                uint32_t rx = 0x10000 + (in.u8() % 16) * 0x1000;
                write32(*dev, reg::kTdbal, tx);
                write32(*dev, reg::kTdlen, 128 * (1 + in.u8() % 4));
                write32(*dev, reg::kTdh, 0);
                write32(*dev, reg::kTdt, 0);
                write32(*dev, reg::kTctl, kTctlEn | kTctlPsp);
                tx_base = tx;
                tx_tail = 0;
                write32(*dev, reg::kRdbal, rx);
                write32(*dev, reg::kRdlen, 128);
                write32(*dev, reg::kRdh, 0);
                write32(*dev, reg::kRdt, in.u8() % 8);
                write32(*dev, reg::kRctl, in.u32() | kRctlEn);
                break;
            }
            case 10: {  // shortcut: post a descriptor (fuzzed bytes, buffer in RAM) and kick
                std::array<uint8_t, 16> d{};
                auto bytes = in.bytes(16);
                std::copy(bytes.begin(), bytes.end(), d.begin());
                uint64_t addr = 0x20000 + (load_le(std::span(d).first(4)) % 0x20000);
                if (in.u8() & 1) store_le(std::span(d).first(8), addr);  // else: raw address
                (void)mem.write(GuestAddress(tx_base + 16ull * (tx_tail % 8)), d);
                tx_tail = (tx_tail + 1) % 8;
                if (in.u8() & 1) write32(*dev, reg::kTdt, tx_tail);
                break;
            }
        }
    }
    // Whatever the state, the level must agree with what a guest could see.
    (void)irq->level();
    return 0;
}
