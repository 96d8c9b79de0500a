#include "kvm/kvm.h"
#include "kvm/ioctl_abi.h"

#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <vector>

namespace rv::kvm {

namespace {

using abi::CpuidHeader;
using abi::do_ioctl;
using abi::MsrsHeader;
using abi::RoutingHeader;
using abi::VarBuffer;
using abi::kGetSupportedCpuid;
using abi::kSetCpuid2;
using abi::kSetGsiRouting;
using abi::kSetMsrs;

}  // namespace

Result<Kvm> Kvm::open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        // The user's to fix (the --kvm path, the kvm module, permissions):
        // reported as bad input, unlike a KVM call that fails later.
        if (err == ENOENT)
            return input_error("{} does not exist: KVM is not available (is the kvm module loaded?)",
                               path);
        if (err == EACCES || err == EPERM)
            return input_error(
                "no permission to open {}: add yourself to the 'kvm' group or run as root", path);
        return errno_error(path, err);
    }
    Kvm kvm{Fd(fd)};
    int version = ::ioctl(fd, KVM_GET_API_VERSION, 0);
    if (version != KVM_API_VERSION)
        return make_error("{}: unsupported KVM API version {}", path, version);
    return kvm;
}

Result<int> Kvm::check_extension(int cap) const {
    int ret = ::ioctl(m_fd.get(), KVM_CHECK_EXTENSION, cap);
    if (ret < 0) return errno_error("KVM_CHECK_EXTENSION");
    return ret;
}

unsigned Kvm::max_vcpus() const {
    auto max = check_extension(KVM_CAP_MAX_VCPUS);
    if (max && *max > 0) return static_cast<unsigned>(*max);
    auto nr = check_extension(KVM_CAP_NR_VCPUS);
    if (nr && *nr > 0) return static_cast<unsigned>(*nr);
    return 4;  // the API's documented default
}

Result<size_t> Kvm::vcpu_mmap_size() const {
    int ret = ::ioctl(m_fd.get(), KVM_GET_VCPU_MMAP_SIZE, 0);
    if (ret <= 0) return errno_error("KVM_GET_VCPU_MMAP_SIZE");
    return static_cast<size_t>(ret);
}

Result<std::vector<kvm_cpuid_entry2>> Kvm::supported_cpuid() const {
    // Grow the buffer until KVM stops saying E2BIG.
    for (uint32_t n = 128; n <= 4096; n *= 2) {
        VarBuffer<CpuidHeader, kvm_cpuid_entry2> buf(n);
        buf.header()->nent = n;
        if (::ioctl(m_fd.get(), kGetSupportedCpuid, buf.bytes.data()) == 0)
            return std::vector<kvm_cpuid_entry2>(buf.entries(), buf.entries() + buf.header()->nent);
        if (errno != E2BIG) return errno_error("KVM_GET_SUPPORTED_CPUID");
    }
    return make_error("KVM_GET_SUPPORTED_CPUID: too many entries");
}

Result<VmFd> Kvm::create_vm() const {
    int fd = do_ioctl(m_fd.get(), KVM_CREATE_VM, 0);
    if (fd < 0) return errno_error("KVM_CREATE_VM");
    return VmFd(Fd(fd));
}

Result<void> VmFd::set_user_memory_region(uint32_t slot, uint64_t guest_phys, uint64_t size,
                                          void* host, uint32_t flags) const {
    kvm_userspace_memory_region region{};
    region.slot = slot;
    region.flags = flags;
    region.guest_phys_addr = guest_phys;
    region.memory_size = size;
    region.userspace_addr = reinterpret_cast<uint64_t>(host);
    if (do_ioctl(m_fd.get(), KVM_SET_USER_MEMORY_REGION, &region) < 0)
        return errno_error("KVM_SET_USER_MEMORY_REGION");
    return {};
}

Result<std::vector<uint64_t>> VmFd::get_dirty_log(uint32_t slot, uint64_t pages) const {
    std::vector<uint64_t> bits((pages + 63) / 64);
    kvm_dirty_log log{};
    log.slot = slot;
    log.dirty_bitmap = bits.data();
    if (do_ioctl(m_fd.get(), KVM_GET_DIRTY_LOG, &log) < 0) return errno_error("KVM_GET_DIRTY_LOG");
    return bits;
}

