// The snapshot file: VM and device state in named, versioned sections.
//
// Layout (all integers little-endian):
//   magic "RVSNAPSH" (8 bytes), u32 format version, u32 section count,
//   per section: u16 id length, id (printable ASCII, unique), u32 section
//   version, u64 payload length, payload;
//   u64 CRC-64/XZ of every byte before it.
// Guest memory goes to a separate file (as Firecracker lays them out). A
// section's id is the stable id the device manager gives a device (e.g.
// "uart:com1", "virtio-blk:rootfs"), so state finds its device again; its
// version is the device State's own, so one device's layout can change
// without a new file format.
//
// parse() treats the file as hostile: a wrong magic, another format
// version, a checksum mismatch, a truncated or oversized field and a
// duplicate id are refused with an InvalidInput error saying which.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace rv::snapshot {

// CRC-64/XZ (ECMA-182 polynomial, reflected, init and xorout all ones):
// "123456789" gives 0x995dc9bbdf1939fa.
uint64_t crc64(std::span<const uint8_t> bytes);

struct Section {
    std::string id;
    uint32_t version{0};
    std::vector<uint8_t> data;

    bool operator==(const Section&) const = default;
};

struct SnapshotFile {
    static constexpr std::array<uint8_t, 8> kMagic{'R', 'V', 'S', 'N', 'A', 'P', 'S', 'H'};
    static constexpr uint32_t kFormatVersion = 1;
    static constexpr size_t kMaxSections = 4096;
    static constexpr size_t kMaxIdLength = 128;

    std::vector<Section> sections;

    // Adds a section; an id that is empty, too long, not printable ASCII or
    // already present is the caller's bug and returns an Internal error.
    Result<void> add(std::string id, uint32_t version, std::vector<uint8_t> data);
    // nullptr when absent.
    const Section* find(std::string_view id) const;

    std::vector<uint8_t> encode() const;
    static Result<SnapshotFile> parse(std::span<const uint8_t> bytes);

    // Written to a temporary file beside `path`, fsynced, then renamed over
    // it: a crash leaves the old file or the new one, never half of one.
    Result<void> write(const std::string& path) const;
    static Result<SnapshotFile> read(const std::string& path);

    bool operator==(const SnapshotFile&) const = default;
};

}  // namespace rv::snapshot
