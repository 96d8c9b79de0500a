// Guest physical memory: host mappings of guest RAM regions with
// bounds-checked, overflow-safe accessors. Guest memory is hostile input:
// callers copy bytes in and out, they never hold references into it as objects.
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <type_traits>
#include <vector>

#include "base/error.h"
#include "base/fd.h"

namespace rv {

struct GuestAddress {
    uint64_t value{0};
    constexpr GuestAddress() = default;
    constexpr explicit GuestAddress(uint64_t v) : value(v) {}
    // Overflow-checked offset; nullopt-like behaviour through the bool.
    constexpr bool checked_add(uint64_t offset, GuestAddress& out) const {
        return !__builtin_add_overflow(value, offset, &out.value);
    }
    constexpr auto operator<=>(const GuestAddress&) const = default;
};

struct GuestRegion {
    GuestAddress start;
    uint64_t size{0};
    uint8_t* host{nullptr};  // host mapping of [start, start + size)
    uint64_t end() const { return start.value + size; }  // exclusive; never overflows (checked at creation)
};

class GuestMemory {
public:
    struct RegionSpec {
        GuestAddress start;
        uint64_t size;
    };

    // Maps anonymous memory for each region. Regions must be non-empty,
    // page-aligned, sorted and non-overlapping.
    static Result<GuestMemory> create(std::span<const RegionSpec> specs);
    // The same RAM held by a memfd: the regions back to back in it from
    // offset 0 (as in a memory file), each mapped MAP_SHARED and marked for
    // huge pages. fd() names it, for what needs guest RAM as a file (another
    // process serving a device, a copy of RAM done by the kernel). Huge
    // pages back it only where the host enables them for shmem
    // (/sys/kernel/mm/transparent_hugepage/shmem_enabled: advise or
    // always), which Debian does not by default; so create() stays the
    // default (--memory-backend).
    static Result<GuestMemory> create_memfd(std::span<const RegionSpec> specs);
    // Maps a snapshot's memory file: the regions back to back from offset
    // 0, MAP_PRIVATE, so pages load lazily from the file on first touch and
    // the guest's writes never reach it (one file serves many clones). The
    // file must be exactly as large as the regions (InvalidInput otherwise).
    static Result<GuestMemory> map_file(std::span<const RegionSpec> specs, int fd);
    // Writes every region, back to back, to `fd` from offset 0 (what
    // map_file reads), the file sized to match. Pages of zeros are left as
    // holes (they read back as zeros), so the file takes the space of the
    // RAM the guest has used. Returns the bytes written.
    Result<uint64_t> write_to(int fd) const;
    // Whether page `page` (kDirtyPageSize) of region `region` is all zeros.
    bool page_is_zero(size_t region, uint64_t page) const;

    GuestMemory() = default;
    GuestMemory(GuestMemory&& other) noexcept;
    GuestMemory& operator=(GuestMemory&& other) noexcept;
    GuestMemory(const GuestMemory&) = delete;
    GuestMemory& operator=(const GuestMemory&) = delete;
    ~GuestMemory();

    const std::vector<GuestRegion>& regions() const { return m_regions; }
    // The memfd holding RAM (create_memfd), else -1.
    int fd() const { return m_fd.get(); }
    uint64_t total_size() const;

    // True if [addr, addr + len) lies entirely in guest RAM (may span regions
    // only where they are contiguous).
    bool check_range(GuestAddress addr, uint64_t len) const;

    // Copy between guest memory and host buffers. Accesses may span adjacent
    // regions; any byte outside RAM fails the whole access before copying.
    Result<void> read(GuestAddress addr, std::span<uint8_t> out) const;
    Result<void> write(GuestAddress addr, std::span<const uint8_t> in) const;
    Result<void> fill(GuestAddress addr, uint8_t value, uint64_t len) const;

    template <typename T>
    Result<T> read_obj(GuestAddress addr) const {
        static_assert(std::is_trivially_copyable_v<T>);
        T value;
        // SAFETY: T is trivially copyable, so any byte pattern copied in is a valid T
        // representation for the plain wire structs this is used with.
        RV_TRY_VOID(read(addr, std::span(reinterpret_cast<uint8_t*>(&value), sizeof(T))));
        return value;
    }
    template <typename T>
    Result<void> write_obj(GuestAddress addr, const T& value) const {
        static_assert(std::is_trivially_copyable_v<T>);
        return write(addr, std::span(reinterpret_cast<const uint8_t*>(&value), sizeof(T)));
    }

