// `ringvisor run`: one VM, configured by flags, by --config-file (Firecracker's
// JSON) or through the API (--api-sock), run until it stops.
#pragma once

#include <optional>
#include <string>

#include "vmm/vm_config.h"

namespace rv {

struct RunRequest {
    VmConfig config;                         // from the flags (kernel_path may be empty)
    std::optional<std::string> config_file;  // --config-file
    std::optional<std::string> api_sock;     // --api-sock
    std::string id{"ringvisor"};             // --id
    bool stdin_console{true};                // guest console input from stdin
};

// The process's exit status (see README: 0, 1, 2, 3, 4, 130).
int run_vm(RunRequest request);

}  // namespace rv
