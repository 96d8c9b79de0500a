#include "arch/x86_64/acpi.h"

#include <cstring>
#include <numeric>

#include "arch/x86_64/acpi_tables.h"
#include "arch/x86_64/aml.h"
#include "arch/x86_64/layout.h"

namespace rv::x86 {

namespace {

// libstdc++ 12's std::expected has no transform_error yet.
Result<void> with_context(Result<void> result, std::string_view what) {
    if (!result) return std::unexpected(result.error().context(what));
    return {};
}

constexpr char kOemId[6] = {'R', 'I', 'N', 'G', 'V', 'S'};
constexpr char kOemTableId[8] = {'R', 'I', 'N', 'G', 'V', 'I', 'S', 'R'};
constexpr char kCreatorId[4] = {'R', 'V', 'M', 'M'};

AcpiTableHeader make_header(const char (&signature)[5], uint32_t length, uint8_t revision) {
    AcpiTableHeader h{};
    std::memcpy(h.signature, signature, 4);
    h.length = length;
    h.revision = revision;
    std::memcpy(h.oem_id, kOemId, sizeof(kOemId));
    std::memcpy(h.oem_table_id, kOemTableId, sizeof(kOemTableId));
    h.oem_revision = 1;
    std::memcpy(h.creator_id, kCreatorId, sizeof(kCreatorId));
    h.creator_revision = 1;
    return h;
}

template <typename T>
void append(std::vector<uint8_t>& out, const T& value) {
    static_assert(std::is_trivially_copyable_v<T>);
    // SAFETY: T is a packed trivially copyable wire struct; copying its
    // object representation is exactly its ACPI encoding.
    auto bytes = reinterpret_cast<const uint8_t*>(&value);
    out.insert(out.end(), bytes, bytes + sizeof(T));
}

// Sets the length and checksum fields of a table whose bytes start with an
// AcpiTableHeader.
void finish_table(std::vector<uint8_t>& table) {
    uint32_t length = static_cast<uint32_t>(table.size());
    std::memcpy(table.data() + offsetof(AcpiTableHeader, length), &length, sizeof(length));
    table[offsetof(AcpiTableHeader, checksum)] = 0;
    table[offsetof(AcpiTableHeader, checksum)] = static_cast<uint8_t>(-acpi_checksum(table));
}

std::vector<uint8_t> build_rsdp() {
    AcpiRsdp rsdp{};
    std::memcpy(rsdp.signature, "RSD PTR ", 8);
    std::memcpy(rsdp.oem_id, kOemId, sizeof(kOemId));
    rsdp.revision = 2;
    rsdp.length = sizeof(AcpiRsdp);
    rsdp.xsdt_address = kXsdtAddr;
    std::vector<uint8_t> out;
    append(out, rsdp);
    out[offsetof(AcpiRsdp, checksum)] =
        static_cast<uint8_t>(-acpi_checksum(std::span(out).first(20)));
    out[offsetof(AcpiRsdp, extended_checksum)] = static_cast<uint8_t>(-acpi_checksum(out));
    return out;
}

std::vector<uint8_t> build_xsdt() {
    std::vector<uint8_t> out;
    append(out, make_header("XSDT", 0, 1));
    append(out, uint64_t{kFadtAddr});
    append(out, uint64_t{kMadtAddr});
    finish_table(out);
    return out;
}

AcpiGenericAddress io_gas(uint16_t port, uint8_t len) {
    return {kAcpiSpaceSystemIo, static_cast<uint8_t>(len * 8), 0, 0, port};
}

std::vector<uint8_t> build_fadt() {
    AcpiFadt f{};
    f.header = make_header("FACP", sizeof(AcpiFadt), 6);
    f.firmware_ctrl = kFacsAddr;
    f.dsdt = kDsdtAddr;
    f.sci_int = kSciIrq;
    f.smi_cmd = 0;  // no SMI command port: the platform is always in ACPI mode
    f.pm1a_evt_blk = kPm1aEvtBlk;
    f.pm1a_cnt_blk = kPm1aCntBlk;
    f.pm1_evt_len = kPm1aEvtLen;
    f.pm1_cnt_len = kPm1aCntLen;
    // No PM timer: guests use kvm-clock / TSC.
    f.iapc_boot_arch = kIapcBoot8042 | kIapcBootVgaNotPresent;
    // Reboots go through the reset control register at 0xCF9 (Linux's
    // default "reboot=acpi" uses RESET_REG before trying the i8042).
    f.flags = kFadtWbinvd | kFadtResetRegSup;
    f.reset_reg = io_gas(kResetControlPort, 1);
    f.reset_value = kResetControlValue;
    f.minor_version = 0;
    // The 64-bit fields repeat the 32-bit ones exactly; ACPICA warns when
    // both are set and differ.
    f.x_firmware_ctrl = kFacsAddr;
    f.x_dsdt = kDsdtAddr;
    f.x_pm1a_evt_blk = io_gas(kPm1aEvtBlk, kPm1aEvtLen);
    f.x_pm1a_cnt_blk = io_gas(kPm1aCntBlk, kPm1aCntLen);
    std::vector<uint8_t> out;
    append(out, f);
    finish_table(out);
    return out;
}

std::vector<uint8_t> build_facs() {
    AcpiFacs facs{};
    std::memcpy(facs.signature, "FACS", 4);
    facs.length = sizeof(AcpiFacs);
    facs.version = 2;
    std::vector<uint8_t> out;
    append(out, facs);
    return out;
}

std::vector<uint8_t> build_dsdt(const std::optional<PciHostBridge>& pci) {
    std::vector<uint8_t> out;
    append(out, make_header("DSDT", 0, 2));
    std::vector<uint8_t> aml = dsdt_aml(pci);
    out.insert(out.end(), aml.begin(), aml.end());
    finish_table(out);
    return out;
}

std::vector<uint8_t> build_madt(unsigned num_cpus) {
    std::vector<uint8_t> out;
    append(out,
           AcpiMadt{make_header("APIC", 0, 5), static_cast<uint32_t>(kLapicAddr), kMadtPcatCompat});
    for (unsigned i = 0; i < num_cpus; ++i) {
        append(out, MadtLocalApic{0, sizeof(MadtLocalApic), static_cast<uint8_t>(i),
                                  static_cast<uint8_t>(i), 1});
    }
    append(out, MadtIoApic{1, sizeof(MadtIoApic), static_cast<uint8_t>(num_cpus), 0,
                           static_cast<uint32_t>(kIoApicAddr), 0});
    // The PIT's IRQ0 is wired to I/O APIC pin 2, as on PC hardware.
    append(out, MadtInterruptOverride{2, sizeof(MadtInterruptOverride), 0, 0, 2,
                                      kMpsActiveHigh | kMpsEdge});
    // The SCI is level-triggered, active high (unlike ISA's edge default).
    append(out, MadtInterruptOverride{2, sizeof(MadtInterruptOverride), 0, kSciIrq, kSciIrq,
                                      kMpsActiveHigh | kMpsLevel});
    // LINT1 of every local APIC is the NMI input.
    append(out, MadtLocalApicNmi{4, sizeof(MadtLocalApicNmi), 0xFF, 0, 1});
    finish_table(out);
    return out;
}

}  // namespace

uint8_t acpi_checksum(std::span<const uint8_t> bytes) {
    return std::accumulate(bytes.begin(), bytes.end(), uint8_t{0},
                           [](uint8_t a, uint8_t b) { return static_cast<uint8_t>(a + b); });
}

std::vector<uint8_t> ps2_keyboard_aml() {
    // Device (PS2K) { Name (_HID, EisaId ("PNP0303"))
    //                 Name (_CRS, ResourceTemplate () { IO (Decode16, 0x60, 0x60, 1, 1)
    //                     IO (Decode16, 0x64, 0x64, 1, 1) IRQNoFlags () {1} }) }
    // The data port first, then the command port: the order Linux's PNP
    // probe reads them in.
    std::vector<uint8_t> rt;
    aml::io_port(rt, kI8042DataPort, 1);
    aml::io_port(rt, kI8042CommandPort, 1);
    aml::irq_no_flags(rt, kKeyboardIrq);
    aml::end_tag(rt);
    std::vector<uint8_t> body;
    aml::hid(body, "PNP0303");  // IBM Enhanced (101/102-key) keyboard
    aml::name(body, "_CRS", aml::buffer(rt));
    std::vector<uint8_t> out;
    aml::device(out, "PS2K", body);
    return out;
}

std::vector<uint8_t> dsdt_aml(const std::optional<PciHostBridge>& pci) {
    std::vector<uint8_t> out;
    // Name (_S5, Package (4) { 5, 5, 0, 0 }): SLP_TYPa, SLP_TYPb, reserved.
    out.push_back(aml::kNameOp);
    aml::name_seg(out, "_S5_");
    std::vector<uint8_t> pkg = {4,         aml::kBytePrefix, kS5SlpTyp,   aml::kBytePrefix,
                                kS5SlpTyp, aml::kZeroOp,     aml::kZeroOp};
    aml::package(out, {aml::kPackageOp}, pkg);

    // Scope (\_SB) { Device (PCI0) { ... } Device (PS2K) { ... } }
    std::vector<uint8_t> scope;
    aml::name_seg(scope, "_SB_");
    if (pci) {
        auto dev = pci_host_bridge_aml(*pci);
        scope.insert(scope.end(), dev.begin(), dev.end());
    }
    auto keyboard = ps2_keyboard_aml();
    scope.insert(scope.end(), keyboard.begin(), keyboard.end());
    aml::package(out, {aml::kScopeOp}, scope);
    return out;
}

Result<GuestAddress> setup_acpi(const GuestMemory& memory, unsigned num_cpus,
                                const std::optional<PciHostBridge>& pci) {
    if (num_cpus == 0 || num_cpus > kMaxAcpiCpus)
        return make_error("ACPI: {} vCPUs not supported (1..{})", num_cpus, kMaxAcpiCpus);
    struct Placed {
        uint64_t addr;
        uint64_t limit;  // next table's address: tables must not overlap
        std::vector<uint8_t> bytes;
    };
    Placed tables[] = {
        {kRsdpAddr, kFacsAddr, build_rsdp()},         {kFacsAddr, kXsdtAddr, build_facs()},
        {kXsdtAddr, kFadtAddr, build_xsdt()},         {kFadtAddr, kMadtAddr, build_fadt()},
        {kMadtAddr, kDsdtAddr, build_madt(num_cpus)}, {kDsdtAddr, kAcpiEnd, build_dsdt(pci)},
    };
    for (const auto& t : tables) {
        if (t.addr + t.bytes.size() > t.limit)
            return make_error("ACPI: table at {:#x} ({} bytes) overruns {:#x}", t.addr,
                              t.bytes.size(), t.limit);
        RV_TRY_VOID(
            with_context(memory.write(GuestAddress(t.addr), t.bytes), "writing ACPI tables"));
    }
    return GuestAddress(kRsdpAddr);
}

}  // namespace rv::x86