Result<void> VmFd::set_tss_address(uint64_t addr) const {
    if (do_ioctl(m_fd.get(), KVM_SET_TSS_ADDR, static_cast<unsigned long>(addr)) < 0)
        return errno_error("KVM_SET_TSS_ADDR");
    return {};
}

Result<void> VmFd::set_identity_map_address(uint64_t addr) const {
    if (do_ioctl(m_fd.get(), KVM_SET_IDENTITY_MAP_ADDR, &addr) < 0)
        return errno_error("KVM_SET_IDENTITY_MAP_ADDR");
    return {};
}

Result<void> VmFd::create_irqchip() const {
    if (do_ioctl(m_fd.get(), KVM_CREATE_IRQCHIP, 0) < 0) return errno_error("KVM_CREATE_IRQCHIP");
    return {};
}

Result<void> VmFd::create_pit2() const {
    kvm_pit_config config{};
    config.flags = KVM_PIT_SPEAKER_DUMMY;
    if (do_ioctl(m_fd.get(), KVM_CREATE_PIT2, &config) < 0) return errno_error("KVM_CREATE_PIT2");
    return {};
}

Result<void> VmFd::set_irq_line(uint32_t irq, bool level) const {
    kvm_irq_level line{};
    line.irq = irq;
    line.level = level ? 1 : 0;
    if (do_ioctl(m_fd.get(), KVM_IRQ_LINE, &line) < 0) return errno_error("KVM_IRQ_LINE");
    return {};
}

Result<void> VmFd::register_irqfd(int event_fd, uint32_t gsi, int resample_fd) const {
    kvm_irqfd irqfd{};
    irqfd.fd = static_cast<uint32_t>(event_fd);
    irqfd.gsi = gsi;
    if (resample_fd >= 0) {
        irqfd.flags = KVM_IRQFD_FLAG_RESAMPLE;
        irqfd.resamplefd = static_cast<uint32_t>(resample_fd);
    }
    if (do_ioctl(m_fd.get(), KVM_IRQFD, &irqfd) < 0) return errno_error("KVM_IRQFD");
    return {};
}

Result<void> VmFd::register_ioeventfd(int event_fd, uint64_t addr, uint32_t len, bool pio,
                                      std::optional<uint64_t> datamatch) const {
    kvm_ioeventfd io{};
    io.fd = event_fd;
    io.addr = addr;
    io.len = len;
    if (pio) io.flags |= KVM_IOEVENTFD_FLAG_PIO;
    if (datamatch) {
        io.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
        io.datamatch = *datamatch;
    }
    if (do_ioctl(m_fd.get(), KVM_IOEVENTFD, &io) < 0) return errno_error("KVM_IOEVENTFD");
    return {};
}

Result<void> VmFd::unregister_ioeventfd(int event_fd, uint64_t addr, uint32_t len, bool pio,
                                        std::optional<uint64_t> datamatch) const {
    kvm_ioeventfd io{};
    io.fd = event_fd;
    io.addr = addr;
    io.len = len;
    io.flags = KVM_IOEVENTFD_FLAG_DEASSIGN;
    if (pio) io.flags |= KVM_IOEVENTFD_FLAG_PIO;
    if (datamatch) {
        io.flags |= KVM_IOEVENTFD_FLAG_DATAMATCH;
        io.datamatch = *datamatch;
    }
    if (do_ioctl(m_fd.get(), KVM_IOEVENTFD, &io) < 0) return errno_error("KVM_IOEVENTFD deassign");
    return {};
}

namespace {
Result<void> zone_ioctl(int vm_fd, unsigned long request, std::string_view what, uint64_t addr,
                        uint32_t size) {
    kvm_coalesced_mmio_zone zone{};
    zone.addr = addr;
    zone.size = size;
    if (do_ioctl(vm_fd, request, &zone) < 0) return errno_error(what);
    return {};
}
}  // namespace

Result<void> VmFd::register_coalesced_mmio(uint64_t addr, uint32_t size) const {
    return zone_ioctl(m_fd.get(), KVM_REGISTER_COALESCED_MMIO, "KVM_REGISTER_COALESCED_MMIO", addr,
                      size);
}

