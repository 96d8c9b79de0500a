// Vm::create: validates the configuration, then builds the VM in a fixed,
// explicit order — memory, KVM VM and irqchip, devices on the buses, the
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
#include "arch/x86_64/layout.h"
#include "arch/x86_64/msrs.h"
#include "backends/net/tap.h"
#include "base/fd.h"
#include "base/log.h"
#include "devices/legacy/acpi_pm.h"
#include "devices/legacy/cmos_rtc.h"
#include "devices/legacy/e1000/e1000.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/ide/piix_ide.h"
#include "devices/legacy/reset_control.h"
#include "devices/legacy/uart16550.h"
#include "devices/pci/pci_root.h"
#include "devices/virtio/blk/blk_device.h"
#include "devices/virtio/console/console_device.h"
#include "devices/virtio/net/virtio_net.h"
#include "devices/virtio/pci_transport.h"
#include "devices/virtio/rng/rng_device.h"
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

Result<void> validate(const VmConfig& config, const kvm::Kvm& kvm) {
    unsigned max_cpus = std::min(kvm.max_vcpus(), kMaxCpus);
    if (config.cpus < 1 || config.cpus > max_cpus)
        return make_error("--cpus {}: must be between 1 and {} on this host", config.cpus,
                          max_cpus);
    if (config.memory_bytes < kMinMemoryBytes)
        return make_error("--memory {} MiB is too small: a Linux guest needs at least {} MiB",
                          config.memory_bytes >> 20, kMinMemoryBytes >> 20);
    if (config.memory_bytes % 4096)
        return make_error("--memory must be a whole number of 4 KiB pages");
    uint64_t host = host_memory_bytes();
    if (host && config.memory_bytes > host)
        return make_error("--memory {} MiB is more than this host's {} MiB of RAM",
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

// A stable, locally administered MAC for a TAP that was given none:
// 02:72:76 ("rv") followed by a hash of the TAP's name.
std::array<uint8_t, 6> mac_for(const std::string& tap) {
    size_t h = std::hash<std::string>{}(tap);
    return {0x02, 0x72, 0x76, uint8_t(h >> 16), uint8_t(h >> 8), uint8_t(h)};
}

}  // namespace

class VmBuilder {
  public:
    static Result<std::unique_ptr<Vm>> build(const VmConfig& config);

  private:
    static Result<void> add_devices(Vm& vm);
    static Result<void> add_pci_devices(Vm& vm);
    static Result<void> add_virtio(Vm& vm, std::shared_ptr<virtio::VirtioDevice> device);
    static Result<void> add_ide(Vm& vm, std::array<std::optional<IdeDrive>, 4> drives);
    static Result<void> add_e1000(Vm& vm, std::unique_ptr<Tap> tap,
                                  const std::array<uint8_t, 6>& mac);
};

Result<std::unique_ptr<Vm>> Vm::create(const VmConfig& config) {
    return VmBuilder::build(config);
}

Result<std::unique_ptr<Vm>> VmBuilder::build(const VmConfig& config) {
    // Inputs first: bad files are the commonest mistake and need no KVM.
    auto as_bytes = [](const std::string& s) {
        return std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size());
    };
    auto kernel = RV_TRY(with_context(read_file(config.kernel_path), "cannot read kernel"));
    RV_TRY_VOID(with_context(x86::parse_bzimage(as_bytes(kernel)), config.kernel_path));
    std::optional<std::string> initrd;
    if (config.initrd_path)
        initrd = RV_TRY(with_context(read_file(*config.initrd_path), "cannot read initrd"));

    auto kvm = RV_TRY(kvm::Kvm::open(config.kvm_path));
    RV_TRY_VOID(validate(config, kvm));
    auto layout = RV_TRY(x86::MemoryLayout::for_size(config.memory_bytes));
    auto memory = RV_TRY(GuestMemory::create(layout.ram));
    auto vm_fd = RV_TRY(kvm.create_vm());
    RV_TRY_VOID(vm_fd.set_tss_address(kKvmTssAddr));
    RV_TRY_VOID(vm_fd.set_identity_map_address(kKvmIdentityMapAddr));
    RV_TRY_VOID(vm_fd.create_irqchip());
    RV_TRY_VOID(vm_fd.create_pit2());
    uint32_t slot = 0;
    for (const auto& region : memory.regions())
        RV_TRY_VOID(
            vm_fd.set_user_memory_region(slot++, region.start.value, region.size, region.host));

    auto loop = RV_TRY(EventLoop::create());
    std::unique_ptr<Vm> vm(
        new Vm(config, std::move(kvm), std::move(vm_fd), std::move(memory), std::move(loop)));
    vm->m_coalesced_page = vm->m_kvm.check_extension(KVM_CAP_COALESCED_MMIO).value_or(0);
    RV_TRY_VOID(add_devices(*vm));
    RV_TRY_VOID(add_pci_devices(*vm));

    // Boot tables and the kernel.
    std::optional<x86::PciHostBridge> pci;
    if (vm->m_pci) {
        const PciWindows windows;  // the same defaults allocate_bars uses
        pci.emplace();
        pci->mmio32_start = windows.mmio32_start;
        pci->mmio32_end = windows.mmio32_end;
        pci->mmio64_start = windows.mmio64_start;
        pci->mmio64_end = windows.mmio64_end;
        for (uint8_t dev = 1; dev < kPciMaxSlots; ++dev)
            for (uint8_t pin = 1; pin <= 4; ++pin)
                pci->intx_routes.push_back({dev, uint8_t(pin - 1), PciRoot::intx_irq(dev, pin)});
    }
    auto rsdp = RV_TRY(x86::setup_acpi(vm->m_memory, config.cpus, pci));
    std::optional<std::span<const uint8_t>> initrd_bytes;
    if (initrd) initrd_bytes = as_bytes(*initrd);
    std::optional<CachedKernel> vmlinux;
    if (config.kernel_cache_dir)
        vmlinux = RV_TRY(cached_vmlinux(as_bytes(kernel), *config.kernel_cache_dir));
    auto boot =
        RV_TRY(with_context(vmlinux ? load_cached_kernel(vm->m_memory, as_bytes(kernel), *vmlinux,
                                                         initrd_bytes, config.cmdline, layout, rsdp)
                                    : x86::load_linux(vm->m_memory, as_bytes(kernel), initrd_bytes,
                                                      config.cmdline, layout, rsdp),
                            "cannot load the kernel"));
    if (vmlinux)
        log::info("booted the decompressed kernel ({}: {})",
                  vmlinux->hit ? "cache hit" : "cached now", vmlinux->path);

    auto supported = RV_TRY(vm->m_kvm.supported_cpuid());
    // KVM emulates the TSC-deadline LAPIC timer on every host but leaves it
    // out of the supported list; without it Linux calibrates the LAPIC timer
    // against the PIT, which fails under nested virtualization.
    if (vm->m_kvm.check_extension(KVM_CAP_TSC_DEADLINE_TIMER).value_or(0) > 0) {
        for (auto& e : supported)
            if (e.function == 1) e.ecx |= x86::kCpuidLeaf1EcxTscDeadline;
    }
    const bool has_xcrs = vm->m_kvm.check_extension(KVM_CAP_XCRS).value_or(0) > 0;
    size_t mmap_size = RV_TRY(vm->m_kvm.vcpu_mmap_size());
    for (unsigned id = 0; id < config.cpus; ++id) {
        auto fd = RV_TRY(vm->m_vm.create_vcpu(id, mmap_size));
        RV_TRY_VOID(with_context(
            setup_vcpu(fd, supported, config.cpus, has_xcrs, id == 0 ? &boot : nullptr),
            fmt::format("vCPU {}", id)));
        // One ring per VM, reachable through any vCPU: map it through the first.
        if (id == 0 && vm->m_coalesced_page > 0)
            vm->m_posted = RV_TRY(kvm::CoalescedRing::map(fd, vm->m_coalesced_page));
        vm->m_vcpus.push_back(std::make_unique<Vcpu>(std::move(fd), vm->m_pio, vm->m_mmio, *vm,
                                                     vm->m_posted.get()));
    }
    log::info("VM ready: {} vCPU(s), {} MiB, kernel {}", config.cpus, config.memory_bytes >> 20,
              config.kernel_path);
    return vm;
}

