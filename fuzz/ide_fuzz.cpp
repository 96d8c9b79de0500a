// Fuzzes the PIIX IDE controller: the input is a little program of port,
// bus-master and config-space accesses, pokes into guest memory (PRD tables,
// DMA data), data-port bursts and completion deliveries. Guest memory is
// 64 KiB in two adjacent regions so DMA regions can straddle them; the disks
// are 64 KiB memfds on the sync engine (primary master read-write, primary
// slave read-only, secondary master read-write). Nothing may crash, hang or
// grow without bound; the controller is destroyed (draining I/O) at the end.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "backends/block/block_backend.h"
#include "base/log.h"
#include "devices/legacy/ide/piix_ide.h"

namespace {

using namespace rv;

constexpr uint64_t kMemSize = 64 << 10;
constexpr uint64_t kDiskSize = 64 << 10;

class Input {
  public:
    Input(const uint8_t* data, size_t size) : m_data(data), m_size(size) {}
    bool empty() const { return m_pos >= m_size; }
    uint8_t u8() { return m_pos < m_size ? m_data[m_pos++] : 0; }
    uint16_t u16() { return static_cast<uint16_t>(u8() | (u8() << 8)); }
    uint32_t u32() { return u16() | (uint32_t{u16()} << 16); }

  private:
    const uint8_t* m_data;
    size_t m_size;
    size_t m_pos{0};
};

class NullIrq final : public IrqLine {
  public:
    void set_level(bool) override {}
};

// Records the completion handlers so the program can deliver completions.
class Registrar final : public EventRegistrar {
  public:
    Result<void> add(int fd, uint32_t, std::function<void(uint32_t)> handler) override {
        handlers.emplace_back(fd, std::move(handler));
        return {};
    }
    void remove(int fd) override {
        std::erase_if(handlers, [fd](const auto& h) { return h.first == fd; });
    }
    void pump() {
        auto copy = handlers;
        for (auto& [fd, handler] : copy) handler(1);
    }
    std::vector<std::pair<int, std::function<void(uint32_t)>>> handlers;
};

std::string disk_path(int index) {
    static int fds[3] = {-1, -1, -1};
    if (fds[index] < 0) {
        fds[index] = ::memfd_create("ide-fuzz", MFD_CLOEXEC);
        if (fds[index] < 0 || ::ftruncate(fds[index], kDiskSize) < 0) std::abort();
    }
    return "/proc/self/fd/" + std::to_string(fds[index]);
}

unsigned width(uint8_t selector) {
    static constexpr unsigned kWidths[] = {1, 2, 4, 2};
    return kWidths[selector & 3];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    log::set_level(log::Level::Off);
    GuestMemory::RegionSpec specs[] = {{GuestAddress(0), kMemSize / 2},
                                       {GuestAddress(kMemSize / 2), kMemSize / 2}};
    auto memory = GuestMemory::create(specs);
    if (!memory) std::abort();

    std::array<std::optional<IdeDrive>, 4> drives;
    for (int i : {0, 1, 2}) {
        BlockOptions options{.read_only = i == 1, .engine = BlockOptions::Engine::Sync};
        auto backend = BlockBackend::open(disk_path(i), options);
        if (!backend) std::abort();
        drives[i == 2 ? 2 : i] = IdeDrive{std::move(*backend), "FUZZ"};
    }
    Registrar events;
    auto created = PiixIde::create(*memory, std::move(drives), std::make_shared<NullIrq>(),
                                   std::make_shared<NullIrq>(), events);
    if (!created) std::abort();
    std::shared_ptr<PiixIde> ide = std::move(*created);
    // Bus mastering on, as ata_piix leaves it.
    uint8_t command[2] = {0x05, 0x00};
    ide->config_write(0x04, command);

    Input in(data, size);
    uint8_t buf[4096];
    for (int step = 0; step < 4096 && !in.empty(); ++step) {
        uint8_t op = in.u8();
        unsigned channel = op >> 7;
        switch (op & 0x0F) {
            case 0: {  // task-file write
                uint8_t reg = in.u8() & 7;
                uint8_t value = in.u8();
                ide->command_block(channel)->write(reg, std::span(&value, 1));
                break;
            }
            case 1: {  // register read, any width
                uint8_t sel = in.u8();
                unsigned reg = sel & 7;
                unsigned w = reg == 0 ? width(sel >> 3) : 1;
                ide->command_block(channel)->read(reg, std::span(buf, w));
                break;
            }
            case 2: {
                uint8_t value = in.u8();
                ide->control_block(channel)->write(0, std::span(&value, 1));
                break;
            }
            case 3:
                ide->control_block(channel)->read(0, std::span(buf, 1));
                break;
            case 4: {  // BMIDE write
                uint8_t sel = in.u8();
                uint32_t value = in.u32();
                uint8_t bytes[4] = {uint8_t(value), uint8_t(value >> 8), uint8_t(value >> 16),
                                    uint8_t(value >> 24)};
                unsigned w = width(sel >> 4);
                ide->bar_write(4, (sel & 0x0F) & ~(w - 1), std::span(bytes, w));
                break;
            }
            case 5: {
                uint8_t sel = in.u8();
                unsigned w = width(sel >> 4);
                ide->bar_read(4, (sel & 0x0F) & ~(w - 1), std::span(buf, w));
                break;
            }
            case 6: {  // config write
                uint8_t offset = in.u8();
                uint32_t value = in.u32();
                uint8_t bytes[4] = {uint8_t(value), uint8_t(value >> 8), uint8_t(value >> 16),
                                    uint8_t(value >> 24)};
                unsigned w = width(offset);
                ide->config_write(static_cast<uint16_t>(offset & ~(w - 1)), std::span(bytes, w));
                break;
            }
            case 7: {
                uint8_t offset = in.u8();
                unsigned w = width(offset);
                ide->config_read(static_cast<uint16_t>(offset & ~(w - 1)), std::span(buf, w));
                break;
            }
            case 8: {  // poke guest memory
                uint16_t addr = in.u16();
                uint8_t len = in.u8() & 31;
                for (unsigned i = 0; i < len; ++i) buf[i] = in.u8();
                (void)memory->write(GuestAddress(addr), std::span(buf, len));
                break;
            }
            case 9: {  // a PRD entry, mostly pointing into guest RAM
                uint8_t index = in.u8();
                uint32_t addr = in.u8() & 0x80 ? in.u32() : in.u16();
                uint16_t count = in.u16();
                uint16_t flags = in.u8() & 1 ? 0x8000 : 0;
                uint8_t entry[8] = {uint8_t(addr),       uint8_t(addr >> 8), uint8_t(addr >> 16),
                                    uint8_t(addr >> 24), uint8_t(count),     uint8_t(count >> 8),
                                    uint8_t(flags),      uint8_t(flags >> 8)};
                (void)memory->write(GuestAddress(0x100 + 8ull * index), entry);
                break;
            }
            case 10:
                events.pump();
                break;
            case 11: {  // data-port burst
                uint8_t sel = in.u8();
                unsigned w = width(sel);
                unsigned count = (in.u8() + 1u) * 4;
                for (unsigned i = 0; i < count; ++i) {
                    if (sel & 0x80) {
                        buf[0] = buf[1] = buf[2] = buf[3] = static_cast<uint8_t>(i);
                        ide->command_block(channel)->write(0, std::span(buf, w));
                    } else {
                        ide->command_block(channel)->read(0, std::span(buf, w));
                    }
                }
                break;
            }
            case 12: {  // a plausible command: registers, then the opcode
                static constexpr uint8_t kOps[] = {0x20, 0x24, 0x25, 0x29, 0x30, 0x34, 0x35, 0x39,
                                                   0x40, 0x42, 0x90, 0x91, 0xC4, 0xC5, 0xC6, 0xC8,
                                                   0xCA, 0xE5, 0xE7, 0xEA, 0xEC, 0xEF, 0xA1, 0x00};
                uint8_t regs[6] = {in.u8(), in.u8(), in.u8(), in.u8(), in.u8(), in.u8()};
                for (unsigned r = 1; r <= 6; ++r)
                    ide->command_block(channel)->write(r, std::span(&regs[r - 1], 1));
                uint8_t opcode = kOps[in.u8() % sizeof(kOps)];
                ide->command_block(channel)->write(7, std::span(&opcode, 1));
                break;
            }
            case 13: {  // start the bus master on the fuzz PRD table
                uint8_t prd[4] = {0x00, 0x01, 0, 0};
                ide->bar_write(4, channel * 8 + 4, prd);
                uint8_t start = static_cast<uint8_t>((in.u8() & 0x08) | 1);
                ide->bar_write(4, channel * 8, std::span(&start, 1));
                break;
            }
            default:
                break;
        }
    }
    events.pump();
    ide.reset();
    return 0;
}