Result<void> VmFd::unregister_coalesced_mmio(uint64_t addr, uint32_t size) const {
    return zone_ioctl(m_fd.get(), KVM_UNREGISTER_COALESCED_MMIO, "KVM_UNREGISTER_COALESCED_MMIO",
                      addr, size);
}

Result<void> VmFd::set_gsi_routing(std::span<const kvm_irq_routing_entry> entries) const {
    VarBuffer<RoutingHeader, kvm_irq_routing_entry> buf(entries.size());
    buf.header()->nr = static_cast<uint32_t>(entries.size());
    std::memcpy(buf.entries(), entries.data(), entries.size_bytes());
    if (do_ioctl(m_fd.get(), kSetGsiRouting, buf.bytes.data()) < 0)
        return errno_error("KVM_SET_GSI_ROUTING");
    return {};
}

Result<void> VmFd::set_clock(uint64_t ns) const {
    kvm_clock_data clock{};
    clock.clock = ns;
    if (do_ioctl(m_fd.get(), KVM_SET_CLOCK, &clock) < 0) return errno_error("KVM_SET_CLOCK");
    return {};
}

Result<void> VmFd::set_clock_realtime(uint64_t ns, uint64_t realtime_ns) const {
    kvm_clock_data clock{};
    clock.clock = ns;
    clock.flags = KVM_CLOCK_REALTIME;
    clock.realtime = realtime_ns;
    if (do_ioctl(m_fd.get(), KVM_SET_CLOCK, &clock) < 0)
        return errno_error("KVM_SET_CLOCK (KVM_CLOCK_REALTIME: Linux 5.16 or later)");
    return {};
}

Result<uint64_t> VmFd::get_clock() const {
    kvm_clock_data clock{};
    if (do_ioctl(m_fd.get(), KVM_GET_CLOCK, &clock) < 0) return errno_error("KVM_GET_CLOCK");
    return clock.clock;
}

