// virtio-blk wire formats and constants (virtio 1.2, 5.2). All fields are
// little-endian; ringvisor runs on x86-64 only, so host order is wire order.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>

namespace rv::virtio::blk {

static_assert(std::endian::native == std::endian::little);

// Feature bits (5.2.3).
inline constexpr uint64_t kFSizeMax = 1ull << 1;
inline constexpr uint64_t kFSegMax = 1ull << 2;
inline constexpr uint64_t kFRo = 1ull << 5;
inline constexpr uint64_t kFBlkSize = 1ull << 6;
inline constexpr uint64_t kFFlush = 1ull << 9;
inline constexpr uint64_t kFMq = 1ull << 12;
inline constexpr uint64_t kFDiscard = 1ull << 13;
inline constexpr uint64_t kFWriteZeroes = 1ull << 14;

// Request types (5.2.6).
inline constexpr uint32_t kTIn = 0;
inline constexpr uint32_t kTOut = 1;
inline constexpr uint32_t kTFlush = 4;
inline constexpr uint32_t kTGetId = 8;
inline constexpr uint32_t kTDiscard = 11;
inline constexpr uint32_t kTWriteZeroes = 13;

// Status byte values.
inline constexpr uint8_t kSOk = 0;
inline constexpr uint8_t kSIoErr = 1;
inline constexpr uint8_t kSUnsupp = 2;

inline constexpr uint32_t kIdBytes = 20;  // GET_ID serial length
inline constexpr uint32_t kSegmentFlagUnmap = 1;
inline constexpr uint64_t kSectorSize = 512;

// Device configuration layout (5.2.4), up to the secure-erase fields.
struct BlkConfig {
    uint64_t capacity;  // 512-byte sectors
    uint32_t size_max;
    uint32_t seg_max;
    uint16_t geometry_cylinders;
    uint8_t geometry_heads;
    uint8_t geometry_sectors;
    uint32_t blk_size;
    uint8_t physical_block_exp;
    uint8_t alignment_offset;
    uint16_t min_io_size;
    uint32_t opt_io_size;
    uint8_t writeback;
    uint8_t unused0;
    uint16_t num_queues;
    uint32_t max_discard_sectors;
    uint32_t max_discard_seg;
    uint32_t discard_sector_alignment;
    uint32_t max_write_zeroes_sectors;
    uint32_t max_write_zeroes_seg;
    uint8_t write_zeroes_may_unmap;
    uint8_t unused1[3];
    uint32_t max_secure_erase_sectors;
    uint32_t max_secure_erase_seg;
    uint32_t secure_erase_sector_alignment;
};
static_assert(sizeof(BlkConfig) == 72);
static_assert(offsetof(BlkConfig, blk_size) == 20);
static_assert(offsetof(BlkConfig, max_discard_sectors) == 36);
static_assert(offsetof(BlkConfig, write_zeroes_may_unmap) == 56);

// The device-readable header every request starts with.
struct BlkReqHeader {
    uint32_t type;
    uint32_t reserved;  // ioprio in legacy drivers; ignored
    uint64_t sector;
};
static_assert(sizeof(BlkReqHeader) == 16);

// One range of a DISCARD or WRITE_ZEROES request.
struct BlkDiscardSegment {
    uint64_t sector;
    uint32_t num_sectors;
    uint32_t flags;
};
static_assert(sizeof(BlkDiscardSegment) == 16);

}  // namespace rv::virtio::blk
