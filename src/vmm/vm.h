// A virtual machine: guest memory, the KVM VM, buses, the devices (owned by
// the DeviceManager) and the vCPU threads. Built by Vm::create (builder.cpp)
// on an event loop that the caller owns and runs (vmm::Vmm, or a test).
// Lifecycle, called on the loop's thread: start(), pause() and resume();
// the VM ends when the guest powers off, reboots, panics or crashes, when
// the VMM fails, or on request_exit(), which any thread may call. The
// process around it (signals, the terminal, the console's fds) is the app's.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "bus/bus.h"
#include "kvm/coalesced_ring.h"
#include "kvm/kvm.h"
#include "memory/guest_memory.h"
#include "snapshot/snapshot_file.h"
#include "vmm/console_monitor.h"
#include "vmm/device_manager.h"
#include "vmm/event_loop.h"
#include "vmm/vcpu.h"
#include "vmm/vm_config.h"
#include "vmm/vm_exit.h"

namespace rv {

class KvmMsiRouter;
namespace x86 {
struct BootInfo;
}

// Where a snapshot goes, or comes from: the state file (vCPUs, irqchip,
// devices, the config) and the guest-memory file, as Firecracker lays them out.
struct SnapshotPaths {
    std::string state;
    std::string memory;
};

class Vm final : public VmControl {
public:
    // Where the guest's console output goes (any thread; must not block).
    using ConsoleSink = std::function<void(std::span<const uint8_t>)>;
    // Told once, from whichever thread ends the VM, when it starts ending.
    using ExitHandler = std::function<void()>;

    // `config` must be resolved and validated (VmConfig::validate). Errors
    // are InvalidInput for what the config names (files, TAPs), else Internal.
    static Result<std::unique_ptr<Vm>> create(const VmConfig& config, EventLoop& loop,
                                              ConsoleSink console, ExitHandler on_exit);
    // Zeroed RAM of this layout, held as config.memory_backend says.
    static Result<GuestMemory> fresh_memory(const VmConfig& config,
                                            std::span<const GuestMemory::RegionSpec> ram);
    // A VM from a snapshot (vm_snapshot.cpp): `config` is the one the
    // snapshot holds (snapshot_config), with this process's own settings.
    // Guest memory maps the memory file privately; the vCPUs, the irqchip,
    // the clock and every device get their saved state. The VM is ready to
    // start_paused(). A snapshot that does not fit the config is InvalidInput.
    static Result<std::unique_ptr<Vm>> restore(const VmConfig& config,
                                               const snapshot::SnapshotFile& file,
                                               const std::string& memory_path, EventLoop& loop,
                                               ConsoleSink console, ExitHandler on_exit);
    // The same with RAM already filled in: prepare_restore, then load_state.
    static Result<std::unique_ptr<Vm>> restore(const VmConfig& config,
                                               const snapshot::SnapshotFile& file,
                                               GuestMemory memory, EventLoop& loop,
                                               ConsoleSink console, ExitHandler on_exit);
    // In two steps, for a migration's destination, which builds the machine
    // (KVM VM, RAM, devices, vCPUs) as soon as it knows the config, while
    // the pages arrive, and loads the state only once the source has paused:
    // load_state gives the irqchip, clock, vCPUs and devices their saved
    // state (before start_paused, or while paused).
    static Result<std::unique_ptr<Vm>> prepare_restore(const VmConfig& config, GuestMemory memory,
                                                       EventLoop& loop, ConsoleSink console,
                                                       ExitHandler on_exit);
    Result<void> load_state(const snapshot::SnapshotFile& file);
    // After load_state: the next resume() advances the guest's clock by the
    // wall-clock time since the state was saved (Firecracker's
    // clock_realtime), so guest time is right again, rather than resuming
    // where it stopped. The guest sees its clock jump.
    void advance_clock_on_resume() { m_advance_clock = m_saved_realtime.has_value(); }
    ~Vm() override;

    // Writes a snapshot; the VM must be paused (NotAllowed otherwise) and
    // stays paused. In-flight block I/O completes first. A full snapshot's
    // memory file holds all RAM; a diff's (track_dirty_pages only) is a
    // sparse file of RAM's size holding only the pages written since the
    // VM started or the last snapshot, to be laid over the memory file of
    // that one (rebase_memory_file). On the loop.
    Result<void> save_snapshot(const SnapshotPaths& paths, bool diff = false);
    // Every section of a snapshot but the memory (paused only): devices
    // quiesced, vCPUs, irqchip, clock, config and RAM layout.
    Result<snapshot::SnapshotFile> save_state();
    // Starts (or stops) logging dirty pages at run time, for a migration:
    // re-registers RAM with KVM_MEM_LOG_DIRTY_PAGES and marks the VMM's
    // writes. The first take_dirty_pages() after it holds what was written
    // since. Thread-safe against the vCPUs; call on one thread at a time.
    Result<void> set_dirty_logging(bool on);
    // The pages written since the last call (by the guest: KVM's dirty log;
    // by the VMM: GuestMemory's marks), one bitmap per RAM region; cleared
    // as taken. NotAllowed without track_dirty_pages.
    Result<std::vector<std::vector<uint64_t>>> take_dirty_pages();

