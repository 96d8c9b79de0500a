// ACPI wire structs (ACPI 6.x specification, chapter 5.2). Packed, with
// sizes pinned; multi-byte fields are little-endian like the host.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rv::x86 {

#pragma pack(push, 1)

struct AcpiTableHeader {
    char signature[4];
    uint32_t length;
    uint8_t revision;
    uint8_t checksum;
    char oem_id[6];
    char oem_table_id[8];
    uint32_t oem_revision;
    char creator_id[4];
    uint32_t creator_revision;
};
static_assert(sizeof(AcpiTableHeader) == 36);

struct AcpiRsdp {
    char signature[8];  // "RSD PTR "
    uint8_t checksum;   // over the first 20 bytes (the ACPI 1.0 part)
    char oem_id[6];
    uint8_t revision;  // 2 = ACPI 2.0+, has the XSDT fields
    uint32_t rsdt_address;
    uint32_t length;
    uint64_t xsdt_address;
    uint8_t extended_checksum;  // over all 36 bytes
    uint8_t reserved[3];
};
static_assert(sizeof(AcpiRsdp) == 36);

struct AcpiGenericAddress {
    uint8_t space_id;  // 1 = system I/O
    uint8_t bit_width;
    uint8_t bit_offset;
    uint8_t access_size;  // 0 = undefined (legacy)
    uint64_t address;
};
static_assert(sizeof(AcpiGenericAddress) == 12);

inline constexpr uint8_t kAcpiSpaceSystemIo = 1;

struct AcpiFadt {
    AcpiTableHeader header;
    uint32_t firmware_ctrl;
    uint32_t dsdt;
    uint8_t reserved0;
    uint8_t preferred_pm_profile;
    uint16_t sci_int;
    uint32_t smi_cmd;
    uint8_t acpi_enable;
    uint8_t acpi_disable;
    uint8_t s4bios_req;
    uint8_t pstate_cnt;
    uint32_t pm1a_evt_blk;
    uint32_t pm1b_evt_blk;
    uint32_t pm1a_cnt_blk;
    uint32_t pm1b_cnt_blk;
    uint32_t pm2_cnt_blk;
    uint32_t pm_tmr_blk;
    uint32_t gpe0_blk;
    uint32_t gpe1_blk;
    uint8_t pm1_evt_len;
    uint8_t pm1_cnt_len;
    uint8_t pm2_cnt_len;
    uint8_t pm_tmr_len;
    uint8_t gpe0_blk_len;
    uint8_t gpe1_blk_len;
    uint8_t gpe1_base;
    uint8_t cst_cnt;
    uint16_t p_lvl2_lat;
    uint16_t p_lvl3_lat;
    uint16_t flush_size;
    uint16_t flush_stride;
    uint8_t duty_offset;
    uint8_t duty_width;
    uint8_t day_alrm;
    uint8_t mon_alrm;
    uint8_t century;
    uint16_t iapc_boot_arch;
    uint8_t reserved1;
    uint32_t flags;
    AcpiGenericAddress reset_reg;
    uint8_t reset_value;
    uint16_t arm_boot_arch;
    uint8_t minor_version;
    uint64_t x_firmware_ctrl;
    uint64_t x_dsdt;
    AcpiGenericAddress x_pm1a_evt_blk;
    AcpiGenericAddress x_pm1b_evt_blk;
    AcpiGenericAddress x_pm1a_cnt_blk;
    AcpiGenericAddress x_pm1b_cnt_blk;
    AcpiGenericAddress x_pm2_cnt_blk;
    AcpiGenericAddress x_pm_tmr_blk;
    AcpiGenericAddress x_gpe0_blk;
    AcpiGenericAddress x_gpe1_blk;
    AcpiGenericAddress sleep_control_reg;
    AcpiGenericAddress sleep_status_reg;
    uint64_t hypervisor_vendor_id;
};
static_assert(sizeof(AcpiFadt) == 276);  // FADT revision 6
static_assert(offsetof(AcpiFadt, pm1a_evt_blk) == 56);
static_assert(offsetof(AcpiFadt, iapc_boot_arch) == 109);
static_assert(offsetof(AcpiFadt, flags) == 112);
static_assert(offsetof(AcpiFadt, x_dsdt) == 140);
static_assert(offsetof(AcpiFadt, x_pm1a_evt_blk) == 148);
static_assert(offsetof(AcpiFadt, x_pm1a_cnt_blk) == 172);

inline constexpr uint16_t kIapcBoot8042 = 1u << 1;
inline constexpr uint16_t kIapcBootVgaNotPresent = 1u << 2;
inline constexpr uint32_t kFadtWbinvd = 1u << 0;
inline constexpr uint32_t kFadtResetRegSup = 1u << 10;  // RESET_REG / RESET_VALUE are valid
// The chipset's reset control register (devices/legacy/reset_control.h) and
// the value that resets through it: SYS_RST | RST_CPU, as on real PIIX/ICH.
inline constexpr uint16_t kResetControlPort = 0xCF9;
inline constexpr uint8_t kResetControlValue = 0x06;
inline constexpr uint32_t kFadtHwReducedAcpi = 1u << 20;

struct AcpiFacs {
    char signature[4];  // "FACS"; no checksum field
    uint32_t length;
    uint32_t hardware_signature;
    uint32_t firmware_waking_vector;
    uint32_t global_lock;
    uint32_t flags;
    uint64_t x_firmware_waking_vector;
    uint8_t version;
    uint8_t reserved0[3];
    uint32_t ospm_flags;
    uint8_t reserved1[24];
};
static_assert(sizeof(AcpiFacs) == 64);

struct AcpiMadt {
    AcpiTableHeader header;
    uint32_t local_apic_address;
    uint32_t flags;
};
static_assert(sizeof(AcpiMadt) == 44);

inline constexpr uint32_t kMadtPcatCompat = 1u << 0;

struct MadtLocalApic {
    uint8_t type;  // 0
    uint8_t length;
    uint8_t processor_uid;
    uint8_t apic_id;
    uint32_t flags;  // bit 0: enabled
};
static_assert(sizeof(MadtLocalApic) == 8);

struct MadtIoApic {
    uint8_t type;  // 1
    uint8_t length;
    uint8_t io_apic_id;
    uint8_t reserved;
    uint32_t address;
    uint32_t gsi_base;
};
static_assert(sizeof(MadtIoApic) == 12);

struct MadtInterruptOverride {
    uint8_t type;  // 2
    uint8_t length;
    uint8_t bus;  // 0 = ISA
    uint8_t source;
    uint32_t gsi;
    uint16_t flags;  // MPS INTI flags: polarity bits 1..0, trigger bits 3..2
};
static_assert(sizeof(MadtInterruptOverride) == 10);

struct MadtLocalApicNmi {
    uint8_t type;  // 4
    uint8_t length;
    uint8_t processor_uid;  // 0xFF = all
    uint16_t flags;
    uint8_t lint;
};
static_assert(sizeof(MadtLocalApicNmi) == 6);

inline constexpr uint16_t kMpsActiveHigh = 1u << 0;
inline constexpr uint16_t kMpsEdge = 1u << 2;
inline constexpr uint16_t kMpsLevel = 3u << 2;

#pragma pack(pop)

}  // namespace rv::x86