Result<void> VmBuilder::add_devices(Vm& vm) {
    auto irq = [&vm](uint32_t gsi) { return std::make_shared<KvmIrqLine>(vm.m_vm, gsi); };

    vm.m_uart = std::make_shared<Uart16550>(
        irq(Uart16550::kCom1Irq), [&vm](std::span<const uint8_t> b) { vm.on_console_output(b); });
    RV_TRY_VOID(
        vm.m_pio.insert(vm.m_uart, PioAddress(Uart16550::kCom1Base), Uart16550::kRegisterCount));

    vm.m_console_input =
        ConsoleInput{[uart = vm.m_uart](std::span<const uint8_t> b) { uart->enqueue_input(b); },
                     [uart = vm.m_uart] { return uart->input_capacity(); },
                     [uart = vm.m_uart](std::function<void()> f) {
                         uart->set_input_space_callback(std::move(f));
                     }};

    auto i8042 = I8042::create([&vm] {
        vm.request_exit(VmExitReason::Reset, "guest reset through the i8042 controller");
    });
    RV_TRY_VOID(vm.m_pio.insert(i8042->data_port(), PioAddress(I8042::kDataPort), 1));
    RV_TRY_VOID(vm.m_pio.insert(i8042->command_port(), PioAddress(I8042::kCommandPort), 1));

    // Port 0xCF9 (and, once there is a PCI bus, the configuration ports around it).
    vm.m_reset_control = std::make_shared<ResetControl>([&vm] {
        vm.request_exit(VmExitReason::Reset, "guest reset through port 0xCF9");
    });
    RV_TRY_VOID(vm.m_pio.insert(vm.m_reset_control, PioAddress(ResetControl::kBase),
                                ResetControl::kLength));

    auto rtc = std::make_shared<CmosRtc>(CmosRtc::system_clock);
    const auto& regions = vm.m_memory.regions();
    uint64_t below = 0, above = 0;
    for (const auto& r : regions) (r.start.value < x86::k4GiB ? below : above) += r.size;
    rtc->set_memory_size(below, above);
    RV_TRY_VOID(vm.m_pio.insert(rtc, PioAddress(CmosRtc::kBase), CmosRtc::kLength));

    auto pm = std::make_shared<AcpiPmDevice>(
        [&vm] { vm.request_exit(VmExitReason::PowerOff, "guest powered off (ACPI S5)"); },
        irq(x86::kSciIrq));
    RV_TRY_VOID(vm.m_pio.insert(pm, PioAddress(x86::kPm1aEvtBlk), AcpiPmDevice::kLength));
    return {};
}

