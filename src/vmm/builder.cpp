// Vm::create: builds the VM in a fixed, explicit order — memory, KVM VM and
// irqchip, the devices (all made by the DeviceManager from the config), the
// kernel and boot tables, vCPUs. No device registers itself.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "arch/x86_64/acpi.h"
#include "arch/x86_64/boot.h"
#include "arch/x86_64/bzimage.h"
#include "arch/x86_64/cpu_setup.h"
#include "arch/x86_64/cpuid.h"
#include "arch/x86_64/kernel_payload.h"
#include "arch/x86_64/layout.h"
#include "arch/x86_64/msrs.h"
#include "base/fd.h"
#include "base/log.h"
#include "devices/pci/pci_root.h"
#include "vmm/kernel_cache.h"
#include "vmm/msi_router.h"
#include "vmm/vm.h"

namespace rv {

namespace {

// KVM needs three pages for the (unused) real-mode TSS and one for the
// identity map, somewhere no RAM or MMIO is: just below the BIOS ROM.
constexpr uint64_t kKvmTssAddr = 0xFFFBD000;
constexpr uint64_t kKvmIdentityMapAddr = 0xFFFBC000;
// MADT and xAPIC ids are 8 bits; one id is the I/O APIC's.
static_assert(kMaxCpus == x86::kMaxAcpiCpus);

// An interrupt line into KVM's in-kernel PIC + IOAPIC.
class KvmIrqLine final : public IrqLine {
  public:
    KvmIrqLine(const kvm::VmFd& vm, uint32_t gsi) : m_vm(vm), m_gsi(gsi) {}
    void set_level(bool high) override {
        if (auto r = m_vm.set_irq_line(m_gsi, high); !r)
            log::warn("IRQ {}: {}", m_gsi, r.error().message());
    }

