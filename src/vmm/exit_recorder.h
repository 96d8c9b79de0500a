// The last exits a vCPU served in user space, kept so that a guest crash
// (a triple fault) can be reported with what led up to it. Written only by
// the vCPU's own thread; read once that thread has stopped.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "kvm/kvm.h"

namespace rv {

class ExitRecorder {
  public:
    static constexpr size_t kCapacity = 32;

    struct Entry {
        uint64_t ns{0};  // CLOCK_MONOTONIC
        kvm::VcpuExit::Kind kind{kvm::VcpuExit::Kind::Unknown};
        uint64_t address{0};
        uint32_t size{0};
        uint32_t count{1};
        uint64_t value{0};  // the first up-to-8 data bytes (written, or read once served)
    };

    void record(const kvm::VcpuExit& exit);
    // After a read was served: the value the guest got.
    void set_last_value(std::span<const uint8_t> data);
    // Oldest first.
    std::vector<Entry> entries() const;
    uint64_t total() const { return m_total; }

    // "mmio-write 0xfebf1010 4 = 0x1 (12.345678 s)"
    static std::string describe(const Entry& entry);

  private:
    std::array<Entry, kCapacity> m_ring{};
    uint64_t m_total{0};
};

std::string_view exit_kind_name(kvm::VcpuExit::Kind kind);

}  // namespace rv
