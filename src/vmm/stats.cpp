#include "vmm/stats.h"

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "devices/pci/pci_root.h"
#include "vmm/crash_report.h"
#include "vmm/msi_router.h"
#include "vmm/vm.h"

namespace rv {

Result<void> write_stats(const Vm& vm, const std::string& path) {
    nlohmann::json doc;
    std::map<std::string, uint64_t> totals;
    doc["vcpus"] = nlohmann::json::array();
    for (const auto& vcpu : vm.vcpus()) {
        nlohmann::json entry;
        entry["id"] = vcpu->fd().id();
        if (auto kvm_stats = vcpu->fd().stats()) {
            for (const auto& [name, value] : *kvm_stats) {
                entry["kvm"][name] = value;
                totals[name] += value;
            }
        } else {
            entry["kvm_error"] = kvm_stats.error().message();
        }
        entry["vmm"]["pio_exits"] = vcpu->stats().pio_exits.load();
        entry["vmm"]["mmio_exits"] = vcpu->stats().mmio_exits.load();
        // Where the vCPU was when the VM stopped and what it last did in user
        // space: after a crash or a hang (a timeout's SIGTERM) this is the trail.
        entry["at_exit"] = vcpu_crash_state(*vcpu);
        doc["vcpus"].push_back(entry);
    }
    doc["totals"] = totals;
    doc["msi_interrupts"] = vm.msi_interrupts();
    // Guest writes KVM buffered (coalesced MMIO) instead of exiting.
    doc["posted_writes"] = vm.posted_writes();
    doc["pci_devices"] = nlohmann::json::array();
    if (const PciRoot* pci = vm.pci()) {
        for (const auto& [slot, device] : pci->devices()) {
            nlohmann::json entry;
            entry["slot"] = slot;
            entry["name"] = device->name();
            entry["counters"] = nlohmann::json::object();
            for (const auto& [name, value] : device->counters()) entry["counters"][name] = value;
            doc["pci_devices"].push_back(entry);
        }
    }
    std::ofstream out(path);
    if (!out) return errno_error(path);
    out << doc.dump(2) << '\n';
    if (!out) return errno_error(path);
    return {};
}

}  // namespace rv
