// The one place that creates every device from the VmConfig and owns them:
// the legacy PC devices (16550 UART, i8042, CMOS RTC, ACPI PM, the 0xCF9
// reset register), the PCI root complex and each PCI device (virtio-blk,
// -net, -console, -rng, the PIIX IDE controller, the e1000), each drive and
// NIC under the stable id of its config. The VM talks to devices only
// through it: console input, Ctrl-Alt-Del, changes while running (a drive's
// backing file, a rate limiter), counters.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "bus/bus.h"
#include "devices/interrupt.h"
#include "devices/pci/msi.h"
#include "devices/pci/pci_device.h"
#include "devices/pci/pci_root.h"
#include "memory/guest_memory.h"
#include "snapshot/snapshot_file.h"
#include "vmm/event_loop.h"
#include "vmm/vm_config.h"
#include "vmm/vm_exit.h"
#include "vmm/vmm_api.h"

namespace rv {

class I8042;
class Uart16550;
class ResetControl;
class RateLimitGroup;

// Console input, wherever it goes (the UART or virtio-console): bytes in,
// room left, and a callback for when there is room again.
struct ConsoleInput {
    std::function<void(std::span<const uint8_t>)> enqueue;
    std::function<size_t()> capacity;
    std::function<void(std::function<void()>)> set_space_callback;
};

// What the devices need from the VM; the VM outlives the DeviceManager.
struct DeviceContext {
    const GuestMemory& memory;
    PioBus& pio;
    MmioBus& mmio;
    EventLoop& loop;  // devices register in loop.devices()
    MsiRouter& msi;
    VmControl& control;
    std::function<std::shared_ptr<IrqLine>(uint32_t gsi)> irq;  // an in-kernel irqchip input
    std::function<void(std::span<const uint8_t>)> console_output;  // guest console bytes
    std::function<void()> flush_posted_writes;                      // apply coalesced MMIO now
    PciRoot::BarObserver bar_observer;  // ioeventfds and coalesced zones follow the BARs
};

// One device in the table, for counters and metrics: each PCI device, and
// each disk of the IDE controller (kind "ide-disk", under its drive id, with
// that drive's counters; the controller itself is "ide-controller",
// of kind "ide": no drive id can take that name).
struct DeviceInfo {
    std::string id;    // the drive's or NIC's id; the kind for the others
    std::string kind;  // "virtio-blk", "ide", "ide-disk", "virtio-net", "e1000", "virtio-rng", ...
    DeviceCounters counters;
};

class DeviceManager {
public:
    // Opens every backend (image files, TAPs: their errors are InvalidInput
    // naming the drive or NIC), creates the devices, places them on the buses
    // and allocates the PCI BARs. `config` must be resolved and validated.
    static Result<std::unique_ptr<DeviceManager>> create(const VmConfig& config,
                                                         DeviceContext context);
    // Resets every device: their event-loop work and backend I/O stop.
    ~DeviceManager();
    DeviceManager(const DeviceManager&) = delete;
    DeviceManager& operator=(const DeviceManager&) = delete;

    PciRoot& pci() { return *m_pci; }
    const PciRoot& pci() const { return *m_pci; }
    ConsoleInput& console_input() { return m_console_input; }
    // The i8042 types Ctrl-Alt-Del; NotAllowed while the guest's keyboard
    // driver has the keyboard disabled or has not read the last sequence.
    Result<void> send_ctrl_alt_del();

    // While running (PATCH /drives, /network-interfaces). NotAllowed for
    // what a device cannot change (e.g. the medium of an IDE disk).
    // Every disk's image opened again (virtio-blk and IDE): a migration's
    // destination built the devices early and must not serve anything the
    // source wrote before it stopped from what it opened then.
    Result<void> reopen_disks();
    // A restored or migrated VM runs again: each virtio device hears of it
    // (VirtioDevice::on_resumed_elsewhere; virtio-net announces itself).
    void resumed_elsewhere();
    Result<void> update_drive(const DriveUpdate& update);
    Result<void> update_net(const NetUpdate& update);

    std::vector<DeviceInfo> devices() const;

    // Snapshots (device_snapshot.cpp), on the loop with the vCPUs parked:
    // one section per device under a stable id made from its kind and its
    // config id ("device/uart", "device/virtio-blk/rootfs", ...). save()
    // settles in-flight I/O first (VirtioDevice::quiesce).
    Result<void> save(snapshot::SnapshotFile& file);
    // Into the devices just created from the snapshot's own config, with
    // guest memory already restored and before the vCPUs run. A device
    // without a section, or a device section without its device, is an
    // InvalidInput error naming it: the snapshot is of another VM.
    Result<void> restore(const snapshot::SnapshotFile& file);

    // Stops every device's work (a reset, as the guest's driver would do):
    // before the VM's memory and event loop go away.
    void reset_all();

    struct Entry;  // a PCI device with its id and typed handle (device_manager.cpp)

private:
    explicit DeviceManager(DeviceContext context);
    Result<void> add_legacy(const VmConfig& config);
    Result<void> add_disks(const VmConfig& config);
    Result<std::shared_ptr<RateLimitGroup>> rate_limit_group(const VmConfig& config,
                                                             const DiskConfig& disk);
    Result<void> add_nets(const VmConfig& config);
    Result<Entry*> add_pci(std::unique_ptr<Entry> entry);
    Entry* find(std::string_view id);

    DeviceContext m_ctx;
    std::shared_ptr<Uart16550> m_uart;
    std::shared_ptr<I8042> m_i8042;
    std::shared_ptr<ResetControl> m_reset_control;
    std::vector<std::shared_ptr<BusDevice>> m_legacy;  // RTC, PM: kept alive here
    std::shared_ptr<PciRoot> m_pci;
    std::vector<std::unique_ptr<Entry>> m_entries;
    // Rate limit groups by id; the drives hold them too.
    std::map<std::string, std::shared_ptr<RateLimitGroup>> m_groups;
    ConsoleInput m_console_input;
};

}  // namespace rv
