// The 512-byte IDENTIFY DEVICE block of an emulated ATA disk.
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace rv::ata {

struct IdentifyParams {
    uint64_t sectors{0};  // capacity in 512-byte sectors
    std::string serial;   // up to 20 printable ASCII characters
    uint16_t heads{0};    // current CHS translation (INITIALIZE DEVICE PARAMETERS)
    uint16_t sectors_per_track{0};
    uint8_t multiple{0};  // current READ/WRITE MULTIPLE block size, 0 = off
    bool write_cache{true};
    uint8_t transfer_mode{0};  // last SET FEATURES 0x03 value (kXfer*), 0 = default
};

using IdentifyBlock = std::array<uint16_t, 256>;

// Default cylinder count for a capacity under the 16-head/63-sector
// translation, capped at 16383 (ATA's limit; larger disks use LBA).
uint16_t default_cylinders(uint64_t sectors);

IdentifyBlock build_identify(const IdentifyParams& params);

// Little-endian bytes as the data register delivers them.
std::array<uint8_t, 512> identify_bytes(const IdentifyBlock& block);

}  // namespace rv::ata