    // On the loop's thread.
    void start();
    // Starts the vCPU threads parked, as if paused at once: a restored VM
    // runs only on resume().
    void start_paused();
    Result<void> pause();   // every vCPU parked, devices not served, kvmclock saved
    Result<void> resume();  // the reverse; guest time continues where it paused
    bool paused() const { return m_paused; }

    // Ends the VM (first call wins). Thread-safe.
    void request_exit(VmExitReason reason, std::string message) override;
    bool exiting() const override { return m_exiting.load(std::memory_order_acquire); }
    std::optional<VmOutcome> outcome() const;
    // Once the VM is ending: joins the vCPU threads, reports a crash, writes
    // --stats and stops the devices. Idempotent.
    void shutdown();

    DeviceManager& devices() { return *m_devices; }
    const DeviceManager& devices() const { return *m_devices; }
    const VmConfig& config() const { return m_config; }
    const GuestMemory& memory() const { return m_memory; }
    const std::vector<std::unique_ptr<Vcpu>>& vcpus() const { return m_vcpus; }
    uint64_t msi_interrupts() const;
    // Guest writes KVM buffered in coalesced MMIO zones and we applied later
    // (PciDevice::posted_write_ranges); 0 without coalesced MMIO.
    uint64_t posted_writes() const;
    // Applies the buffered writes now (any thread, no device lock held).
    void flush_posted_writes();
    const PciRoot* pci() const { return m_devices ? &m_devices->pci() : nullptr; }

    Vm(const VmConfig& config, kvm::Kvm kvm, kvm::VmFd vm, GuestMemory memory, EventLoop& loop,
       ConsoleSink console, ExitHandler on_exit);  // use create()

private:
    using MemoryFactory =
        std::function<Result<GuestMemory>(std::span<const GuestMemory::RegionSpec>)>;
    static Result<std::unique_ptr<Vm>> assemble(const VmConfig& config, EventLoop& loop,
                                                ConsoleSink console, ExitHandler on_exit,
                                                const MemoryFactory& make_memory);
    Result<void> add_vcpus(const x86::BootInfo* boot);
    // PciRoot's BarObserver: the device's ioeventfds and coalesced MMIO zones
    // follow its BARs.
    void on_bar_mapped(const PciDevice& device, const PciBarInfo& bar, uint64_t address,
                       bool mapped);
    void on_console_output(std::span<const uint8_t> bytes);

    const VmConfig m_config;
    kvm::Kvm m_kvm;
    kvm::VmFd m_vm;
    GuestMemory m_memory;
    EventLoop& m_loop;
    ConsoleSink m_console;
    ExitHandler m_on_exit;
    std::unique_ptr<KvmMsiRouter> m_msi;  // outlives the devices that use it
    int m_coalesced_page{0};  // KVM_CAP_COALESCED_MMIO: the ring's page, 0 = not supported
    // The ring (mapped once vCPU 0 exists); outlives the vCPUs and devices that use it.
    std::unique_ptr<kvm::CoalescedRing> m_posted;
    PioBus m_pio;
    MmioBus m_mmio;
    std::unique_ptr<DeviceManager> m_devices;
    std::vector<std::unique_ptr<Vcpu>> m_vcpus;

    std::mutex m_output_lock;  // orders console output with the panic monitor
    ConsoleMonitor m_monitor;

    std::atomic<bool> m_dirty_logging{false};  // RAM registered with KVM_MEM_LOG_DIRTY_PAGES
    bool m_started{false};
    bool m_paused{false};
    bool m_shut_down{false};
    std::optional<uint64_t> m_paused_clock;
    uint64_t m_paused_realtime{0};             // wall-clock ns when m_paused_clock was read
    std::optional<uint64_t> m_saved_realtime;  // load_state: when the clock was saved
    bool m_advance_clock{false};
    bool m_loaded{false};  // load_state ran: the first resume tells the devices
    std::atomic<bool> m_exiting{false};
    mutable std::mutex m_outcome_lock;
    std::optional<VmOutcome> m_outcome;
};

}  // namespace rv
