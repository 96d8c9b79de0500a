#include "arch/x86_64/acpi.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "arch/x86_64/acpi_tables.h"
#include "arch/x86_64/aml.h"
#include "arch/x86_64/layout.h"

namespace rv::x86 {
namespace {

class AcpiTest : public ::testing::Test {
  protected:
    void SetUp() override {
        auto layout = MemoryLayout::for_size(64 * kMiB);
        ASSERT_TRUE(layout);
        auto mem = GuestMemory::create(layout->ram);
        ASSERT_TRUE(mem);
        m_mem = std::move(*mem);
    }

    std::vector<uint8_t> read_bytes(uint64_t addr, size_t len) {
        std::vector<uint8_t> out(len);
        EXPECT_TRUE(m_mem.read(GuestAddress(addr), out));
        return out;
    }

    template <typename T>
    T read(uint64_t addr) {
        auto v = m_mem.read_obj<T>(GuestAddress(addr));
        EXPECT_TRUE(v);
        return v.value_or(T{});
    }

    // Reads a whole table (by its header length) and checks signature and checksum.
    std::vector<uint8_t> read_table(uint64_t addr, const char* signature) {
        auto hdr = read<AcpiTableHeader>(addr);
        EXPECT_EQ(std::string(hdr.signature, 4), signature);
        EXPECT_GE(hdr.length, sizeof(AcpiTableHeader));
        auto bytes = read_bytes(addr, hdr.length);
        EXPECT_EQ(acpi_checksum(bytes), 0) << signature;
        EXPECT_EQ(std::string(hdr.oem_id, 6), "RINGVS");
        return bytes;
    }

