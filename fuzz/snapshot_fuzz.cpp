// libFuzzer target for the snapshot file parser and the device State
// decoders and restore()s (src/snapshot, the legacy devices, PCI config space
// and MSI-X). A snapshot file is user input: nothing in it may crash, hang,
// trip a sanitizer or leave a device answering out of range.
//
// Input layout:
//   [0]   bit0: append a correct CRC-64 (so the fuzzer gets past the
//         checksum into the section parser); bit1: prepend a valid header
//   [1..] the file (or, with bit1, what follows the header)
// Every parsed section whose id names a device below is decoded as that
// device's State and restored into a fresh device, which is then read.
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "devices/legacy/acpi_pm.h"
#include "devices/legacy/cmos_rtc.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/uart16550.h"
#include "devices/pci/config_space.h"
#include "devices/pci/msix.h"
#include "devices/virtio/pci_transport.h"
#include "devices/virtio/rng/rng_device.h"
#include "snapshot/snapshot_file.h"
#include "snapshot/state_codec.h"

namespace {

using namespace rv;

struct NullIrq final : IrqLine {
    void set_level(bool) override {}
};

struct NullRouter final : MsiRouter {
    uint32_t next{24};
    Result<uint32_t> allocate_gsi() override { return next++; }
    Result<void> set_route(uint32_t, MsiMessage) override { return {}; }
    void trigger(uint32_t) override {}
};

// Holds handlers; never runs them (the fuzzer calls queue_notify itself).
struct NullEvents final : EventRegistrar {
    Result<void> add(int, uint32_t, std::function<void(uint32_t)>) override { return {}; }
    void remove(int) override {}
};

template <typename S, typename Apply>
void try_restore(const snapshot::Section& s, Apply&& apply) {
    auto state = snapshot::decode<S>(s.data, s.id);
    if (!state) return;
    // What decodes must encode back to the same bytes.
    if (snapshot::encode(*state) != s.data) __builtin_trap();
    apply(*state);
}

void read_all(BusDevice& d, uint64_t len) {
    for (uint64_t off = 0; off < len; ++off) {
        uint8_t b = 0;
        d.read(off, std::span(&b, 1));
    }
}

void exercise(const snapshot::SnapshotFile& file) {
    auto irq = std::make_shared<NullIrq>();
    for (const snapshot::Section& s : file.sections) {
        if (s.id == "uart") {
            try_restore<Uart16550::State>(s, [&](const auto& st) {
                Uart16550 uart(irq, [](std::span<const uint8_t>) {});
                if (uart.restore(st)) {
                    if (uart.save() != st) __builtin_trap();
                    read_all(uart, Uart16550::kRegisterCount);
                    read_all(uart, Uart16550::kRegisterCount);
                }
            });
        } else if (s.id == "rtc") {
            try_restore<CmosRtc::State>(s, [&](const auto& st) {
                CmosRtc rtc([] { return int64_t{1'800'000'000}; });
                if (rtc.restore(st)) {
                    for (uint8_t i = 0; i < 0x80; ++i) {
                        rtc.write(0, std::span(&i, 1));
                        read_all(rtc, CmosRtc::kLength);
                    }
                }
            });
        } else if (s.id == "i8042") {
            try_restore<I8042::State>(s, [&](const auto& st) {
                auto kbc = I8042::create(irq, [] {});
                if (kbc->restore(st)) {
                    for (int i = 0; i < 40; ++i) {
                        kbc->read_status();
                        kbc->read_data();
                    }
                    kbc->write_data(0xff);
                    (void)kbc->send_ctrl_alt_del();
                }
            });
        } else if (s.id == "acpi_pm") {
            try_restore<AcpiPmDevice::State>(s, [&](const auto& st) {
                AcpiPmDevice pm([] {}, irq);
                if (pm.restore(st)) read_all(pm, AcpiPmDevice::kLength);
            });
        } else if (s.id == "pci") {
            try_restore<PciConfigSpace::State>(s, [&](const auto& st) {
                PciConfigSpace c(PciHeader{.vendor_id = 0x1af4, .device_id = 0x1041});
                (void)c.add_bar(PciBarInfo{.index = 4, .size = 0x8000, .is_64bit = true});
                if (c.restore(st)) {
                    std::array<uint8_t, 4> b{};
                    for (uint16_t off = 0; off < kPciConfigSize; off += 4) c.read(off, b);
                    (void)c.bar_address(4);
                }
            });
        } else if (s.id == "virtio") {
            // A transport re-activating a real device (virtio-rng) from
            // arbitrary registers and ring positions over 1 MiB of RAM whose
            // contents are the section's own bytes, then served.
            try_restore<virtio::VirtioPciTransport::State>(s, [&](const auto& st) {
                std::array<GuestMemory::RegionSpec, 1> spec{{{GuestAddress{0}, 1 << 20}}};
                auto memory = GuestMemory::create(spec);
                if (!memory) return;
                (void)memory->write(GuestAddress{0}, std::span(s.data).first(std::min<size_t>(s.data.size(), 1 << 20)));
                NullRouter router;
                NullEvents events;
                auto rng = std::make_shared<virtio::VirtioRng>(virtio::VirtioRng::EntropySource{});
                auto t = virtio::VirtioPciTransport::create(rng, *memory, router, events);
                if (!t) return;
                if ((*t)->restore(st)) {
                    for (int round = 0; round < 4; ++round) rng->queue_notify(0);
                    std::array<uint8_t, 4> b{};
                    for (uint64_t off = 0; off < 0x40; off += 4) (*t)->bar_read(virtio::kPciBarIndex, off, b);
                    auto again = (*t)->save();
                    (void)again;
                }
                rng->reset();
            });
        } else if (s.id == "msix") {
            try_restore<MsixTable::State>(s, [&](const auto& st) {
                NullRouter router;
                MsixTable t(static_cast<uint16_t>(st.vectors.size()), router);
                if (t.restore(st)) {
                    for (uint16_t v = 0; v <= t.vector_count(); ++v) t.trigger(v);
                    std::array<uint8_t, 8> b{};
                    t.pba_read(0, b);
                }
            });
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1 || size > 64 * 1024) return 0;
    const uint8_t mode = data[0];
    std::vector<uint8_t> file;
    if (mode & 2) {
        snapshot::Writer w;
        w.raw(snapshot::SnapshotFile::kMagic);
        w.u32(snapshot::SnapshotFile::kFormatVersion);
        file = w.take();
    }
    file.insert(file.end(), data + 1, data + size);
    if (mode & 1) {
        const uint64_t crc = snapshot::crc64(file);
        for (int i = 0; i < 8; ++i) file.push_back(static_cast<uint8_t>(crc >> (8 * i)));
    }
    auto parsed = snapshot::SnapshotFile::parse(file);
    if (!parsed) return 0;
    // A parsed file encodes back to the very bytes it came from.
    if (parsed->encode() != file) __builtin_trap();
    exercise(*parsed);
    return 0;
}