Result<void> VmBuilder::add_virtio(Vm& vm, std::shared_ptr<virtio::VirtioDevice> device) {
    auto transport = RV_TRY(
        virtio::VirtioPciTransport::create(std::move(device), vm.m_memory, *vm.m_msi, *vm.m_loop));
    uint8_t slot_no = RV_TRY(vm.m_pci->add_device(transport));
    transport->set_intx(vm.m_pci->intx_line(slot_no));
    auto slot = std::make_unique<VirtioSlot>();
    slot->transport = transport;
    auto* raw = slot.get();
    // Queue notifications arrive as ioeventfds at the notify addresses, which
    // move with the BAR; the guest may move it after boot.
    transport->set_bar_moved_handler([&vm, raw](uint64_t base) {
        if (auto r = vm.register_notifiers(*raw, base); !r)
            log::warn("{}: queue notifications: {}", raw->transport->name(), r.error().message());
    });
    vm.m_virtio.push_back(std::move(slot));
    return {};
}

// The PIIX IDE function sits on the PCI bus but, in compatibility mode,
// decodes the legacy ISA ports and raises ISA IRQs 14 and 15.
Result<void> VmBuilder::add_ide(Vm& vm, std::array<std::optional<IdeDrive>, 4> drives) {
    auto irq = [&vm](uint32_t gsi) { return std::make_shared<KvmIrqLine>(vm.m_vm, gsi); };
    auto ide =
        RV_TRY(PiixIde::create(vm.m_memory, std::move(drives), irq(14), irq(15), *vm.m_loop));
    RV_TRY_VOID(vm.m_pci->add_device(ide));
    const uint16_t command[] = {PiixIde::kPrimaryCommandBase, PiixIde::kSecondaryCommandBase};
    const uint16_t control[] = {PiixIde::kPrimaryControlPort, PiixIde::kSecondaryControlPort};
    for (unsigned ch = 0; ch < 2; ++ch) {
        RV_TRY_VOID(vm.m_pio.insert(ide->command_block(ch), PioAddress(command[ch]), 8));
        RV_TRY_VOID(vm.m_pio.insert(ide->control_block(ch), PioAddress(control[ch]), 1));
    }
    return {};
}

