// `ringvisor run`: one VM, configured by flags, by --config-file (Firecracker's
// JSON) or through the API (--api-sock), run until it stops.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "base/sched.h"
#include "vmm/vm_config.h"

namespace rv {

struct RunRequest {
    VmConfig config;                         // from the flags (kernel_path may be empty)
    std::optional<std::string> config_file;  // --config-file
    std::optional<std::string> api_sock;     // --api-sock
    std::string id{"ringvisor"};             // --id
    bool stdin_console{true};                // guest console input from stdin
    ThreadSched sched{ThreadSched::Batch};   // --sched: the class of every thread of the VMM
    // --restore DIR: the VM of a snapshot (DIR/state, DIR/memory), running
    // unless restore_paused; clones give their own TAPs and disk images.
    std::optional<std::string> restore_dir;
    std::optional<std::string> incoming;  // --incoming ADDR: a live migration's destination
    bool restore_paused{false};
    bool clock_realtime{false};  // --clock-realtime: with --restore
    std::map<std::string, std::string> net_overrides;
    std::map<std::string, std::string> drive_overrides;
};

// The process's exit status (see README: 0, 1, 2, 3, 4, 130).
int run_vm(RunRequest request);

}  // namespace rv