    // One 16-bit field the guest updates while we run (a virtqueue index or
    // event field), read or written as a single access. read_obj's memcpy may
    // split a 2-byte copy into a byte load and a word load (glibc does), so a
    // driver moving an index from 0x12ff to 0x1300 could be read as 0x13ff.
    // The address must be 2-byte aligned. Relaxed: callers add the fences.
    Result<uint16_t> load_u16(GuestAddress addr) const;
    Result<void> store_u16(GuestAddress addr, uint16_t value) const;

    // Host pointer to [addr, addr + len), which must lie within one region.
    // For bulk loaders and I/O backends; the caller must still treat the bytes
    // as hostile (the guest may change them concurrently). Counts as a write
    // for dirty tracking: the caller may write through it (a disk read, a
    // received packet), so its pages are marked.
    Result<uint8_t*> host_range(GuestAddress addr, uint64_t len) const;
    // The same without marking, for a caller that keeps the pointer and
    // writes through it later: it marks what it wrote with mark_written
    // once written (a mark made before the write could be taken by a dirty
    // pass that then copies the old bytes).
    Result<uint8_t*> host_range_unmarked(GuestAddress addr, uint64_t len) const;
    // Marks [addr, addr + len) as written for dirty tracking (nothing while
    // tracking is off); bytes outside RAM are ignored.
    void mark_written(GuestAddress addr, uint64_t len) const;

    // Host iovecs for [addr, addr + len), one per region crossed, appended
    // to `out`; fails, appending nothing, if any byte is outside RAM. For
    // handing guest buffers to the kernel (readv, writev, io_uring): the
    // iovecs point into memory the guest may change at any time, so they are
    // never parsed. Unmarked, like host_range_unmarked: a caller that has
    // the kernel write through them marks them once written, with the
    // overload below.
    Result<void> append_iovecs(GuestAddress addr, uint64_t len, std::vector<iovec>& out) const;
    // Marks the bytes of iovecs into guest RAM (append_iovecs') as written;
    // nothing while tracking is off, bytes outside RAM ignored.
    void mark_written(std::span<const iovec> iovecs) const;

    // Dirty tracking of the VMM's own writes (KVM logs the guest's): while
    // on, write(), fill(), write_obj(), store_u16() and host_range() mark
    // every 4 KiB page they cover; what the kernel writes through
    // host_range_unmarked or append_iovecs is marked by its caller, after
    // the write. Diff snapshots and live migration OR
    // this with KVM's dirty log. Thread-safe; marking is one atomic OR.
    static constexpr uint64_t kDirtyPageSize = 4096;
    void set_dirty_tracking(bool on) const;
    bool dirty_tracking() const;
    // Region `index`'s marks since the last call, one bit per page (bit i
    // of word w: page 64w + i), cleared as they are taken.
    std::vector<uint64_t> take_dirty(size_t index) const;

private:
    explicit GuestMemory(std::vector<GuestRegion> regions) : m_regions(std::move(regions)) {}
    const GuestRegion* find_region(GuestAddress addr) const;
    // The region holding all of [addr, addr + len), or null (outside RAM, or
    // across regions).
    const GuestRegion* region_holding(GuestAddress addr, uint64_t len) const;
    void unmap_all();
    void mark_dirty(const GuestRegion& region, uint64_t offset, uint64_t len) const;
    Result<uint16_t*> aligned_u16(GuestAddress addr, bool mark) const;

    struct Dirty {
        std::atomic<bool> on{false};
        std::vector<std::unique_ptr<std::atomic<uint64_t>[]>> bits;  // per region
        std::vector<size_t> words;                                   // per region
    };
    std::vector<GuestRegion> m_regions;
    std::unique_ptr<Dirty> m_dirty;  // made with the regions
    Fd m_fd;                         // create_memfd's
};

}  // namespace rv