  private:
    const kvm::VmFd& m_vm;
    uint32_t m_gsi;
};

uint64_t host_memory_bytes() {
    struct sysinfo info {};
    if (::sysinfo(&info) != 0) return 0;
    return uint64_t(info.totalram) * info.mem_unit;
}

// What only this host can tell: its vCPU limit and its RAM.
Result<void> fits_host(const VmConfig& config, const kvm::Kvm& kvm) {
    unsigned max_cpus = std::min(kvm.max_vcpus(), kMaxCpus);
    if (config.cpus > max_cpus)
        return input_error("vcpu count {}: this host allows at most {}", config.cpus, max_cpus);
    uint64_t host = host_memory_bytes();
    if (host && config.memory_bytes > host)
        return input_error("memory {} MiB is more than this host's {} MiB of RAM",
                           config.memory_bytes >> 20, host >> 20);
    return {};
}

Result<void> setup_vcpu(kvm::VcpuFd& vcpu, const std::vector<kvm_cpuid_entry2>& supported,
                        unsigned num_cpus, bool has_xcrs, const x86::BootInfo* boot) {
    auto cpuid = supported;
    x86::filter_cpuid(cpuid, vcpu.id(), num_cpus);
    RV_TRY_VOID(vcpu.set_cpuid(cpuid));
    // After the CPUID, which bounds the XCR0 KVM accepts (x86::initial_xcr0 says why).
    if (uint64_t xcr0 = x86::initial_xcr0(cpuid); xcr0 > 1 && has_xcrs)
        RV_TRY_VOID(vcpu.set_xcr0(xcr0));
    std::vector<std::pair<uint32_t, uint64_t>> msrs;
    for (const auto& m : x86::boot_msrs()) msrs.emplace_back(m.index, m.value);
    RV_TRY_VOID(vcpu.set_msrs(msrs));

    kvm_fpu fpu{};
    fpu.fcw = 0x37f;     // x87 default control word
    fpu.mxcsr = 0x1f80;  // SSE default: all exceptions masked
    RV_TRY_VOID(vcpu.set_fpu(fpu));

    // LINT0 = ExtINT (the 8259 PIC behind the local APIC), LINT1 = NMI, as a
    // BIOS leaves them; Linux relies on this during early boot.
    auto lapic = RV_TRY(vcpu.get_lapic());
    auto set_lvt = [&](size_t reg, uint32_t delivery_mode) {
        uint32_t v;
        std::memcpy(&v, lapic.regs + reg, 4);
        v = (v & ~0x700u) | (delivery_mode << 8);
        std::memcpy(lapic.regs + reg, &v, 4);
    };
    set_lvt(0x350, 0x7);  // LVT LINT0: ExtINT
    set_lvt(0x360, 0x4);  // LVT LINT1: NMI
    RV_TRY_VOID(vcpu.set_lapic(lapic));

    if (!boot) return {};  // application processors wait for INIT/SIPI
    auto sregs = RV_TRY(vcpu.get_sregs());
    x86::setup_long_mode_sregs(sregs);
    RV_TRY_VOID(vcpu.set_sregs(sregs));
    kvm_regs regs{};
    x86::setup_boot_regs(regs, boot->entry, boot->boot_params);
    RV_TRY_VOID(vcpu.set_regs(regs));
    return {};
}

// Loads the decompressed ELF: from memory right after decompressing it, or
// segment by segment from the cache file straight into guest RAM.
Result<x86::BootInfo> load_cached_kernel(const GuestMemory& memory,
                                         std::span<const uint8_t> bzimage,
                                         const CachedKernel& cached,
                                         std::optional<std::span<const uint8_t>> initrd,
                                         std::string_view cmdline, const x86::MemoryLayout& layout,
                                         std::optional<GuestAddress> rsdp) {
    if (cached.contents) {
        auto elf_bytes = std::span(reinterpret_cast<const uint8_t*>(cached.contents->data()),
                                   cached.contents->size());
        auto elf = RV_TRY(x86::parse_elf_kernel(elf_bytes));
        auto copy = [&](const x86::ElfSegment& seg) {
            return memory.write(GuestAddress(seg.paddr), elf_bytes.subspan(seg.offset, seg.filesz));
        };
        return x86::load_linux_elf(memory, bzimage, elf, copy, initrd, cmdline, layout, rsdp);
    }
    auto fd = RV_TRY(Fd::open(cached.path, O_RDONLY));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return errno_error(cached.path);
    std::vector<uint8_t> head(64 * 1024);
    ssize_t n = ::pread(fd.get(), head.data(), head.size(), 0);
    if (n < 0) return errno_error(cached.path);
    head.resize(static_cast<size_t>(n));
    auto elf = RV_TRY(
        with_context(x86::parse_elf_kernel(head, static_cast<uint64_t>(st.st_size)), cached.path));
    auto copy = [&](const x86::ElfSegment& seg) -> Result<void> {
        uint8_t* dst = RV_TRY(memory.host_range(GuestAddress(seg.paddr), seg.filesz));
        uint64_t done = 0;
        while (done < seg.filesz) {
            ssize_t r = ::pread(fd.get(), dst + done, seg.filesz - done,
                                static_cast<off_t>(seg.offset + done));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) return make_error("{}: short read", cached.path);
            done += static_cast<uint64_t>(r);
        }
        return {};
    };
    return x86::load_linux_elf(memory, bzimage, elf, copy, initrd, cmdline, layout, rsdp);
}

}  // namespace

Result<GuestMemory> Vm::fresh_memory(const VmConfig& config,
                                     std::span<const GuestMemory::RegionSpec> ram) {
    if (config.memory_backend == MemoryBackend::Memfd) return GuestMemory::create_memfd(ram);
    return GuestMemory::create(ram);
}