Result<void> VmBuilder::add_e1000(Vm& vm, std::unique_ptr<Tap> tap,
                                  const std::array<uint8_t, 6>& mac) {
    E1000Config config{.mac = mac, .flush_posted = [&vm] { vm.flush_posted_writes(); }};
    auto nic = RV_TRY(E1000::create(vm.m_memory, std::move(tap), config, *vm.m_loop));
    uint8_t slot = RV_TRY(vm.m_pci->add_device(nic));
    nic->set_intx(vm.m_pci->intx_line(slot));
    return {};
}

Result<void> VmBuilder::add_pci_devices(Vm& vm) {
    const VmConfig& config = vm.m_config;
    if (config.disks.empty() && config.nets.empty() && config.console == ConsoleKind::Serial &&
        !config.entropy)
        return {};
    vm.m_pci =
        PciRoot::create(vm.m_mmio, vm.m_pio, [&vm](unsigned irq) -> std::shared_ptr<IrqLine> {
            return std::make_shared<KvmIrqLine>(vm.m_vm, irq);
        });
    static_assert(kPciConfigAddressPort == ResetControl::kBase &&
                  kPciConfigPortCount == ResetControl::kLength);
    vm.m_reset_control->set_config_ports(vm.m_pci);
    vm.m_pci->set_bar_observer(
        [&vm](const PciDevice& device, const PciBarInfo& bar, uint64_t address, bool mapped) {
            vm.on_bar_mapped(device, bar, address, mapped);
        });

    std::array<std::optional<IdeDrive>, 4> ide_drives;
    size_t ide_count = 0, virtio_count = 0;
    for (const auto& disk : config.disks) {
        BlockOptions options{
            .read_only = disk.read_only,
            .cache = disk.cache == DiskConfig::Cache::None ? BlockOptions::Cache::None
                                                           : BlockOptions::Cache::Writeback,
            .engine = disk.engine,
            .ignore_flush = disk.cache == DiskConfig::Cache::Unsafe};
        auto backend = RV_TRY(with_context(BlockBackend::open(disk.path, options),
                                           fmt::format("--disk {}", disk.path)));
        if (disk.iface == DiskConfig::Interface::Ide) {
            if (ide_count == ide_drives.size())
                return make_error("--disk {}: the IDE controller has room for {} disks", disk.path,
                                  ide_drives.size());
            ide_drives[ide_count] = IdeDrive{std::move(backend), fmt::format("RV-HD{}", ide_count)};
            ++ide_count;
            continue;
        }
        auto serial = fmt::format("ringvisor-vd{}", char('a' + virtio_count++));
        RV_TRY_VOID(
            add_virtio(vm, std::make_shared<virtio::VirtioBlk>(std::move(backend), serial)));
    }
    if (ide_count) RV_TRY_VOID(add_ide(vm, std::move(ide_drives)));
    for (const auto& net : config.nets) {
        auto tap = RV_TRY(with_context(Tap::open(net.tap), fmt::format("--net tap={}", net.tap)));
        auto mac = net.mac.value_or(mac_for(net.tap));
        if (net.model == NetConfig::Model::E1000) {
            RV_TRY_VOID(add_e1000(vm, std::move(tap), mac));
            continue;
        }
        virtio::VirtioNetConfig net_config{mac, std::nullopt};
        auto device = RV_TRY(virtio::VirtioNet::create(std::move(tap), net_config));
        RV_TRY_VOID(add_virtio(vm, std::shared_ptr<virtio::VirtioDevice>(std::move(device))));
    }
    if (config.console == ConsoleKind::Virtio) {
        auto console = std::make_shared<virtio::VirtioConsole>(
            [&vm](std::span<const uint8_t> b) { vm.on_console_output(b); });
        vm.m_console_input =
            ConsoleInput{[console](std::span<const uint8_t> b) { console->enqueue_input(b); },
                         [console] { return console->input_capacity(); },
                         [console](std::function<void()> f) {
                             console->set_input_space_callback(std::move(f));
                         }};
        RV_TRY_VOID(add_virtio(vm, console));
    }
    if (config.entropy) RV_TRY_VOID(add_virtio(vm, std::make_shared<virtio::VirtioRng>()));
    return vm.m_pci->allocate_bars(PciWindows{});
}

}  // namespace rv
