#include "vmm/exit_recorder.h"

#include <fmt/format.h>
#include <time.h>

#include <algorithm>
#include <cstring>

namespace rv {

std::string_view exit_kind_name(kvm::VcpuExit::Kind kind) {
    using Kind = kvm::VcpuExit::Kind;
    switch (kind) {
        case Kind::IoIn:
            return "pio-in";
        case Kind::IoOut:
            return "pio-out";
        case Kind::MmioRead:
            return "mmio-read";
        case Kind::MmioWrite:
            return "mmio-write";
        case Kind::Hlt:
            return "hlt";
        case Kind::Shutdown:
            return "shutdown";
        case Kind::SystemEvent:
            return "system-event";
        case Kind::Interrupted:
            return "interrupted";
        case Kind::FailEntry:
            return "fail-entry";
        case Kind::InternalError:
            return "internal-error";
        case Kind::Unknown:
            return "unknown";
    }
    return "unknown";
}

void ExitRecorder::record(const kvm::VcpuExit& exit) {
    Entry& e = m_ring[m_total % kCapacity];
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    e.ns = uint64_t(ts.tv_sec) * 1'000'000'000u + uint64_t(ts.tv_nsec);
    e.kind = exit.kind;
    e.address = exit.address;
    e.size = exit.size;
    e.count = exit.count;
    e.value = 0;
    std::memcpy(&e.value, exit.data.data(), std::min<size_t>(exit.data.size(), sizeof e.value));
    ++m_total;
}

void ExitRecorder::set_last_value(std::span<const uint8_t> data) {
    if (m_total == 0) return;
    Entry& e = m_ring[(m_total - 1) % kCapacity];
    e.value = 0;
    std::memcpy(&e.value, data.data(), std::min<size_t>(data.size(), sizeof e.value));
}

std::vector<ExitRecorder::Entry> ExitRecorder::entries() const {
    std::vector<Entry> out;
    const uint64_t n = std::min<uint64_t>(m_total, kCapacity);
    out.reserve(n);
    for (uint64_t i = m_total - n; i < m_total; ++i) out.push_back(m_ring[i % kCapacity]);
    return out;
}

std::string ExitRecorder::describe(const Entry& e) {
    using Kind = kvm::VcpuExit::Kind;
    const double secs = double(e.ns) / 1e9;
    switch (e.kind) {
        case Kind::IoIn:
        case Kind::IoOut:
        case Kind::MmioRead:
        case Kind::MmioWrite:
            return fmt::format("{} {:#x} size {}{} {} {:#x} (t={:.6f} s)", exit_kind_name(e.kind),
                               e.address, e.size, e.count > 1 ? fmt::format(" x{}", e.count) : "",
                               e.kind == Kind::IoOut || e.kind == Kind::MmioWrite ? "=" : "->",
                               e.value, secs);
        default:
            return fmt::format("{} (t={:.6f} s)", exit_kind_name(e.kind), secs);
    }
}

}  // namespace rv
