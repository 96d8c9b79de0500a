// Bus-master IDE DMA (SFF-8038i, as in the PIIX): register bits and the walk
// of a guest's physical region descriptor (PRD) table. The table and every
// region it names are guest-supplied: the walk is capped, every region is
// bounds-checked against guest RAM, and the result is a list of host iovecs
// for the block backend.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <span>
#include <vector>

#include "base/error.h"
#include "memory/guest_memory.h"

namespace rv::ide {

// Per-channel register offsets inside BAR 4 (secondary channel at +8).
inline constexpr unsigned kBmCommand = 0;
inline constexpr unsigned kBmStatus = 2;
inline constexpr unsigned kBmPrdTable = 4;  // 4 bytes
inline constexpr unsigned kBmChannelStride = 8;

inline constexpr uint8_t kBmCmdStart = 0x01;
inline constexpr uint8_t kBmCmdToMemory = 0x08;  // bus master writes memory (a device read)

inline constexpr uint8_t kBmStatusActive = 0x01;
inline constexpr uint8_t kBmStatusError = 0x02;       // write 1 to clear
inline constexpr uint8_t kBmStatusInterrupt = 0x04;   // write 1 to clear
inline constexpr uint8_t kBmStatusDmaCapable = 0x60;  // drive 0 / drive 1, plain R/W bits

struct PrdEntry {
    uint32_t address;
    uint16_t byte_count;  // 0 = 64 KiB; bit 0 ignored (regions are word-sized)
    uint16_t flags;
};
static_assert(sizeof(PrdEntry) == 8);
inline constexpr uint16_t kPrdEndOfTable = 0x8000;

// A looping or endless table (the guest controls every entry, and nothing
// but EOT ends it) is cut off here: 4096 entries describe up to 256 MiB,
// far more than the largest ATA command (65536 sectors, 32 MiB).
inline constexpr size_t kMaxPrdEntries = 4096;

struct DmaPlan {
    std::vector<iovec> iov;  // host ranges covering exactly the transfer, in order
    // The table describes more memory than the transfer used: per SFF-8038i
    // the controller then leaves its Active bit set at completion.
    bool table_longer{false};
};

// Walks the table at `table` until `bytes` are covered. Fails (the guest
// sees a bus-master error) if the table ends first, runs past the cap, or
// names memory outside guest RAM.
Result<DmaPlan> walk_prd_table(const GuestMemory& memory, GuestAddress table, uint64_t bytes);

// Appends host iovecs for [addr, addr + len) of guest RAM, split where the
// range crosses from one memory region into an adjacent one and merged with
// the previous iovec where contiguous (GuestMemory::append_iovecs: not
// marked for dirty tracking; a DMA read marks them when it completes).
Result<void> append_guest_iovecs(const GuestMemory& memory, GuestAddress addr, uint64_t len,
                                 std::vector<iovec>& out);

// Hands out a DmaPlan's iovecs in submissions the backend accepts: at most
// `max_iovecs` each, and each a whole number of sectors long so the disk
// offset of the next one stays sector-aligned.
class DmaCursor {
  public:
    DmaCursor() = default;
    explicit DmaCursor(std::vector<iovec> iov) : m_iov(std::move(iov)) {}
    bool done() const { return m_index >= m_iov.size(); }
    // The next chunk; empty when done (or when the remaining ranges cannot
    // form a whole sector, which a plan covering whole sectors never has).
    std::vector<iovec> next(size_t max_iovecs, uint64_t sector_size);

  private:
    std::vector<iovec> m_iov;
    size_t m_index{0};
    size_t m_offset{0};  // bytes of m_iov[m_index] already handed out
};

}  // namespace rv::ide
