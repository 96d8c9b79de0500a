#include "kvm/coalesced_ring.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

#include "base/log.h"

namespace rv::kvm {

namespace {

// struct kvm_coalesced_mmio_ring is a header and a flexible array, which the
// C++ view of linux/kvm.h pads; lay it out ourselves.
struct RingHeader {
    uint32_t first;  // next entry to consume (ours to advance)
    uint32_t last;   // next entry KVM fills (KVM's)
};
static_assert(sizeof(RingHeader) == 8);
static_assert(sizeof(kvm_coalesced_mmio) == 24);

RingHeader* header(std::span<uint8_t> page) {
    return reinterpret_cast<RingHeader*>(page.data());
}

}  // namespace

Result<std::unique_ptr<CoalescedRing>> CoalescedRing::map(const VcpuFd& vcpu, int page_offset) {
    if (page_offset <= 0) return make_error("coalesced MMIO: bad ring page offset {}", page_offset);
    const long page = ::sysconf(_SC_PAGESIZE);
    void* at = ::mmap(nullptr, static_cast<size_t>(page), PROT_READ | PROT_WRITE, MAP_SHARED,
                      vcpu.fd(), static_cast<off_t>(page_offset) * page);
    if (at == MAP_FAILED) return errno_error("mmap of the coalesced MMIO ring");
    std::span<uint8_t> bytes(static_cast<uint8_t*>(at), static_cast<size_t>(page));
    return std::unique_ptr<CoalescedRing>(new CoalescedRing(bytes, true));
}

CoalescedRing::CoalescedRing(std::span<uint8_t> page, bool owned)
    : m_page(page),
      m_owned(owned),
      m_capacity(page.size() < sizeof(RingHeader)
                     ? 0
                     : static_cast<uint32_t>((page.size() - sizeof(RingHeader)) /
                                             sizeof(kvm_coalesced_mmio))) {}

CoalescedRing::~CoalescedRing() {
    if (m_owned) ::munmap(m_page.data(), m_page.size());
}

bool CoalescedRing::pending() const {
    if (m_capacity == 0) return false;
    auto* h = header(m_page);
    return __atomic_load_n(&h->first, __ATOMIC_RELAXED) !=
           __atomic_load_n(&h->last, __ATOMIC_ACQUIRE);
}

size_t CoalescedRing::drain(const std::function<void(const Write&)>& apply) {
    if (!pending()) return 0;
    std::lock_guard lock(m_lock);
    auto* h = header(m_page);
    auto* entries = reinterpret_cast<kvm_coalesced_mmio*>(m_page.data() + sizeof(RingHeader));
    size_t n = 0;
    for (;;) {
        uint32_t first = __atomic_load_n(&h->first, __ATOMIC_RELAXED);
        // Acquire pairs with KVM's write barrier before it publishes `last`:
        // the entries up to `last` are complete.
        uint32_t last = __atomic_load_n(&h->last, __ATOMIC_ACQUIRE);
        if (first == last) break;
        if (first >= m_capacity || last >= m_capacity) {
            // Only KVM and we write the page; give up rather than read outside it.
            log::error("coalesced MMIO ring: indexes {} / {} outside {} entries; dropping it",
                       first, last, m_capacity);
            __atomic_store_n(&h->first, last < m_capacity ? last : 0, __ATOMIC_RELEASE);
            break;
        }
        const kvm_coalesced_mmio& e = entries[first];
        const uint32_t len = std::min<uint32_t>(e.len, sizeof e.data);
        apply(Write{e.phys_addr, std::span<const uint8_t>(e.data, len), e.pio != 0});
        // Release: the slot is KVM's again only after we are done with it.
        __atomic_store_n(&h->first, (first + 1) % m_capacity, __ATOMIC_RELEASE);
        ++n;
    }
    m_drained.fetch_add(n, std::memory_order_relaxed);
    return n;
}

}  // namespace rv::kvm