Result<std::unique_ptr<Vm>> Vm::create(const VmConfig& config, EventLoop& loop, ConsoleSink console,
                                       ExitHandler on_exit) {
    // Inputs first: bad files are the commonest mistake and need no KVM.
    auto as_bytes = [](const std::string& s) {
        return std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size());
    };
    auto kernel = RV_TRY(as_input_error(read_file(config.kernel_path), "cannot read kernel"));
    // A bzImage, or (as Firecracker boots) a plain ELF vmlinux.
    const bool elf = x86::is_elf(as_bytes(kernel));
    if (elf)
        RV_TRY_VOID(as_input_error(x86::parse_elf_kernel(as_bytes(kernel)), config.kernel_path));
    else
        RV_TRY_VOID(as_input_error(x86::parse_bzimage(as_bytes(kernel)), config.kernel_path));
    std::optional<std::string> initrd;
    if (config.initrd_path)
        initrd = RV_TRY(as_input_error(read_file(*config.initrd_path), "cannot read initrd"));

    auto vm = RV_TRY(assemble(config, loop, std::move(console), std::move(on_exit),
                              [&](std::span<const GuestMemory::RegionSpec> ram) {
                                  return Vm::fresh_memory(config, ram);
                              }));
    auto layout = RV_TRY(x86::MemoryLayout::for_size(config.memory_bytes));

    // Boot tables and the kernel.
    const PciWindows windows;  // the same defaults allocate_bars uses
    x86::PciHostBridge pci;
    pci.mmio32_start = windows.mmio32_start;
    pci.mmio32_end = windows.mmio32_end;
    pci.mmio64_start = windows.mmio64_start;
    pci.mmio64_end = windows.mmio64_end;
    for (uint8_t dev = 1; dev < kPciMaxSlots; ++dev)
        for (uint8_t pin = 1; pin <= 4; ++pin)
            pci.intx_routes.push_back({dev, uint8_t(pin - 1), PciRoot::intx_irq(dev, pin)});
    auto rsdp = RV_TRY(x86::setup_acpi(vm->m_memory, config.cpus, pci));
    std::optional<std::span<const uint8_t>> initrd_bytes;
    if (initrd) initrd_bytes = as_bytes(*initrd);
    std::optional<CachedKernel> vmlinux;
    if (config.kernel_cache_dir && !elf)
        vmlinux = RV_TRY(cached_vmlinux(as_bytes(kernel), *config.kernel_cache_dir));
    const std::string cmdline = config.kernel_cmdline();
    auto load = [&]() -> Result<x86::BootInfo> {
        if (elf)
            return x86::load_linux_vmlinux(vm->m_memory, as_bytes(kernel), initrd_bytes,
                                           cmdline, layout, rsdp);
        if (vmlinux)
            return load_cached_kernel(vm->m_memory, as_bytes(kernel), *vmlinux, initrd_bytes,
                                      cmdline, layout, rsdp);
        return x86::load_linux(vm->m_memory, as_bytes(kernel), initrd_bytes, cmdline,
                               layout, rsdp);
    };
    auto boot = RV_TRY(with_context(load(), "cannot load the kernel"));
    if (vmlinux)
        log::info("booted the decompressed kernel ({}: {})",
                  vmlinux->hit ? "cache hit" : "cached now", vmlinux->path);

    RV_TRY_VOID(vm->add_vcpus(&boot));
    log::info("VM ready: {} vCPU(s), {} MiB, kernel {}", config.cpus, config.memory_bytes >> 20,
              config.kernel_path);
    return vm;
}

