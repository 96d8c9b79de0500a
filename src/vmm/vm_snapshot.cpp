// Vm and snapshots: a paused VM written to a state file and a memory file,
// and a VM made again from them (vm.h).
//
// Sections of the state file (snapshot/snapshot_file.h):
//   "config"    the VM's configuration (snapshot_config reads it back)
//   "memory"    the RAM regions' layout, which the memory file must match
//   "devices"   one "device/..." section per device (DeviceManager::save)
//   "vcpu/N"    each vCPU's registers, LAPIC, MSRs, ... (kvm/kvm_state.h)
//   "vm"        the PIC, I/O APIC, PIT and kvmclock
// Order of saving: devices first (settling block I/O may raise interrupts,
// which land in the irqchip and LAPICs), then vCPUs, then the VM, then
// memory (which the settled I/O wrote).
#include <fcntl.h>
#include <unistd.h>
#include <linux/kvm.h>

#include <nlohmann/json.hpp>

#include "base/fd.h"
#include "base/log.h"
#include "kvm/kvm_state.h"
#include "memory/page_runs.h"
#include "snapshot/state_codec.h"
#include "vmm/config_json.h"
#include "vmm/vm.h"
#include "vmm/vm_snapshot_config.h"

namespace rv {

namespace {

// The RAM layout, so a memory file of another VM is refused by size and
// the regions are checked before anything is mapped.
struct MemoryLayoutState {
    static constexpr uint32_t kVersion = 1;
    static constexpr size_t kMaxRegions = 16;
    std::vector<GuestMemory::RegionSpec> regions;

