#include "memory/guest_memory.h"

#include <atomic>

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <limits>

#include "base/fd.h"
#include "memory/page_runs.h"

namespace rv {

namespace {
constexpr uint64_t kPageSize = 4096;
constexpr uint64_t kHugePageSize = 2 << 20;

// Anonymous memory aligned to 2 MiB and marked for transparent huge pages:
// KVM can then map guest RAM with 2 MiB pages, so a guest touching its
// memory takes one (nested) page fault per 2 MiB instead of per 4 KiB.
Result<uint8_t*> map_region(uint64_t size) {
    uint64_t padded = size + (size >= kHugePageSize ? kHugePageSize : 0);
    void* raw = ::mmap(nullptr, padded, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) return errno_error("guest memory: mmap");
    auto base = reinterpret_cast<uintptr_t>(raw);
    uintptr_t aligned = padded == size ? base : (base + kHugePageSize - 1) & ~(kHugePageSize - 1);
    // Give back the unaligned head and tail.
    if (aligned > base) ::munmap(raw, aligned - base);
    if (base + padded > aligned + size)
        ::munmap(reinterpret_cast<void*>(aligned + size), base + padded - (aligned + size));
    ::madvise(reinterpret_cast<void*>(aligned), size, MADV_HUGEPAGE);  // best effort
    return reinterpret_cast<uint8_t*>(aligned);
}

}  // namespace

Result<GuestMemory> GuestMemory::create(std::span<const RegionSpec> specs) {
    if (specs.empty()) return make_error("guest memory: no regions");
    std::vector<GuestRegion> regions;
    GuestMemory memory;  // owns mappings made so far, so failures unmap them
    for (const auto& spec : specs) {
        if (spec.size == 0) return make_error("guest memory: empty region");
        if (spec.start.value % kPageSize || spec.size % kPageSize)
            return make_error("guest memory: region {:#x}+{:#x} not page aligned", spec.start.value,
                              spec.size);
        uint64_t end;
        if (__builtin_add_overflow(spec.start.value, spec.size, &end))
            return make_error("guest memory: region {:#x}+{:#x} overflows", spec.start.value,
                              spec.size);
        if (!memory.m_regions.empty() && memory.m_regions.back().end() > spec.start.value)
            return make_error("guest memory: regions overlap or are unsorted at {:#x}",
                              spec.start.value);
        uint8_t* host = RV_TRY(map_region(spec.size));
        memory.m_regions.push_back({spec.start, spec.size, host});
    }
    memory.m_dirty = std::make_unique<Dirty>();
    for (const auto& r : memory.m_regions) {
        size_t words = (r.size / kDirtyPageSize + 63) / 64;
        memory.m_dirty->words.push_back(words);
        memory.m_dirty->bits.push_back(std::make_unique<std::atomic<uint64_t>[]>(words));
    }
    return memory;
}

Result<GuestMemory> GuestMemory::map_file(std::span<const RegionSpec> specs, int fd) {
    // The layout checks of create(), on a throwaway reservation-free pass.
    uint64_t total = 0;
    for (const auto& spec : specs) {
        if (__builtin_add_overflow(total, spec.size, &total))
            return make_error("guest memory: regions overflow");
    }
    struct stat st {};
    if (::fstat(fd, &st) < 0) return errno_error("guest memory file: fstat");
    if (static_cast<uint64_t>(st.st_size) != total)
        return input_error("the memory file holds {} bytes, the VM has {} bytes of RAM",
                           st.st_size, total);
    GuestMemory memory = RV_TRY(create(specs));  // validates the layout, reserves the addresses
    uint64_t offset = 0;
    for (auto& r : memory.m_regions) {
        // Over the anonymous mapping, at the same address.
        void* at = ::mmap(r.host, r.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd,
                          static_cast<off_t>(offset));
        if (at == MAP_FAILED) return errno_error("guest memory file: mmap");
        offset += r.size;
    }
    return memory;
}

Result<GuestMemory> GuestMemory::create_memfd(std::span<const RegionSpec> specs) {
    GuestMemory memory = RV_TRY(create(specs));  // validates the layout, reserves the addresses
    int raw = ::memfd_create("ringvisor-guest-ram", MFD_CLOEXEC);
    if (raw < 0) return errno_error("guest memory: memfd_create");
    Fd fd(raw);
    if (::ftruncate(fd.get(), static_cast<off_t>(memory.total_size())) < 0)
        return errno_error("guest memory: sizing the memfd");
    uint64_t offset = 0;
    for (auto& r : memory.m_regions) {
        // Over the anonymous reservation, at the same (2 MiB aligned) address.
        void* at = ::mmap(r.host, r.size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd.get(),
                          static_cast<off_t>(offset));
        if (at == MAP_FAILED) return errno_error("guest memory: mapping the memfd");
        if (r.size >= kHugePageSize) (void)::madvise(r.host, r.size, MADV_HUGEPAGE);
        offset += r.size;
    }
    memory.m_fd = std::move(fd);
    return memory;
}

bool GuestMemory::page_is_zero(size_t region, uint64_t page) const {
    const uint8_t* p = m_regions[region].host + page * kDirtyPageSize;
    uint64_t acc = 0;
    for (size_t i = 0; i < kDirtyPageSize; i += 8) {
        uint64_t w;
        std::memcpy(&w, p + i, 8);
        acc |= w;
    }
    return acc == 0;
}

Result<uint64_t> GuestMemory::write_to(int fd) const {
    if (::ftruncate(fd, 0) < 0 || ::ftruncate(fd, static_cast<off_t>(total_size())) < 0)
        return errno_error("memory file: ftruncate");
    uint64_t offset = 0, written = 0;
    for (size_t i = 0; i < m_regions.size(); ++i) {
        const GuestRegion& r = m_regions[i];
        // Runs of pages with data, up to 64 MiB each; zeros stay holes.
        auto walked = for_each_page_run(
            r.size / kDirtyPageSize, (64u << 20) / kDirtyPageSize,
            [&](uint64_t page) { return !page_is_zero(i, page); },
            [&](uint64_t first, uint64_t end, bool) -> Result<void> {
                const uint64_t at = first * kDirtyPageSize, len = (end - first) * kDirtyPageSize;
                RV_TRY_VOID(with_context(write_all_at(fd, std::span(r.host + at, len), offset + at),
                                         "memory file"));
                written += len;
                return {};
            });
        RV_TRY_VOID(walked);
        offset += r.size;
    }
    return written;
}

GuestMemory::GuestMemory(GuestMemory&& other) noexcept
    : m_regions(std::exchange(other.m_regions, {})),
      m_dirty(std::move(other.m_dirty)),
      m_fd(std::move(other.m_fd)) {}

GuestMemory& GuestMemory::operator=(GuestMemory&& other) noexcept {
    if (this != &other) {
        unmap_all();
        m_regions = std::exchange(other.m_regions, {});
        m_dirty = std::move(other.m_dirty);
        m_fd = std::move(other.m_fd);
    }
    return *this;
}

GuestMemory::~GuestMemory() { unmap_all(); }

void GuestMemory::unmap_all() {
    for (auto& r : m_regions) ::munmap(r.host, r.size);
    m_regions.clear();
}

uint64_t GuestMemory::total_size() const {
    uint64_t total = 0;
    for (const auto& r : m_regions) total += r.size;
    return total;
}

const GuestRegion* GuestMemory::find_region(GuestAddress addr) const {
    // Regions are sorted: find the last one starting at or below addr.
    auto it = std::upper_bound(m_regions.begin(), m_regions.end(), addr.value,
                               [](uint64_t a, const GuestRegion& r) { return a < r.start.value; });
    if (it == m_regions.begin()) return nullptr;
    --it;
    return addr.value < it->end() ? &*it : nullptr;
}

bool GuestMemory::check_range(GuestAddress addr, uint64_t len) const {
    uint64_t end;
    if (__builtin_add_overflow(addr.value, len, &end)) return false;
    uint64_t cur = addr.value;
    while (cur < end) {
        const GuestRegion* r = find_region(GuestAddress(cur));
        if (!r) return false;
        cur = std::min(end, r->end());
    }
    return true;
}

const GuestRegion* GuestMemory::region_holding(GuestAddress addr, uint64_t len) const {
    const GuestRegion* r = find_region(addr);
    return r && len <= r->end() - addr.value ? r : nullptr;
}

Result<void> GuestMemory::read(GuestAddress addr, std::span<uint8_t> out) const {
    if (out.empty()) return {};  // (anywhere, as check_range says; and memcpy wants pointers)
    // Nearly every access lies in one region: one lookup, one copy.
    if (const GuestRegion* r = region_holding(addr, out.size())) [[likely]] {
        std::memcpy(out.data(), r->host + (addr.value - r->start.value), out.size());
        return {};
    }
    if (!check_range(addr, out.size()))
        return make_error("guest read {:#x}+{:#x} outside guest memory", addr.value, out.size());
    uint64_t cur = addr.value;
    size_t done = 0;
    while (done < out.size()) {
        const GuestRegion* r = find_region(GuestAddress(cur));
        uint64_t n = std::min<uint64_t>(out.size() - done, r->end() - cur);
        std::memcpy(out.data() + done, r->host + (cur - r->start.value), n);
        done += n;
        cur += n;
    }
    return {};
}

Result<void> GuestMemory::write(GuestAddress addr, std::span<const uint8_t> in) const {
    if (in.empty()) return {};
    if (const GuestRegion* r = region_holding(addr, in.size())) [[likely]] {
        std::memcpy(r->host + (addr.value - r->start.value), in.data(), in.size());
        mark_dirty(*r, addr.value - r->start.value, in.size());
        return {};
    }
    if (!check_range(addr, in.size()))
        return make_error("guest write {:#x}+{:#x} outside guest memory", addr.value, in.size());
    uint64_t cur = addr.value;
    size_t done = 0;
    while (done < in.size()) {
        const GuestRegion* r = find_region(GuestAddress(cur));
        uint64_t n = std::min<uint64_t>(in.size() - done, r->end() - cur);
        std::memcpy(r->host + (cur - r->start.value), in.data() + done, n);
        mark_dirty(*r, cur - r->start.value, n);
        done += n;
        cur += n;
    }
    return {};
}

Result<void> GuestMemory::fill(GuestAddress addr, uint8_t value, uint64_t len) const {
    if (!check_range(addr, len))
        return make_error("guest fill {:#x}+{:#x} outside guest memory", addr.value, len);
    uint64_t cur = addr.value;
    uint64_t end = addr.value + len;
    while (cur < end) {
        const GuestRegion* r = find_region(GuestAddress(cur));
        uint64_t n = std::min(end, r->end()) - cur;
        std::memset(r->host + (cur - r->start.value), value, n);
        mark_dirty(*r, cur - r->start.value, n);
        cur += n;
    }
    return {};
}

Result<uint16_t*> GuestMemory::aligned_u16(GuestAddress addr, bool mark) const {
    if (addr.value % alignof(uint16_t))
        return make_error("guest u16 at {:#x} is not 2-byte aligned", addr.value);
    uint8_t* host = RV_TRY(mark ? host_range(addr, sizeof(uint16_t))
                                : host_range_unmarked(addr, sizeof(uint16_t)));
    // SAFETY: regions are page-aligned mappings, so an even guest address is
    // an even host address; the two bytes lie in one region (host_range).
    return reinterpret_cast<uint16_t*>(host);
}

Result<uint16_t> GuestMemory::load_u16(GuestAddress addr) const {
    uint16_t* p = RV_TRY(aligned_u16(addr, false));
    return std::atomic_ref<uint16_t>(*p).load(std::memory_order_relaxed);
}

Result<void> GuestMemory::store_u16(GuestAddress addr, uint16_t value) const {
    uint16_t* p = RV_TRY(aligned_u16(addr, true));
    std::atomic_ref<uint16_t>(*p).store(value, std::memory_order_relaxed);
    return {};
}

Result<uint8_t*> GuestMemory::host_range_unmarked(GuestAddress addr, uint64_t len) const {
    const GuestRegion* r = find_region(addr);
    uint64_t end;
    if (!r || __builtin_add_overflow(addr.value, len, &end) || end > r->end())
        return make_error("guest range {:#x}+{:#x} not inside one memory region", addr.value, len);
    return r->host + (addr.value - r->start.value);
}

Result<uint8_t*> GuestMemory::host_range(GuestAddress addr, uint64_t len) const {
    uint8_t* host = RV_TRY(host_range_unmarked(addr, len));
    const GuestRegion* r = find_region(addr);
    mark_dirty(*r, addr.value - r->start.value, len);
    return host;
}

// --- dirty tracking ------------------------------------------------------------

void GuestMemory::mark_written(GuestAddress addr, uint64_t len) const {
    if (!m_dirty || !m_dirty->on.load(std::memory_order_relaxed)) return;
    uint64_t end;
    if (__builtin_add_overflow(addr.value, len, &end)) end = std::numeric_limits<uint64_t>::max();
    for (uint64_t cur = addr.value; cur < end;) {
        const GuestRegion* r = find_region(GuestAddress(cur));
        if (!r) return;
        const uint64_t n = std::min(end, r->end()) - cur;
        mark_dirty(*r, cur - r->start.value, n);
        cur += n;
    }
}

void GuestMemory::mark_written(std::span<const iovec> iovecs) const {
    if (!dirty_tracking()) return;
    for (const iovec& v : iovecs) {
        const auto* p = static_cast<const uint8_t*>(v.iov_base);
        for (const GuestRegion& r : m_regions) {
            if (p < r.host || p >= r.host + r.size) continue;
            const uint64_t offset = static_cast<uint64_t>(p - r.host);
            mark_dirty(r, offset, std::min<uint64_t>(v.iov_len, r.size - offset));
            break;
        }
    }
}

Result<void> GuestMemory::append_iovecs(GuestAddress addr, uint64_t len,
                                        std::vector<iovec>& out) const {
    // One region lookup per piece (no check_range first: this is per buffer
    // on the I/O paths); a byte outside RAM takes back what was appended.
    const size_t first = out.size();
    uint64_t end;
    if (__builtin_add_overflow(addr.value, len, &end))
        return make_error("guest buffer {:#x}+{:#x} is outside guest memory", addr.value, len);
    for (uint64_t cur = addr.value; cur < end;) {
        const GuestRegion* r = find_region(GuestAddress(cur));
        if (!r) {
            out.resize(first);
            return make_error("guest buffer {:#x}+{:#x} is outside guest memory", addr.value, len);
        }
        const uint64_t n = std::min(end, r->end()) - cur;
        // SAFETY: n mapped bytes of one region; only handed to the kernel,
        // never read as objects.
        out.push_back(iovec{r->host + (cur - r->start.value), static_cast<size_t>(n)});
        cur += n;
    }
    return {};
}

void GuestMemory::mark_dirty(const GuestRegion& region, uint64_t offset, uint64_t len) const {
    if (!m_dirty || !m_dirty->on.load(std::memory_order_relaxed) || len == 0) return;
    const size_t index = static_cast<size_t>(&region - m_regions.data());
    std::atomic<uint64_t>* bits = m_dirty->bits[index].get();
    const uint64_t first = offset / kDirtyPageSize;
    const uint64_t last = (offset + len - 1) / kDirtyPageSize;
    for (uint64_t page = first; page <= last; ++page)
        bits[page / 64].fetch_or(1ull << (page % 64), std::memory_order_relaxed);
}

void GuestMemory::set_dirty_tracking(bool on) const {
    if (m_dirty) m_dirty->on.store(on, std::memory_order_relaxed);
}

bool GuestMemory::dirty_tracking() const {
    return m_dirty && m_dirty->on.load(std::memory_order_relaxed);
}

std::vector<uint64_t> GuestMemory::take_dirty(size_t index) const {
    if (!m_dirty || index >= m_regions.size()) return {};
    std::vector<uint64_t> out(m_dirty->words[index]);
    for (size_t w = 0; w < out.size(); ++w)
        out[w] = m_dirty->bits[index][w].exchange(0, std::memory_order_relaxed);
    return out;
}

}  // namespace rv