// The machine without its software: KVM's VM with the in-kernel irqchip and
// PIT, guest RAM from `make_memory`, the buses and every device. No vCPU yet.
Result<std::unique_ptr<Vm>> Vm::assemble(const VmConfig& config, EventLoop& loop,
                                         ConsoleSink console, ExitHandler on_exit,
                                         const MemoryFactory& make_memory) {
    auto kvm = RV_TRY(kvm::Kvm::open(config.kvm_path));
    RV_TRY_VOID(fits_host(config, kvm));
    auto layout = RV_TRY(x86::MemoryLayout::for_size(config.memory_bytes));
    auto memory = RV_TRY(make_memory(layout.ram));
    auto vm_fd = RV_TRY(kvm.create_vm());
    RV_TRY_VOID(vm_fd.set_tss_address(kKvmTssAddr));
    RV_TRY_VOID(vm_fd.set_identity_map_address(kKvmIdentityMapAddr));
    RV_TRY_VOID(vm_fd.create_irqchip());
    RV_TRY_VOID(vm_fd.create_pit2());
    // With track_dirty_pages KVM logs the guest's writes and GuestMemory
    // the VMM's (diff snapshots, live migration).
    const uint32_t flags = config.track_dirty_pages ? KVM_MEM_LOG_DIRTY_PAGES : 0;
    memory.set_dirty_tracking(config.track_dirty_pages);
    uint32_t slot = 0;
    for (const auto& region : memory.regions())
        RV_TRY_VOID(vm_fd.set_user_memory_region(slot++, region.start.value, region.size,
                                                 region.host, flags));

    auto vm = std::make_unique<Vm>(config, std::move(kvm), std::move(vm_fd), std::move(memory),
                                   loop, std::move(console), std::move(on_exit));
    vm->m_coalesced_page = vm->m_kvm.check_extension(KVM_CAP_COALESCED_MMIO).value_or(0);
    vm->m_dirty_logging = config.track_dirty_pages;
    Vm* raw = vm.get();
    vm->m_devices = RV_TRY(DeviceManager::create(
        config,
        DeviceContext{
            .memory = vm->m_memory,
            .pio = vm->m_pio,
            .mmio = vm->m_mmio,
            .loop = loop,
            .msi = *vm->m_msi,
            .control = *vm,
            .irq = [raw](uint32_t gsi) -> std::shared_ptr<IrqLine> {
                return std::make_shared<KvmIrqLine>(raw->m_vm, gsi);
            },
            .console_output = [raw](std::span<const uint8_t> b) { raw->on_console_output(b); },
            .flush_posted_writes = [raw] { raw->flush_posted_writes(); },
            .bar_observer = [raw](const PciDevice& device, const PciBarInfo& bar,
                                  uint64_t address,
                                  bool mapped) { raw->on_bar_mapped(device, bar, address, mapped); },
        }));

    return vm;
}

// The vCPUs, with the host's CPUID filtered for the guest; vCPU 0 starts at
// the kernel's entry when `boot` is given (else every vCPU waits for its
// state: a snapshot's, or INIT/SIPI).
Result<void> Vm::add_vcpus(const x86::BootInfo* boot) {
    auto supported = RV_TRY(m_kvm.supported_cpuid());
    // KVM emulates the TSC-deadline LAPIC timer on every host but leaves it
    // out of the supported list; without it Linux calibrates the LAPIC timer
    // against the PIT, which fails under nested virtualization.
    if (m_kvm.check_extension(KVM_CAP_TSC_DEADLINE_TIMER).value_or(0) > 0) {
        for (auto& e : supported)
            if (e.function == 1) e.ecx |= x86::kCpuidLeaf1EcxTscDeadline;
    }
    const bool has_xcrs = m_kvm.check_extension(KVM_CAP_XCRS).value_or(0) > 0;
    size_t mmap_size = RV_TRY(m_kvm.vcpu_mmap_size());
    for (unsigned id = 0; id < m_config.cpus; ++id) {
        auto fd = RV_TRY(m_vm.create_vcpu(id, mmap_size));
        RV_TRY_VOID(with_context(
            setup_vcpu(fd, supported, m_config.cpus, has_xcrs, id == 0 ? boot : nullptr),
            fmt::format("vCPU {}", id)));
        // One ring per VM, reachable through any vCPU: map it through the first.
        if (id == 0 && m_coalesced_page > 0)
            m_posted = RV_TRY(kvm::CoalescedRing::map(fd, m_coalesced_page));
        m_vcpus.push_back(std::make_unique<Vcpu>(std::move(fd), m_pio, m_mmio, *this,
                                                     m_posted.get()));
    }
    return {};
}

}  // namespace rv
