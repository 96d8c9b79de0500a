// ACPI tables for a Linux guest: RSDP (v2) -> XSDT -> {FADT -> {FACS, DSDT}, MADT},
// written into the reserved BIOS area at 0xE0000. The FADT describes a
// full-hardware (not hardware-reduced) platform with a PM1a event block at
// I/O 0x600 and a PM1a control block at 0x604, so that Linux powers off by
// writing SLP_TYP=5 | SLP_EN to PM1a_CNT (the \_S5 package in the DSDT).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/error.h"
#include "memory/guest_memory.h"

namespace rv::x86 {

// I/O ports of the PM1a register blocks the VMM must emulate.
inline constexpr uint16_t kPm1aEvtBlk = 0x600;  // 4 bytes: PM1_STS (16) then PM1_EN (16)
inline constexpr uint16_t kPm1aEvtLen = 4;
inline constexpr uint16_t kPm1aCntBlk = 0x604;  // 2 bytes: PM1_CNT
inline constexpr uint16_t kPm1aCntLen = 2;
inline constexpr uint8_t kSciIrq = 9;
// PM1_CNT fields: SLP_TYP in bits 12..10, SLP_EN bit 13, SCI_EN bit 0 (a
// PM1_CNT read should return SCI_EN set: ACPI is always enabled).
inline constexpr uint16_t kPm1CntSciEn = 1u << 0;
inline constexpr uint16_t kPm1CntSlpTypShift = 10;
inline constexpr uint16_t kPm1CntSlpTypMask = 7u << kPm1CntSlpTypShift;
inline constexpr uint16_t kPm1CntSlpEn = 1u << 13;
inline constexpr uint16_t kS5SlpTyp = 5;  // value in the DSDT's \_S5 package

// The i8042 keyboard controller the DSDT describes (the VMM's I8042 sits
// at these ports and raises this ISA IRQ).
inline constexpr uint16_t kI8042DataPort = 0x60;
inline constexpr uint16_t kI8042CommandPort = 0x64;
inline constexpr unsigned kKeyboardIrq = 1;

// Where each table goes (all inside [kAcpiStart, kAcpiEnd)).
inline constexpr uint64_t kRsdpAddr = 0xE0000;  // 16-byte aligned, found by the BIOS-area scan
inline constexpr uint64_t kFacsAddr = 0xE0040;  // FACS must be 64-byte aligned
inline constexpr uint64_t kXsdtAddr = 0xE0080;
inline constexpr uint64_t kFadtAddr = 0xE0100;
inline constexpr uint64_t kMadtAddr = 0xE0400;  // up to 2.1 KiB with 254 CPUs
inline constexpr uint64_t kDsdtAddr = 0xE1000;  // grows with the PCI _PRT

// One Processor Local APIC entry holds an 8-bit APIC id; 0xFF is broadcast,
// and the I/O APIC takes the id after the last CPU.
inline constexpr unsigned kMaxAcpiCpus = 254;

// Sum of all bytes mod 256; a table is valid when this is 0.
uint8_t acpi_checksum(std::span<const uint8_t> bytes);

// One legacy interrupt wire: INTx pin `pin` (0 = INTA#) of the device in
// PCI slot `slot` drives I/O APIC input `gsi` (level-triggered).
struct PciIntxRoute {
    uint8_t slot{0};
    uint8_t pin{0};
    uint32_t gsi{0};
};
struct PciHostBridge {
    std::vector<PciIntxRoute> intx_routes;  // becomes PCI0._PRT
    // The MMIO windows BARs are placed in, [start, end); with I/O ports
    // 0-0xCF7 and 0xD00-0xFFFF they become PCI0._CRS. Empty: left out.
    uint64_t mmio32_start{0}, mmio32_end{0};
    uint64_t mmio64_start{0}, mmio64_end{0};
};

// Device (PCI0) with _HID, _ADR, _UID, _CRS and _PRT, for the DSDT's \_SB scope.
std::vector<uint8_t> pci_host_bridge_aml(const PciHostBridge& pci);

// Device (PS2K) for the DSDT's \_SB scope: the i8042's keyboard (PNP0303)
// with its two ports and IRQ 1. Linux's i8042 driver looks for it through
// PNP; finding a keyboard and no PS/2 mouse (PNP0F13) there, it also skips
// probing the AUX port ("PS/2 appears to have AUX port disabled").
std::vector<uint8_t> ps2_keyboard_aml();

// The DSDT's AML body (after the 36-byte header): \_S5 and, in \_SB, the
// keyboard. With a PCI host bridge, \_SB also declares PCI0 (PNP0A03) —
// without a PCI root bridge in the namespace, Linux with ACPI enabled never
// scans PCI bus 0 — with its windows (_CRS: without them Linux cannot claim
// BARs or the legacy IDE ports) and its _PRT (without it Linux cannot route
// INTx: "no GSI").
std::vector<uint8_t> dsdt_aml(const std::optional<PciHostBridge>& pci);

// Builds and writes all tables; returns the RSDP address for
// boot_params.acpi_rsdp_addr. num_cpus must be 1..kMaxAcpiCpus; the CPUs get
// local APIC ids 0..num_cpus-1 (matching filter_cpuid) and the I/O APIC id num_cpus.
Result<GuestAddress> setup_acpi(const GuestMemory& memory, unsigned num_cpus,
                                const std::optional<PciHostBridge>& pci = PciHostBridge{});

}  // namespace rv::x86
