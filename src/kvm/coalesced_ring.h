// KVM's coalesced MMIO ring: one page per VM, mapped through a vCPU fd, to
// which KVM appends guest writes to registered zones
// (VmFd::register_coalesced_mmio) instead of exiting to user space. The VMM
// is the only consumer. It must apply the buffered writes, oldest first,
// before it serves any exit that could observe them, and whenever a device
// asks for them.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>

#include "base/error.h"
#include "kvm/kvm.h"

namespace rv::kvm {

class CoalescedRing {
  public:
    struct Write {
        uint64_t address;
        std::span<const uint8_t> data;  // 1..8 bytes
        bool pio;                       // a coalesced port write (KVM_REGISTER_COALESCED_PIO)
    };

    // Maps the ring page of `vcpu`; page_offset is KVM_CAP_COALESCED_MMIO's
    // value (the page's index in the vCPU mapping).
    static Result<std::unique_ptr<CoalescedRing>> map(const VcpuFd& vcpu, int page_offset);
    // Over memory laid out as struct kvm_coalesced_mmio_ring (tests).
    explicit CoalescedRing(std::span<uint8_t> page) : CoalescedRing(page, false) {}
    ~CoalescedRing();
    CoalescedRing(const CoalescedRing&) = delete;
    CoalescedRing& operator=(const CoalescedRing&) = delete;

    // Hands every buffered write to `apply`, oldest first, and frees its
    // slot after apply returns. Any thread; concurrent callers take turns, so
    // a caller returns only once every write buffered before the call has
    // been applied. Never call it while holding a lock `apply` may take.
    size_t drain(const std::function<void(const Write&)>& apply);
    // Whether KVM has buffered writes not yet drained (no lock, no syscall).
    bool pending() const;
    // Writes applied so far.
    uint64_t drained() const { return m_drained.load(std::memory_order_relaxed); }
    uint32_t capacity() const { return m_capacity; }

  private:
    CoalescedRing(std::span<uint8_t> page, bool owned);

    std::span<uint8_t> m_page;
    bool m_owned;
    uint32_t m_capacity;  // entries in the ring (KVM_COALESCED_MMIO_MAX)
    std::mutex m_lock;
    std::atomic<uint64_t> m_drained{0};
};

}  // namespace rv::kvm