    void encode(snapshot::Writer& w) const {
        w.u32(static_cast<uint32_t>(regions.size()));
        for (const auto& r : regions) {
            w.u64(r.start.value);
            w.u64(r.size);
        }
    }
    static MemoryLayoutState decode(snapshot::Reader& r) {
        MemoryLayoutState s;
        uint32_t n = r.u32();
        if (n > kMaxRegions) r.fail(fmt::format("{} memory regions", n));
        for (uint32_t i = 0; i < n && r.ok(); ++i) {
            GuestAddress start{r.u64()};
            s.regions.push_back({start, r.u64()});
        }
        return s;
    }
};

template <typename S>
Result<S> section(const snapshot::SnapshotFile& file, const std::string& id) {
    const snapshot::Section* s = file.find(id);
    if (!s) return input_error("the snapshot has no '{}' section", id);
    if (s->version != S::kVersion)
        return input_error("'{}': version {}, this ringvisor reads version {}", id, s->version,
                           S::kVersion);
    return snapshot::decode<S>(s->data, id);
}

}  // namespace

Result<std::vector<std::vector<uint64_t>>> Vm::take_dirty_pages() {
    if (!m_dirty_logging)
        return not_allowed_error("dirty pages are tracked only with track_dirty_pages");
    std::vector<std::vector<uint64_t>> out;
    const auto& regions = m_memory.regions();
    for (uint32_t slot = 0; slot < regions.size(); ++slot) {
        auto bits = RV_TRY(m_vm.get_dirty_log(slot, regions[slot].size / GuestMemory::kDirtyPageSize));
        auto ours = m_memory.take_dirty(slot);
        for (size_t w = 0; w < bits.size() && w < ours.size(); ++w) bits[w] |= ours[w];
        out.push_back(std::move(bits));
    }
    return out;
}

namespace {

// Only the pages set in `dirty`, at their offsets, into a file of RAM's
// size: what is not written stays a hole.
Result<uint64_t> write_dirty_pages(const GuestMemory& memory,
                                   const std::vector<std::vector<uint64_t>>& dirty, int fd) {
    if (::ftruncate(fd, 0) < 0 || ::ftruncate(fd, static_cast<off_t>(memory.total_size())) < 0)
        return errno_error("memory file: ftruncate");
    uint64_t file_offset = 0, written = 0;
    const auto& regions = memory.regions();
    for (size_t i = 0; i < regions.size(); ++i) {
        // A run of dirty pages, one write.
        auto walked = for_each_page_run(
            regions[i].size / GuestMemory::kDirtyPageSize, UINT64_MAX,
            [&](uint64_t page) { return page_bit(dirty[i], page); },
            [&](uint64_t first, uint64_t end, bool) -> Result<void> {
                const uint64_t at = first * GuestMemory::kDirtyPageSize;
                const uint64_t len = (end - first) * GuestMemory::kDirtyPageSize;
                RV_TRY_VOID(with_context(
                    write_all_at(fd, std::span(regions[i].host + at, len), file_offset + at),
                    "memory file"));
                written += len;
                return {};
            });
        RV_TRY_VOID(walked);
        file_offset += regions[i].size;
    }
    return written;
}

}  // namespace

Result<void> Vm::set_dirty_logging(bool on) {
    const uint32_t flags = on ? KVM_MEM_LOG_DIRTY_PAGES : 0;
    uint32_t slot = 0;
    for (const auto& r : m_memory.regions())
        RV_TRY_VOID(m_vm.set_user_memory_region(slot++, r.start.value, r.size, r.host, flags));
    m_memory.set_dirty_tracking(on);
    m_dirty_logging = on;
    return {};
}

Result<snapshot::SnapshotFile> Vm::save_state() {
    if (!m_paused) return not_allowed_error("the VM must be paused for a snapshot");
    snapshot::SnapshotFile file;
    RV_TRY_VOID(file.add("config", kSnapshotConfigVersion, encode_snapshot_config(m_config)));
    MemoryLayoutState layout;
    for (const auto& r : m_memory.regions()) layout.regions.push_back({r.start, r.size});
    RV_TRY_VOID(file.add("memory", MemoryLayoutState::kVersion, snapshot::encode(layout)));
    RV_TRY_VOID(m_devices->save(file));
    const auto msrs = RV_TRY(kvm::saveable_msrs(m_kvm));
    for (auto& v : m_vcpus) {
        auto state = RV_TRY(with_context(kvm::save_vcpu(v->fd(), msrs, true),
                                         fmt::format("vCPU {}", v->fd().id())));
        RV_TRY_VOID(file.add(fmt::format("vcpu/{}", v->fd().id()), kvm::VcpuState::kVersion,
                             snapshot::encode(state)));
    }
    auto vm_state = RV_TRY(kvm::save_vm(m_vm, true, true));
    // The guest's time stands still while paused: what resume() will put
    // back, and the wall-clock time it stopped at (clock_realtime).
    if (m_paused_clock) {
        vm_state.clock.clock = *m_paused_clock;
        if (m_paused_realtime) vm_state.clock.realtime = m_paused_realtime;
    }
    RV_TRY_VOID(file.add("vm", kvm::VmState::kVersion, snapshot::encode(vm_state)));
    return file;
}

Result<void> Vm::save_snapshot(const SnapshotPaths& paths, bool diff) {
    if (!m_paused) return not_allowed_error("the VM must be paused for a snapshot");
    if (diff && !m_dirty_logging)
        return input_error("a Diff snapshot needs track_dirty_pages (machine-config, or "
                           "snapshot load's track_dirty_pages)");
    auto file = RV_TRY(save_state());

    // Memory first: a state file on disk always has its memory beside it.
    int fd = ::open(paths.memory.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return std::unexpected(
            Error::from_errno(fmt::format("memory file {}", paths.memory)).with_kind(ErrorKind::InvalidInput));
    Fd memory_fd(fd);
    uint64_t written = m_memory.total_size();
    if (diff) {
        auto dirty = RV_TRY(take_dirty_pages());
        written = RV_TRY(with_context(write_dirty_pages(m_memory, dirty, memory_fd.get()), paths.memory));
    } else {
        written = RV_TRY(with_context(m_memory.write_to(memory_fd.get()), paths.memory));
        // The next diff holds what changes from here on.
        if (m_dirty_logging) (void)RV_TRY(take_dirty_pages());
    }
    if (::fsync(memory_fd.get()) < 0) return errno_error(fmt::format("fsync {}", paths.memory));
    RV_TRY_VOID(as_input_error(file.write(paths.state), paths.state));
    log::info("{} snapshot written: {} ({} MiB of memory in {})", diff ? "diff" : "full",
              paths.state, written >> 20, paths.memory);
    return {};
}

Result<std::unique_ptr<Vm>> Vm::restore(const VmConfig& config,
                                        const snapshot::SnapshotFile& file,
                                        const std::string& memory_path, EventLoop& loop,
                                        ConsoleSink console, ExitHandler on_exit) {
    auto layout = RV_TRY(section<MemoryLayoutState>(file, "memory"));
    int fd = ::open(memory_path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return std::unexpected(Error::from_errno(fmt::format("memory file {}", memory_path))
                                   .with_kind(ErrorKind::InvalidInput));
    Fd memory_fd(fd);
    auto memory = RV_TRY(as_input_error(GuestMemory::map_file(layout.regions, memory_fd.get()), memory_path));
    return restore(config, file, std::move(memory), loop, std::move(console), std::move(on_exit));
}

Result<std::unique_ptr<Vm>> Vm::restore(const VmConfig& config,
                                        const snapshot::SnapshotFile& file, GuestMemory memory,
                                        EventLoop& loop, ConsoleSink console,
                                        ExitHandler on_exit) {
    auto vm = RV_TRY(prepare_restore(config, std::move(memory), loop, std::move(console),
                                     std::move(on_exit)));
    RV_TRY_VOID(vm->load_state(file));
    return vm;
}

Result<std::unique_ptr<Vm>> Vm::prepare_restore(const VmConfig& config, GuestMemory memory,
                                                EventLoop& loop, ConsoleSink console,
                                                ExitHandler on_exit) {
    auto vm = RV_TRY(assemble(
        config, loop, std::move(console), std::move(on_exit),
        [&](std::span<const GuestMemory::RegionSpec> ram) -> Result<GuestMemory> {
            const auto& have = memory.regions();
            bool same = ram.size() == have.size();
            for (size_t i = 0; same && i < ram.size(); ++i)
                same = ram[i].start == have[i].start && ram[i].size == have[i].size;
            if (!same)
                return input_error("the snapshot's memory layout is not this VM's ({} MiB)",
                                   config.memory_bytes >> 20);
            return std::move(memory);
        }));
    RV_TRY_VOID(vm->add_vcpus(nullptr));
    return vm;
}

Result<void> Vm::load_state(const snapshot::SnapshotFile& file) {
    if (m_started && !m_paused) return not_allowed_error("the VM runs: its state cannot be loaded");
    // The irqchip before the vCPUs (their LAPICs) and the devices (which may
    // raise interrupts as they are restored).
    auto vm_state = RV_TRY(section<kvm::VmState>(file, "vm"));
    RV_TRY_VOID(kvm::restore_vm(m_vm, vm_state));
    m_paused_clock = vm_state.clock.clock;
    m_saved_realtime.reset();
    if (vm_state.clock.flags & KVM_CLOCK_REALTIME) {
        m_saved_realtime = vm_state.clock.realtime;
        m_paused_realtime = vm_state.clock.realtime;  // a snapshot of it, unresumed, keeps the pair
    }
    for (auto& v : m_vcpus) {
        const std::string id = fmt::format("vcpu/{}", v->fd().id());
        auto state = RV_TRY(section<kvm::VcpuState>(file, id));
        RV_TRY_VOID(with_context(kvm::restore_vcpu(v->fd(), state), id));
    }
    if (file.find(fmt::format("vcpu/{}", m_vcpus.size())))
        return input_error("the snapshot has more vCPUs than its config ({})", m_config.cpus);
    RV_TRY_VOID(m_devices->restore(file));
    m_loaded = true;
    log::info("VM restored: {} vCPU(s), {} MiB", m_config.cpus, m_config.memory_bytes >> 20);
    return {};
}

void Vm::start_paused() {
    if (m_started) return;
    for (auto& v : m_vcpus) v->request_pause();
    start();
    for (auto& v : m_vcpus) v->wait_parked();
    m_loop.set_devices_paused(true);
    if (!m_paused_clock) m_paused_clock = m_vm.get_clock().value_or(0);
    m_paused = true;
}

}  // namespace rv
