// Why a VM stopped, and the control surface devices and vCPUs use to stop it.
#pragma once

#include <string>

namespace rv {

enum class VmExitReason {
    PowerOff,  // guest powered off (ACPI S5)
    Reset,     // guest asked to reboot (ACPI reset register, i8042, port 0xCF9)
    Panic,     // guest kernel panicked
    Crash,     // a vCPU shut down (triple fault) without the guest asking to reset
    Error,     // the VMM could not continue running the guest
    Quit,      // the user asked to quit (console escape, signal)
    Migrated,  // the VM went on in another process (live migration)
};

struct VmOutcome {
    VmExitReason reason{VmExitReason::Error};
    std::string message;
};

// Process exit status for an outcome: 0 for a clean guest power-off or
// reboot, non-zero otherwise (documented in README.md: 1 VMM error, 3 guest
// kernel panic, 4 guest crash, 130 quit; 2 is bad input, before any VM).
inline int exit_status(const VmOutcome& outcome) {
    switch (outcome.reason) {
        case VmExitReason::PowerOff:
        case VmExitReason::Reset:
        case VmExitReason::Migrated:
            return 0;
        case VmExitReason::Panic:
            return 3;
        case VmExitReason::Crash:
            return 4;
        case VmExitReason::Quit:
            return 130;
        case VmExitReason::Error:
            return 1;
    }
    return 1;
}

class VmControl {
public:
    virtual ~VmControl() = default;
    // First request wins; later ones are ignored. Thread-safe.
    virtual void request_exit(VmExitReason reason, std::string message) = 0;
    virtual bool exiting() const = 0;
};

}  // namespace rv