    GuestMemory m_mem;
};

TEST_F(AcpiTest, RsdpPointsToXsdt) {
    auto rsdp_addr = setup_acpi(m_mem, 2);
    ASSERT_TRUE(rsdp_addr) << rsdp_addr.error().message();
    EXPECT_EQ(rsdp_addr->value % 16, 0u);
    EXPECT_GE(rsdp_addr->value, kAcpiStart);
    EXPECT_LT(rsdp_addr->value, kAcpiEnd);

    auto bytes = read_bytes(rsdp_addr->value, sizeof(AcpiRsdp));
    EXPECT_EQ(acpi_checksum(std::span(bytes).first(20)), 0);
    EXPECT_EQ(acpi_checksum(bytes), 0);
    auto rsdp = read<AcpiRsdp>(rsdp_addr->value);
    EXPECT_EQ(std::string(rsdp.signature, 8), "RSD PTR ");
    EXPECT_EQ(rsdp.revision, 2);
    EXPECT_EQ(rsdp.length, 36u);
    EXPECT_EQ(rsdp.xsdt_address, kXsdtAddr);
}

TEST_F(AcpiTest, BiosAreaScanFindsRsdp) {
    ASSERT_TRUE(setup_acpi(m_mem, 1));
    // What Linux does without boot_params.acpi_rsdp_addr.
    auto area = read_bytes(kAcpiStart, kAcpiEnd - kAcpiStart);
    uint64_t found = 0;
    for (size_t off = 0; off + 36 <= area.size(); off += 16) {
        if (std::memcmp(area.data() + off, "RSD PTR ", 8) == 0 &&
            acpi_checksum(std::span(area).subspan(off, 20)) == 0) {
            found = kAcpiStart + off;
            break;
        }
    }
    EXPECT_EQ(found, kRsdpAddr);
}

TEST_F(AcpiTest, XsdtListsFadtAndMadt) {
    ASSERT_TRUE(setup_acpi(m_mem, 2));
    auto xsdt = read_table(kXsdtAddr, "XSDT");
    ASSERT_EQ(xsdt.size(), 36u + 2 * 8);
    uint64_t entries[2];
    std::memcpy(entries, xsdt.data() + 36, sizeof(entries));
    EXPECT_EQ(read<AcpiTableHeader>(entries[0]).signature[0], 'F');
    read_table(entries[0], "FACP");
    read_table(entries[1], "APIC");
}

TEST_F(AcpiTest, FadtDescribesPm1Blocks) {
    ASSERT_TRUE(setup_acpi(m_mem, 1));
    auto bytes = read_table(kFadtAddr, "FACP");
    ASSERT_EQ(bytes.size(), 276u);
    auto f = read<AcpiFadt>(kFadtAddr);
    EXPECT_EQ(f.header.revision, 6);
    EXPECT_EQ(f.pm1a_evt_blk, 0x600u);
    EXPECT_EQ(f.pm1_evt_len, 4);
    EXPECT_EQ(f.pm1a_cnt_blk, 0x604u);
    EXPECT_EQ(f.pm1_cnt_len, 2);
    EXPECT_EQ(f.sci_int, 9);
    EXPECT_EQ(f.smi_cmd, 0u);
    EXPECT_EQ(f.pm_tmr_blk, 0u);
    EXPECT_EQ(f.iapc_boot_arch & (1u << 1), 1u << 1);  // 8042
    EXPECT_EQ(f.iapc_boot_arch & (1u << 2), 1u << 2);  // no VGA
    EXPECT_EQ(f.flags & kFadtWbinvd, kFadtWbinvd);
    EXPECT_EQ(f.flags & kFadtHwReducedAcpi, 0u);
    // The reset register: one byte at the chipset's 0xCF9, value 6.
    EXPECT_EQ(f.flags & kFadtResetRegSup, kFadtResetRegSup);
    EXPECT_EQ(f.reset_reg.space_id, 1u);
    EXPECT_EQ(f.reset_reg.bit_width, 8u);
    EXPECT_EQ(f.reset_reg.address, 0xCF9u);
    EXPECT_EQ(f.reset_value, 0x06u);
    EXPECT_EQ(f.dsdt, kDsdtAddr);
    EXPECT_EQ(f.x_dsdt, kDsdtAddr);
    EXPECT_EQ(f.firmware_ctrl, kFacsAddr);
    EXPECT_EQ(f.x_pm1a_evt_blk.space_id, 1);
    EXPECT_EQ(f.x_pm1a_evt_blk.bit_width, 32);
    EXPECT_EQ(f.x_pm1a_evt_blk.address, 0x600u);
    EXPECT_EQ(f.x_pm1a_cnt_blk.space_id, 1);
    EXPECT_EQ(f.x_pm1a_cnt_blk.bit_width, 16);
    EXPECT_EQ(f.x_pm1a_cnt_blk.address, 0x604u);
    EXPECT_EQ(f.x_pm_tmr_blk.address, 0u);

    auto facs = read<AcpiFacs>(kFacsAddr);
    EXPECT_EQ(std::string(facs.signature, 4), "FACS");
    EXPECT_EQ(facs.length, 64u);
    EXPECT_EQ(kFacsAddr % 64, 0u);
}

// Device (PS2K) { Name (_HID, EisaId ("PNP0303")) Name (_CRS, ResourceTemplate () {
//     IO (Decode16, 0x60, 0x60, 1, 1) IO (Decode16, 0x64, 0x64, 1, 1) IRQNoFlags () {1} }) }
// as iasl compiles it: 47 bytes.
const std::vector<uint8_t> kPs2KeyboardAml = {
    // Device (PS2K), PkgLength 0x2D = 1 + 4 + 10 + 30
    0x5B, 0x82, 0x2D, 'P', 'S', '2', 'K',
    // Name (_HID, EisaId ("PNP0303"))
    0x08, '_', 'H', 'I', 'D', 0x0C, 0x41, 0xD0, 0x03, 0x03,
    // Name (_CRS, Buffer (21) { ... }), PkgLength 0x18 = 1 + 2 + 21
    0x08, '_', 'C', 'R', 'S', 0x11, 0x18, 0x0A, 0x15,
    // IO (Decode16, 0x60, 0x60, 0x01, 0x01)  IO (Decode16, 0x64, 0x64, 0x01, 0x01)
    0x47, 0x01, 0x60, 0x00, 0x60, 0x00, 0x01, 0x01, 0x47, 0x01, 0x64, 0x00, 0x64, 0x00, 0x01, 0x01,
    // IRQNoFlags () {1}, EndTag
    0x22, 0x02, 0x00, 0x79, 0x00};

TEST_F(AcpiTest, DsdtHasS5PackageAndKeyboard) {
    ASSERT_TRUE(setup_acpi(m_mem, 1, std::nullopt));
    auto dsdt = read_table(kDsdtAddr, "DSDT");
    EXPECT_EQ(read<AcpiTableHeader>(kDsdtAddr).revision, 2);
    // NameOp "_S5_" PackageOp PkgLength(8: itself + count + 6 element bytes)
    // NumElements(4) BytePrefix 5, BytePrefix 5, Zero, Zero.
    std::vector<uint8_t> expected = {0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A,
                                     0x05, 0x00, 0x00,
                                     // Scope (\_SB_), PkgLength 0x34 = 1 + 4 + 47
                                     0x10, 0x34, '_', 'S', 'B', '_'};
    expected.insert(expected.end(), kPs2KeyboardAml.begin(), kPs2KeyboardAml.end());
    EXPECT_EQ(std::vector<uint8_t>(dsdt.begin() + 36, dsdt.end()), expected);
}

TEST(Acpi, Ps2KeyboardForLinuxPnp) {
    // What Linux's i8042 PNP probe reads: a PNP0303 device whose first I/O
    // resource is the data port and second the command port, one byte each,
    // and whose first IRQ is the keyboard's.
    EXPECT_EQ(ps2_keyboard_aml(), kPs2KeyboardAml);
    EXPECT_EQ(aml::eisa_id("PNP0303"), 0x0303D041u);
}

TEST_F(AcpiTest, DsdtHasKeyboardBesidePciHostBridge) {
    ASSERT_TRUE(setup_acpi(m_mem, 1, PciHostBridge{}));
    auto dsdt = read_table(kDsdtAddr, "DSDT");
    auto at = std::search(dsdt.begin(), dsdt.end(), kPs2KeyboardAml.begin(), kPs2KeyboardAml.end());
    ASSERT_NE(at, dsdt.end());
    EXPECT_EQ(at + static_cast<long>(kPs2KeyboardAml.size()), dsdt.end());  // last in \_SB
    const std::vector<uint8_t> pci0 = {'P', 'C', 'I', '0'};
    EXPECT_LT(std::search(dsdt.begin(), dsdt.end(), pci0.begin(), pci0.end()), at);
}

TEST(Acpi, DsdtWithPciHostBridge) {
    std::vector<uint8_t> expected = {
        0x08, '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00,
        // Scope (\_SB_), two-byte PkgLength 0xB1 = 2 + 4 + 124 + 47 (PCI0, PS2K)
        0x10, 0x41, 0x0B, '_', 'S', 'B', '_',
        // Device (PCI0), two-byte PkgLength 0x7A = 2 + 4 + 10 + 6 + 6 + 94
        0x5B, 0x82, 0x4A, 0x07, 'P', 'C', 'I', '0',
        // Name (_HID, EisaId ("PNP0A03"))
        0x08, '_', 'H', 'I', 'D', 0x0C, 0x41, 0xD0, 0x0A, 0x03,
        // Name (_ADR, Zero)  Name (_UID, Zero)
        0x08, '_', 'A', 'D', 'R', 0x00, 0x08, '_', 'U', 'I', 'D', 0x00,
        // Name (_CRS, Buffer (84) { ... }), two-byte PkgLength 0x58 = 2 + 2 + 84
        0x08, '_', 'C', 'R', 'S', 0x11, 0x48, 0x05, 0x0A, 0x54,
        // WordBusNumber (ResourceProducer, MinFixed, MaxFixed, 0, 0x00, 0xFF, 0, 0x100)
        0x88, 0x0D, 0x00, 0x02, 0x0C, 0x00, 0x00, 0x00, 0x00, 0x00, 0xFF, 0x00, 0x00, 0x00, 0x00,
        0x01,
        // IO (Decode16, 0xCF8, 0xCF8, 1, 8)
        0x47, 0x01, 0xF8, 0x0C, 0xF8, 0x0C, 0x01, 0x08,
        // WordIO 0x0000-0x0CF7, 0x0D00-0xFFFF (EntireRange)
        0x88, 0x0D, 0x00, 0x01, 0x0C, 0x03, 0x00, 0x00, 0x00, 0x00, 0xF7, 0x0C, 0x00, 0x00, 0xF8,
        0x0C, 0x88, 0x0D, 0x00, 0x01, 0x0C, 0x03, 0x00, 0x00, 0x00, 0x0D, 0xFF, 0xFF, 0x00, 0x00,
        0x00, 0xF3,
        // DWordMemory 0xC0000000-0xFEBFFFFF
        0x87, 0x17, 0x00, 0x00, 0x0C, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0xFF,
        0xFF, 0xBF, 0xFE, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xC0, 0x3E,
        // EndTag
        0x79, 0x00};
    expected.insert(expected.end(), kPs2KeyboardAml.begin(), kPs2KeyboardAml.end());
    EXPECT_EQ(dsdt_aml(PciHostBridge{.mmio32_start = 0xC000'0000, .mmio32_end = 0xFEC0'0000}),
              expected);
}

TEST(Acpi, DsdtPciRoutingTable) {
    PciHostBridge pci{{{.slot = 1, .pin = 0, .gsi = 17}, {.slot = 31, .pin = 3, .gsi = 0x1234}}};
    auto aml = dsdt_aml(pci);
    // Name (_PRT, Package (2) { Package (4) { 0x0001FFFF, Zero, Zero, 17 },
    //                           Package (4) { 0x001FFFFF, 3, Zero, 0x1234 } })
    std::vector<uint8_t> prt = {0x08, '_',  'P',  'R',  'T',  0x12, 0x1C, 0x02, 0x12,
                                0x0B, 0x04, 0x0C, 0xFF, 0xFF, 0x01, 0x00, 0x00, 0x00,
                                0x0A, 0x11, 0x12, 0x0D, 0x04, 0x0C, 0xFF, 0xFF, 0x1F,
                                0x00, 0x0A, 0x03, 0x00, 0x0B, 0x34, 0x12};
    // The last thing in PCI0, which the keyboard follows in \_SB.
    auto at = std::search(aml.begin(), aml.end(), prt.begin(), prt.end());
    ASSERT_NE(at, aml.end());
    EXPECT_EQ(std::vector<uint8_t>(at + static_cast<long>(prt.size()), aml.end()), kPs2KeyboardAml);
    // Device (PCI0)'s length covers it (no windows: _CRS has bus and I/O
    // ranges only, 67 bytes): 2 + 4 + 10 + 6 + 6 + 67 + 34 = 129.
    std::vector<uint8_t> device = {0x5B, 0x82, 0x41, 0x08, 'P', 'C', 'I', '0'};
    EXPECT_NE(std::search(aml.begin(), aml.end(), device.begin(), device.end()), aml.end());
}

struct MadtContents {
    std::vector<MadtLocalApic> lapics;
    std::vector<MadtIoApic> ioapics;
    std::vector<MadtInterruptOverride> overrides;
    int nmis{0};
};

MadtContents parse_madt(const std::vector<uint8_t>& madt) {
    MadtContents out;
    size_t off = sizeof(AcpiMadt);
    while (off + 2 <= madt.size()) {
        uint8_t type = madt[off];
        uint8_t len = madt[off + 1];
        EXPECT_GE(len, 2);
        EXPECT_LE(off + len, madt.size());
        if (len < 2 || off + len > madt.size()) break;
        auto copy = [&](auto& v) {
            EXPECT_EQ(len, sizeof(v));
            std::memcpy(&v, madt.data() + off, sizeof(v));
        };
        if (type == 0) copy(out.lapics.emplace_back());
        if (type == 1) copy(out.ioapics.emplace_back());
        if (type == 2) copy(out.overrides.emplace_back());
        if (type == 4) out.nmis++;
        off += len;
    }
    EXPECT_EQ(off, madt.size());
    return out;
}

TEST_F(AcpiTest, MadtListsCpusAndIoApic) {
    ASSERT_TRUE(setup_acpi(m_mem, 4));
    auto madt = read_table(kMadtAddr, "APIC");
    auto hdr = read<AcpiMadt>(kMadtAddr);
    EXPECT_EQ(hdr.local_apic_address, 0xFEE00000u);
    EXPECT_EQ(hdr.flags & kMadtPcatCompat, kMadtPcatCompat);

    auto c = parse_madt(madt);
    ASSERT_EQ(c.lapics.size(), 4u);
    for (unsigned i = 0; i < 4; ++i) {
        EXPECT_EQ(c.lapics[i].apic_id, i);
        EXPECT_EQ(c.lapics[i].processor_uid, i);
        EXPECT_EQ(c.lapics[i].flags & 1, 1u);
    }
    ASSERT_EQ(c.ioapics.size(), 1u);
    EXPECT_EQ(c.ioapics[0].io_apic_id, 4);  // after the last LAPIC id
    EXPECT_EQ(c.ioapics[0].address, 0xFEC00000u);
    EXPECT_EQ(c.ioapics[0].gsi_base, 0u);
    ASSERT_EQ(c.overrides.size(), 2u);
    EXPECT_EQ(c.overrides[0].source, 0);
    EXPECT_EQ(c.overrides[0].gsi, 2u);
    EXPECT_EQ(c.overrides[0].flags & 0xC, kMpsEdge);
    EXPECT_EQ(c.overrides[1].source, 9);
    EXPECT_EQ(c.overrides[1].gsi, 9u);
    EXPECT_EQ(c.overrides[1].flags, kMpsLevel | kMpsActiveHigh);
    EXPECT_EQ(c.nmis, 1);
}

TEST_F(AcpiTest, ManyCpusFitWithoutOverlap) {
    ASSERT_TRUE(setup_acpi(m_mem, kMaxAcpiCpus));
    auto madt = read_table(kMadtAddr, "APIC");
    auto c = parse_madt(madt);
    EXPECT_EQ(c.lapics.size(), kMaxAcpiCpus);
    EXPECT_EQ(c.ioapics[0].io_apic_id, kMaxAcpiCpus);
    // Earlier tables are intact after the big MADT was written.
    read_table(kDsdtAddr, "DSDT");
    read_table(kFadtAddr, "FACP");
}

TEST_F(AcpiTest, RejectsBadCpuCounts) {
    EXPECT_FALSE(setup_acpi(m_mem, 0));
    EXPECT_FALSE(setup_acpi(m_mem, kMaxAcpiCpus + 1));
}

TEST(Acpi, FailsWhenBiosAreaIsNotRam) {
    GuestMemory::RegionSpec spec{GuestAddress(0x100000), kMiB};
    auto mem = GuestMemory::create(std::span(&spec, 1));
    ASSERT_TRUE(mem);
    EXPECT_FALSE(setup_acpi(*mem, 1));
}

TEST(Acpi, Checksum) {
    std::vector<uint8_t> bytes = {0x10, 0x20, 0xD0};
    EXPECT_EQ(acpi_checksum(bytes), 0);
    bytes.push_back(1);
    EXPECT_EQ(acpi_checksum(bytes), 1);
}

}  // namespace
}  // namespace rv::x86
