// Why a VM stopped, and the control surface devices and vCPUs use to stop it.
#pragma once

#include <string>

namespace rv {

enum class VmExitReason {
    PowerOff,  // guest powered off (ACPI S5)
    Reset,     // guest rebooted (i8042 reset, triple fault)
    Panic,     // guest kernel panicked
    Error,     // the VMM could not continue running the guest
    Quit,      // the user asked to quit (console escape, signal)
};

struct VmOutcome {
    VmExitReason reason{VmExitReason::Error};
    std::string message;
};

// Process exit status for an outcome: 0 for a clean guest power-off or
// reboot, non-zero otherwise.
inline int exit_status(const VmOutcome& outcome) {
    switch (outcome.reason) {
        case VmExitReason::PowerOff:
        case VmExitReason::Reset:
            return 0;
        case VmExitReason::Panic:
            return 3;
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
