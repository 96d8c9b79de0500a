#include "kvm/kvm_state.h"
#include "kvm/ioctl_abi.h"

#include <sys/ioctl.h>

#include <algorithm>
#include <cstring>
#include <ctime>

namespace rv::kvm {

namespace {

using abi::kGetMsrIndexList;
using abi::kGetMsrs;
using abi::kGetXsave;
using abi::kSetXsave;
using abi::MsrListHeader;
using abi::MsrsHeader;
using abi::Xsave;
static_assert(abi::kXsaveBytes == kXsaveSize);
constexpr uint32_t kMsrTscDeadline = 0x6e0;

template <typename Arg>
Result<void> xioctl(int fd, unsigned long request, Arg arg, const char* what) {
    if (abi::do_ioctl(fd, request, arg) < 0) return errno_error(what);
    return {};
}

// A kernel struct as a fixed-size blob.
template <typename T>
void put(snapshot::Writer& w, const T& v) {
    w.blob(std::span(reinterpret_cast<const uint8_t*>(&v), sizeof v));
}
template <typename T>
T get(snapshot::Reader& r, const char* name) {
    T v{};
    const auto bytes = r.blob(sizeof v);
    if (!r.ok()) return v;
    if (bytes.size() != sizeof v) {
        r.fail(fmt::format("{}: {} bytes, this ringvisor's is {}", name, bytes.size(), sizeof v));
        return v;
    }
    std::memcpy(&v, bytes.data(), sizeof v);
    return v;
}
template <typename T>
bool same(const T& a, const T& b) {
    return std::memcmp(&a, &b, sizeof a) == 0;
}

// KVM_GET_MSRS stops at the first MSR it cannot read and returns how many it
// read; drop that one and go on.
Result<std::vector<std::pair<uint32_t, uint64_t>>> read_msrs(int fd, std::span<const uint32_t> indices) {
    std::vector<std::pair<uint32_t, uint64_t>> out;
    std::vector<uint32_t> todo(indices.begin(), indices.end());
    while (!todo.empty()) {
        std::vector<uint8_t> buf(sizeof(MsrsHeader) + todo.size() * sizeof(kvm_msr_entry), 0);
        reinterpret_cast<MsrsHeader*>(buf.data())->nmsrs = static_cast<uint32_t>(todo.size());
        auto* entries = reinterpret_cast<kvm_msr_entry*>(buf.data() + sizeof(MsrsHeader));
        for (size_t i = 0; i < todo.size(); ++i) entries[i].index = todo[i];
        int n;
        do {
            n = ::ioctl(fd, kGetMsrs, buf.data());
        } while (n < 0 && errno == EINTR);
        if (n < 0) return errno_error("KVM_GET_MSRS");
        for (int i = 0; i < n; ++i) out.emplace_back(entries[i].index, entries[i].data);
        const size_t skip = static_cast<size_t>(n) + 1;  // the one it refused
        todo.erase(todo.begin(), todo.begin() + static_cast<ptrdiff_t>(std::min(skip, todo.size())));
    }
    return out;
}

}  // namespace

Result<std::vector<uint32_t>> saveable_msrs(const Kvm& kvm) {
    MsrListHeader probe{0};
    // E2BIG with nmsrs set to the count needed.
    if (::ioctl(kvm.fd(), kGetMsrIndexList, &probe) == 0) return std::vector<uint32_t>{};
    if (errno != E2BIG) return errno_error("KVM_GET_MSR_INDEX_LIST");
    std::vector<uint32_t> buf(1 + probe.nmsrs);
    buf[0] = probe.nmsrs;
    RV_TRY_VOID(xioctl(kvm.fd(), kGetMsrIndexList, buf.data(), "KVM_GET_MSR_INDEX_LIST"));
    return std::vector<uint32_t>(buf.begin() + 1, buf.begin() + 1 + buf[0]);
}

void VcpuState::encode(snapshot::Writer& w) const {
    put(w, regs);
    put(w, sregs);
    w.raw(xsave);
    put(w, xcrs);
    w.u32(static_cast<uint32_t>(msrs.size()));
    for (const auto& [index, value] : msrs) {
        w.u32(index);
        w.u64(value);
    }
    w.boolean(lapic.has_value());
    if (lapic) put(w, *lapic);
    put(w, mp_state);
    put(w, events);
    put(w, debugregs);
}

VcpuState VcpuState::decode(snapshot::Reader& r) {
    VcpuState s;
    s.regs = get<kvm_regs>(r, "regs");
    s.sregs = get<kvm_sregs>(r, "sregs");
    s.xsave = r.array<kXsaveSize>();
    s.xcrs = get<kvm_xcrs>(r, "xcrs");
    const uint32_t n = r.u32();
    if (n > 4096) r.fail(fmt::format("{} MSRs", n));
    for (uint32_t i = 0; i < n && r.ok(); ++i) {
        const uint32_t index = r.u32();
        s.msrs.emplace_back(index, r.u64());
    }
    if (r.boolean()) s.lapic = get<kvm_lapic_state>(r, "lapic");
    s.mp_state = get<kvm_mp_state>(r, "mp_state");
    s.events = get<kvm_vcpu_events>(r, "vcpu_events");
    s.debugregs = get<kvm_debugregs>(r, "debugregs");
    if (s.xcrs.nr_xcrs > KVM_MAX_XCRS) r.fail(fmt::format("{} XCRs", s.xcrs.nr_xcrs));
    return s;
}

bool VcpuState::operator==(const VcpuState& o) const {
    return same(regs, o.regs) && same(sregs, o.sregs) && xsave == o.xsave && same(xcrs, o.xcrs) && msrs == o.msrs &&
           lapic.has_value() == o.lapic.has_value() && (!lapic || same(*lapic, *o.lapic)) &&
           same(mp_state, o.mp_state) && same(events, o.events) && same(debugregs, o.debugregs);
}

Result<VcpuState> save_vcpu(VcpuFd& vcpu, std::span<const uint32_t> msr_indices, bool irqchip) {
    const int fd = vcpu.fd();
    vcpu.set_immediate_exit(true);
    auto completed = vcpu.run();
    vcpu.set_immediate_exit(false);
    if (!completed) return std::unexpected(completed.error().context("completing the last exit"));
    if (completed->kind != VcpuExit::Kind::Interrupted)
        return make_error("completing the last exit: KVM_RUN with immediate_exit returned exit {}", completed->reason);
    VcpuState s;
    s.regs = RV_TRY(vcpu.get_regs());
    s.sregs = RV_TRY(vcpu.get_sregs());
    RV_TRY_VOID(xioctl(fd, kGetXsave, s.xsave.data(), "KVM_GET_XSAVE"));
    RV_TRY_VOID(xioctl(fd, KVM_GET_XCRS, &s.xcrs, "KVM_GET_XCRS"));
    s.msrs = RV_TRY(read_msrs(fd, msr_indices));
    if (irqchip) s.lapic = RV_TRY(vcpu.get_lapic());
    RV_TRY_VOID(xioctl(fd, KVM_GET_MP_STATE, &s.mp_state, "KVM_GET_MP_STATE"));
    RV_TRY_VOID(xioctl(fd, KVM_GET_VCPU_EVENTS, &s.events, "KVM_GET_VCPU_EVENTS"));
    RV_TRY_VOID(xioctl(fd, KVM_GET_DEBUGREGS, &s.debugregs, "KVM_GET_DEBUGREGS"));
    return s;
}

Result<void> restore_vcpu(const VcpuFd& vcpu, const VcpuState& s) {
    const int fd = vcpu.fd();
    RV_TRY_VOID(vcpu.set_sregs(s.sregs));
    RV_TRY_VOID(vcpu.set_regs(s.regs));
    Xsave xsave{};
    std::memcpy(&xsave, s.xsave.data(), sizeof xsave);
    RV_TRY_VOID(xioctl(fd, kSetXsave, &xsave, "KVM_SET_XSAVE"));
    kvm_xcrs xcrs = s.xcrs;
    RV_TRY_VOID(xioctl(fd, KVM_SET_XCRS, &xcrs, "KVM_SET_XCRS"));
    std::vector<std::pair<uint32_t, uint64_t>> msrs, deadline;
    for (const auto& m : s.msrs) (m.first == kMsrTscDeadline ? deadline : msrs).push_back(m);
    RV_TRY_VOID(vcpu.set_msrs(msrs));
    if (s.lapic) RV_TRY_VOID(vcpu.set_lapic(*s.lapic));
    RV_TRY_VOID(vcpu.set_msrs(deadline));
    kvm_debugregs debugregs = s.debugregs;
    RV_TRY_VOID(xioctl(fd, KVM_SET_DEBUGREGS, &debugregs, "KVM_SET_DEBUGREGS"));
    kvm_mp_state mp = s.mp_state;
    RV_TRY_VOID(xioctl(fd, KVM_SET_MP_STATE, &mp, "KVM_SET_MP_STATE"));
    kvm_vcpu_events events = s.events;
    RV_TRY_VOID(xioctl(fd, KVM_SET_VCPU_EVENTS, &events, "KVM_SET_VCPU_EVENTS"));
    return {};
}

void VmState::encode(snapshot::Writer& w) const {
    put(w, clock);
    w.boolean(irqchip.has_value());
    if (irqchip)
        for (const kvm_irqchip& chip : *irqchip) put(w, chip);
    w.boolean(pit.has_value());
    if (pit) put(w, *pit);
}

VmState VmState::decode(snapshot::Reader& r) {
    VmState s;
    s.clock = get<kvm_clock_data>(r, "clock");
    if (r.boolean()) {
        s.irqchip.emplace();
        for (uint32_t id = 0; id < 3; ++id) {
            (*s.irqchip)[id] = get<kvm_irqchip>(r, "irqchip");
            if (r.ok() && (*s.irqchip)[id].chip_id != id)
                r.fail(fmt::format("irqchip {} has chip id {}", id, (*s.irqchip)[id].chip_id));
        }
    }
    if (r.boolean()) s.pit = get<kvm_pit_state2>(r, "pit");
    return s;
}

bool VmState::operator==(const VmState& o) const {
    if (clock.clock != o.clock.clock || irqchip.has_value() != o.irqchip.has_value() || pit.has_value() != o.pit.has_value())
        return false;
    if (irqchip)
        for (size_t i = 0; i < 3; ++i)
            if (!same((*irqchip)[i], (*o.irqchip)[i])) return false;
    return !pit || same(*pit, *o.pit);
}

Result<VmState> save_vm(const VmFd& vm, bool irqchip, bool pit) {
    const int fd = vm.fd();
    VmState s;
    RV_TRY_VOID(xioctl(fd, KVM_GET_CLOCK, &s.clock, "KVM_GET_CLOCK"));
    // The clock, and the wall-clock time it was read at (KVM's own pairing
    // where the host's clocksource gives one, else ours, a moment later),
    // for a restore that advances the clock by the time since
    // (clock_realtime). The other fields say how it was read.
    uint64_t realtime = s.clock.realtime;
    if (!(s.clock.flags & KVM_CLOCK_REALTIME)) {
        timespec now{};
        ::clock_gettime(CLOCK_REALTIME, &now);
        realtime = static_cast<uint64_t>(now.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(now.tv_nsec);
    }
    s.clock = kvm_clock_data{.clock = s.clock.clock, .flags = KVM_CLOCK_REALTIME, .realtime = realtime};
    if (irqchip) {
        s.irqchip.emplace();
        for (uint32_t id = 0; id < 3; ++id) {
            kvm_irqchip& chip = (*s.irqchip)[id];
            chip.chip_id = id;
            RV_TRY_VOID(xioctl(fd, KVM_GET_IRQCHIP, &chip, "KVM_GET_IRQCHIP"));
        }
    }
    if (pit) {
        s.pit.emplace();
        RV_TRY_VOID(xioctl(fd, KVM_GET_PIT2, &*s.pit, "KVM_GET_PIT2"));
    }
    return s;
}

Result<void> restore_vm(const VmFd& vm, const VmState& s) {
    const int fd = vm.fd();
    if (s.irqchip)
        for (kvm_irqchip chip : *s.irqchip) RV_TRY_VOID(xioctl(fd, KVM_SET_IRQCHIP, &chip, "KVM_SET_IRQCHIP"));
    if (s.pit) {
        kvm_pit_state2 pit = *s.pit;
        RV_TRY_VOID(xioctl(fd, KVM_SET_PIT2, &pit, "KVM_SET_PIT2"));
    }
    RV_TRY_VOID(vm.set_clock(s.clock.clock));
    return {};
}

}  // namespace rv::kvm
