// ACPI tables for a Linux guest: RSDP (v2) -> XSDT -> {FADT -> {FACS, DSDT}, MADT},
// written into the reserved BIOS area at 0xE0000. The FADT describes a
// full-hardware (not hardware-reduced) platform with a PM1a event block at
// I/O 0x600 and a PM1a control block at 0x604, so that Linux powers off by
// writing SLP_TYP=5 | SLP_EN to PM1a_CNT (the \_S5 package in the DSDT).
#pragma once

#include <cstdint>
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

// Where each table goes (all inside [kAcpiStart, kAcpiEnd)).
inline constexpr uint64_t kRsdpAddr = 0xE0000;  // 16-byte aligned, found by the BIOS-area scan
inline constexpr uint64_t kFacsAddr = 0xE0040;  // FACS must be 64-byte aligned
inline constexpr uint64_t kXsdtAddr = 0xE0080;
inline constexpr uint64_t kFadtAddr = 0xE0100;
inline constexpr uint64_t kDsdtAddr = 0xE0280;
inline constexpr uint64_t kMadtAddr = 0xE0400;

// One Processor Local APIC entry holds an 8-bit APIC id; 0xFF is broadcast,
// and the I/O APIC takes the id after the last CPU.
inline constexpr unsigned kMaxAcpiCpus = 254;

// Sum of all bytes mod 256; a table is valid when this is 0.
uint8_t acpi_checksum(std::span<const uint8_t> bytes);

// The DSDT's AML body (after the 36-byte header). With pci_host_bridge, it
// also declares \_SB.PCI0 (PNP0A03): without a PCI root bridge in the
// namespace, Linux with ACPI enabled never scans PCI bus 0.
std::vector<uint8_t> dsdt_aml(bool pci_host_bridge);

// Builds and writes all tables; returns the RSDP address for
// boot_params.acpi_rsdp_addr. num_cpus must be 1..kMaxAcpiCpus; the CPUs get
// local APIC ids 0..num_cpus-1 (matching filter_cpuid) and the I/O APIC id num_cpus.
Result<GuestAddress> setup_acpi(const GuestMemory& memory, unsigned num_cpus,
                                bool pci_host_bridge = true);

}  // namespace rv::x86