Result<VcpuFd> VmFd::create_vcpu(unsigned id, size_t mmap_size) const {
    int fd = do_ioctl(m_fd.get(), KVM_CREATE_VCPU, static_cast<unsigned long>(id));
    if (fd < 0) return errno_error("KVM_CREATE_VCPU");
    Fd owned(fd);
    void* run = ::mmap(nullptr, mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (run == MAP_FAILED) return errno_error("mmap kvm_run");
    // Now, while nothing runs the vCPU (see stats()); kernels before 5.14 have none.
    int stats = ::ioctl(fd, KVM_GET_STATS_FD, 0);
    const int stats_errno = stats < 0 ? errno : 0;
    return VcpuFd(std::move(owned), id, static_cast<kvm_run*>(run), mmap_size, Fd(stats),
                  stats_errno);
}

VcpuFd::VcpuFd(VcpuFd&& other) noexcept
    : m_fd(std::move(other.m_fd)),
      m_id(other.m_id),
      m_run(std::exchange(other.m_run, nullptr)),
      m_run_size(other.m_run_size),
      m_stats_fd(std::move(other.m_stats_fd)),
      m_stats_errno(other.m_stats_errno) {}

VcpuFd::~VcpuFd() {
    if (m_run) ::munmap(m_run, m_run_size);
}

void VcpuFd::set_immediate_exit(bool value) {
    __atomic_store_n(&m_run->immediate_exit, value ? 1 : 0, __ATOMIC_SEQ_CST);
}

Result<VcpuExit> VcpuFd::run() {
    VcpuExit exit;
    if (::ioctl(m_fd.get(), KVM_RUN, 0) < 0) {
        if (errno == EINTR || errno == EAGAIN) {
            exit.kind = VcpuExit::Kind::Interrupted;
            return exit;
        }
        return errno_error("KVM_RUN");
    }
    auto* base = reinterpret_cast<uint8_t*>(m_run);
    exit.reason = m_run->exit_reason;
    switch (m_run->exit_reason) {
        case KVM_EXIT_IO: {
            const auto& io = m_run->io;
            // SAFETY: data_offset/size/count come from the kernel and lie within
            // the kvm_run mapping; check anyway before forming the span.
            uint64_t len = uint64_t(io.size) * io.count;
            if (io.data_offset + len > m_run_size) return make_error("KVM_EXIT_IO: bad data offset");
            exit.kind = io.direction == KVM_EXIT_IO_IN ? VcpuExit::Kind::IoIn : VcpuExit::Kind::IoOut;
            exit.address = io.port;
            exit.data = std::span<uint8_t>(base + io.data_offset, len);  // count elements of size
            exit.size = io.size;
            exit.count = io.count;
            break;
        }
        case KVM_EXIT_MMIO: {
            auto& mmio = m_run->mmio;
            exit.kind = mmio.is_write ? VcpuExit::Kind::MmioWrite : VcpuExit::Kind::MmioRead;
            exit.address = mmio.phys_addr;
            exit.data = std::span<uint8_t>(mmio.data, std::min<uint32_t>(mmio.len, sizeof mmio.data));
            exit.size = static_cast<uint32_t>(exit.data.size());
            break;
        }
        case KVM_EXIT_HLT:
            exit.kind = VcpuExit::Kind::Hlt;
            break;
        case KVM_EXIT_SHUTDOWN:
            exit.kind = VcpuExit::Kind::Shutdown;
            break;
        case KVM_EXIT_SYSTEM_EVENT:
            exit.kind = VcpuExit::Kind::SystemEvent;
            exit.detail = m_run->system_event.type;
            break;
        case KVM_EXIT_INTR:
            exit.kind = VcpuExit::Kind::Interrupted;
            break;
        case KVM_EXIT_FAIL_ENTRY:
            exit.kind = VcpuExit::Kind::FailEntry;
            exit.detail = m_run->fail_entry.hardware_entry_failure_reason;
            break;
        case KVM_EXIT_INTERNAL_ERROR:
            exit.kind = VcpuExit::Kind::InternalError;
            exit.detail = m_run->internal.suberror;
            break;
        default:
            exit.kind = VcpuExit::Kind::Unknown;
            break;
    }
    return exit;
}

Result<kvm_regs> VcpuFd::get_regs() const {
    kvm_regs regs{};
    if (do_ioctl(m_fd.get(), KVM_GET_REGS, &regs) < 0) return errno_error("KVM_GET_REGS");
    return regs;
}

Result<void> VcpuFd::set_regs(const kvm_regs& regs) const {
    if (do_ioctl(m_fd.get(), KVM_SET_REGS, &regs) < 0) return errno_error("KVM_SET_REGS");
    return {};
}

Result<kvm_sregs> VcpuFd::get_sregs() const {
    kvm_sregs sregs{};
    if (do_ioctl(m_fd.get(), KVM_GET_SREGS, &sregs) < 0) return errno_error("KVM_GET_SREGS");
    return sregs;
}

Result<void> VcpuFd::set_sregs(const kvm_sregs& sregs) const {
    if (do_ioctl(m_fd.get(), KVM_SET_SREGS, &sregs) < 0) return errno_error("KVM_SET_SREGS");
    return {};
}

Result<void> VcpuFd::set_xcr0(uint64_t value) const {
    kvm_xcrs xcrs{};
    xcrs.nr_xcrs = 1;
    xcrs.xcrs[0].xcr = 0;
    xcrs.xcrs[0].value = value;
    if (do_ioctl(m_fd.get(), KVM_SET_XCRS, &xcrs) < 0) return errno_error("KVM_SET_XCRS");
    return {};
}

Result<uint64_t> VcpuFd::get_xcr0() const {
    kvm_xcrs xcrs{};
    if (do_ioctl(m_fd.get(), KVM_GET_XCRS, &xcrs) < 0) return errno_error("KVM_GET_XCRS");
    for (uint32_t i = 0; i < xcrs.nr_xcrs && i < KVM_MAX_XCRS; ++i)
        if (xcrs.xcrs[i].xcr == 0) return xcrs.xcrs[i].value;
    return make_error("KVM_GET_XCRS: no XCR0");
}

Result<void> VcpuFd::set_fpu(const kvm_fpu& fpu) const {
    if (do_ioctl(m_fd.get(), KVM_SET_FPU, &fpu) < 0) return errno_error("KVM_SET_FPU");
    return {};
}

Result<void> VcpuFd::set_cpuid(std::span<const kvm_cpuid_entry2> entries) const {
    VarBuffer<CpuidHeader, kvm_cpuid_entry2> buf(entries.size());
    buf.header()->nent = static_cast<uint32_t>(entries.size());
    std::memcpy(buf.entries(), entries.data(), entries.size_bytes());
    if (do_ioctl(m_fd.get(), kSetCpuid2, buf.bytes.data()) < 0) return errno_error("KVM_SET_CPUID2");
    return {};
}

Result<void> VcpuFd::set_msrs(std::span<const std::pair<uint32_t, uint64_t>> msrs) const {
    VarBuffer<MsrsHeader, kvm_msr_entry> buf(msrs.size());
    buf.header()->nmsrs = static_cast<uint32_t>(msrs.size());
    for (size_t i = 0; i < msrs.size(); ++i) {
        buf.entries()[i].index = msrs[i].first;
        buf.entries()[i].data = msrs[i].second;
    }
    int ret = do_ioctl(m_fd.get(), kSetMsrs, buf.bytes.data());
    if (ret < 0) return errno_error("KVM_SET_MSRS");
    if (static_cast<size_t>(ret) != msrs.size())
        return make_error("KVM_SET_MSRS: MSR {:#x} rejected", msrs[static_cast<size_t>(ret)].first);
    return {};
}

Result<void> VcpuFd::kvmclock_ctrl() const {
    if (do_ioctl(m_fd.get(), KVM_KVMCLOCK_CTRL, 0ul) < 0) return errno_error("KVM_KVMCLOCK_CTRL");
    return {};
}

Result<std::vector<std::pair<std::string, uint64_t>>> VcpuFd::stats() const {
    if (!m_stats_fd.valid()) return errno_error("KVM_GET_STATS_FD", m_stats_errno);
    // Reading it takes no vCPU lock: the data are the counters themselves.
    const int sfd = m_stats_fd.get();
    // The binary stats format: a header, descriptors (each followed by a
    // name of header.name_size bytes), then the data. Our own structs: the
    // uapi's kvm_stats_desc ends in a flexible array.
    struct Header {
        uint32_t flags, name_size, num_desc, id_offset, desc_offset, data_offset;
    };
    struct Desc {
        uint32_t flags;
        int16_t exponent;
        uint16_t size;
        uint32_t offset;
        uint32_t bucket_size;
    };
    static_assert(sizeof(Header) == 24 && sizeof(Desc) == 16);
    Header h{};
    if (::pread(sfd, &h, sizeof h, 0) != sizeof h) return errno_error("reading KVM stats header");
    if (h.num_desc > 4096 || h.name_size > 4096) return make_error("KVM stats: implausible header");
    size_t desc_bytes = sizeof(Desc) + h.name_size;
    std::vector<uint8_t> descs(desc_bytes * h.num_desc);
    if (::pread(sfd, descs.data(), descs.size(), h.desc_offset) != ssize_t(descs.size()))
        return errno_error("reading KVM stats descriptors");
    std::vector<std::pair<std::string, uint64_t>> out;
    for (uint32_t i = 0; i < h.num_desc; ++i) {
        Desc d;
        std::memcpy(&d, descs.data() + i * desc_bytes, sizeof d);
        constexpr uint32_t kTypeMask = 0xF, kTypeCumulative = 0, kTypePeak = 2;
        uint32_t type = d.flags & kTypeMask;
        if (d.size != 1 || (type != kTypeCumulative && type != kTypePeak)) continue;
        const char* name = reinterpret_cast<const char*>(descs.data() + i * desc_bytes + sizeof d);
        uint64_t value = 0;
        if (::pread(sfd, &value, sizeof value, h.data_offset + d.offset) != sizeof value) continue;
        out.emplace_back(std::string(name, strnlen(name, h.name_size)), value);
    }
    return out;
}

Result<kvm_lapic_state> VcpuFd::get_lapic() const {
    kvm_lapic_state lapic{};
    if (do_ioctl(m_fd.get(), KVM_GET_LAPIC, &lapic) < 0) return errno_error("KVM_GET_LAPIC");
    return lapic;
}

Result<void> VcpuFd::set_lapic(const kvm_lapic_state& lapic) const {
    if (do_ioctl(m_fd.get(), KVM_SET_LAPIC, &lapic) < 0) return errno_error("KVM_SET_LAPIC");
    return {};
}

}  // namespace rv::kvm
