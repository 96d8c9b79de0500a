// \_SB.PCI0, the PCI host bridge in the DSDT: its identity, the address
// windows it forwards (_CRS) and where each slot's INTx pins go (_PRT).
#include "arch/x86_64/acpi.h"
#include "arch/x86_64/aml.h"

namespace rv::x86 {

namespace {

constexpr uint32_t kEisaIdPnp0A03 = 0x030AD041;  // EisaId("PNP0A03"), PCI host bridge

// Address space descriptors (6.4.3.5): a producer range [min, max] with
// fixed ends, as a host bridge's windows are.
enum class Space : uint8_t { Memory = 0, Io = 1, BusNumber = 2 };
constexpr uint8_t kMinMaxFixed = 0x0C;  // _MIF | _MAF, producer, positive decode

void word_space(std::vector<uint8_t>& out, Space space, uint8_t type_flags, uint16_t min,
                uint16_t max) {
    out.push_back(0x88);  // Word Address Space Descriptor
    aml::put_le(out, uint16_t{13});
    out.push_back(static_cast<uint8_t>(space));
    out.push_back(kMinMaxFixed);
    out.push_back(type_flags);
    for (uint16_t v : {uint16_t{0}, min, max, uint16_t{0}, static_cast<uint16_t>(max - min + 1)})
        aml::put_le(out, v);
}

void dword_memory(std::vector<uint8_t>& out, uint32_t min, uint32_t max) {
    out.push_back(0x87);  // DWord Address Space Descriptor
    aml::put_le(out, uint16_t{23});
    out.push_back(static_cast<uint8_t>(Space::Memory));
    out.push_back(kMinMaxFixed);
    out.push_back(0x01);  // read-write, non-cacheable (MMIO)
    for (uint32_t v : {uint32_t{0}, min, max, uint32_t{0}, max - min + 1}) aml::put_le(out, v);
}

void qword_memory(std::vector<uint8_t>& out, uint64_t min, uint64_t max) {
    out.push_back(0x8A);  // QWord Address Space Descriptor
    aml::put_le(out, uint16_t{43});
    out.push_back(static_cast<uint8_t>(Space::Memory));
    out.push_back(kMinMaxFixed);
    out.push_back(0x01);
    for (uint64_t v : {uint64_t{0}, min, max, uint64_t{0}, max - min + 1}) aml::put_le(out, v);
}

// Name (_CRS, ResourceTemplate () { bus 0-255, I/O around the config ports,
// the MMIO windows }): what Linux claims BARs and the legacy IDE ports in.
std::vector<uint8_t> crs(const PciHostBridge& pci) {
    std::vector<uint8_t> rt;
    word_space(rt, Space::BusNumber, 0, 0x00, 0xFF);
    // IO (Decode16, 0xCF8, 0xCF8, 1, 8): the bridge's own config ports.
    for (uint8_t b : {0x47, 0x01, 0xF8, 0x0C, 0xF8, 0x0C, 0x01, 0x08}) rt.push_back(b);
    constexpr uint8_t kEntireRange = 0x03;  // ISA and non-ISA I/O addresses
    word_space(rt, Space::Io, kEntireRange, 0x0000, 0x0CF7);
    word_space(rt, Space::Io, kEntireRange, 0x0D00, 0xFFFF);
    if (pci.mmio32_end > pci.mmio32_start)
        dword_memory(rt, static_cast<uint32_t>(pci.mmio32_start),
                     static_cast<uint32_t>(pci.mmio32_end - 1));
    if (pci.mmio64_end > pci.mmio64_start) qword_memory(rt, pci.mmio64_start, pci.mmio64_end - 1);
    rt.push_back(0x79);  // End Tag; checksum 0: "treat as correct"
    rt.push_back(0x00);
    std::vector<uint8_t> out;
    aml::name(out, "_CRS", aml::buffer(rt));
    return out;
}

// Name (_PRT, Package () { Package () { 0xSSSSFFFF, pin, Zero, gsi }, ... }):
// each entry wires a slot's pin straight to an I/O APIC input (no link
// devices), which Linux registers as level-triggered.
std::vector<uint8_t> prt(const std::vector<PciIntxRoute>& routes) {
    std::vector<uint8_t> body;
    body.push_back(static_cast<uint8_t>(routes.size()));
    for (const auto& r : routes) {
        std::vector<uint8_t> entry;
        entry.push_back(4);
        aml::integer(entry, (uint32_t{r.slot} << 16) | 0xFFFF);
        aml::integer(entry, r.pin);
        aml::integer(entry, 0);  // Source: none, the GSI is fixed
        aml::integer(entry, r.gsi);
        aml::package(body, {aml::kPackageOp}, entry);
    }
    std::vector<uint8_t> pkg;
    aml::package(pkg, {aml::kPackageOp}, body);
    std::vector<uint8_t> out;
    aml::name(out, "_PRT", pkg);
    return out;
}

}  // namespace

std::vector<uint8_t> pci_host_bridge_aml(const PciHostBridge& pci) {
    // Device (PCI0) { Name (_HID, EisaId ("PNP0A03")) Name (_ADR, 0) Name (_UID, 0)
    //                 Name (_CRS, ...) Name (_PRT, ...) }
    std::vector<uint8_t> dev;
    aml::name_seg(dev, "PCI0");
    std::vector<uint8_t> hid{aml::kDWordPrefix};
    aml::put_le(hid, kEisaIdPnp0A03);
    aml::name(dev, "_HID", hid);
    aml::name(dev, "_ADR", {aml::kZeroOp});
    aml::name(dev, "_UID", {aml::kZeroOp});
    auto resources = crs(pci);
    dev.insert(dev.end(), resources.begin(), resources.end());
    if (!pci.intx_routes.empty()) {
        auto routes = prt(pci.intx_routes);
        dev.insert(dev.end(), routes.begin(), routes.end());
    }
    std::vector<uint8_t> out;
    aml::package(out, {aml::kExtOpPrefix, aml::kDeviceOp}, dev);
    return out;
}

}  // namespace rv::x86
