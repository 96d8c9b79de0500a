// The configuration a snapshot carries (its "config" section): the VM's
// machine and devices, which a restore rebuilds exactly, so each device
// finds its saved state; the process's own settings (console, run dir,
// KVM path, stats, cgroup, ledger, logger, metrics) come from the process
// that restores. A clone changes what only the host sees: each NIC's TAP
// (Firecracker's network_overrides) and each drive's file.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "base/error.h"
#include "snapshot/snapshot_file.h"
#include "vmm/vm_config.h"

namespace rv {

inline constexpr uint32_t kSnapshotConfigVersion = 1;

std::vector<uint8_t> encode_snapshot_config(const VmConfig& config);

struct SnapshotOverrides {
    std::map<std::string, std::string> taps;         // NIC id -> TAP name
    std::map<std::string, std::string> drive_paths;  // drive id -> image path
};

// An override naming no NIC or drive of the snapshot, a missing or
// unreadable config section: InvalidInput. The result is validated.
Result<VmConfig> snapshot_config(const snapshot::SnapshotFile& file, const VmConfig& process,
                                 const SnapshotOverrides& overrides, unsigned max_cpus);

}  // namespace rv
