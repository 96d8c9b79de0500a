// `ringvisor check`: is /dev/kvm usable, and does guest kernel (ring-0) code
// run natively or is it emulated instruction by instruction?
#pragma once

#include <string>

#include "base/error.h"

namespace rv {

struct KvmProbe {
    unsigned max_vcpus{0};
    uint64_t loop_iterations{0};
    double ns_per_iteration{0};  // one `dec ecx; jnz` iteration in guest ring 0
    bool ring0_native{false};
};

// Runs a small ring-0 loop in a throw-away VM and times it.
Result<KvmProbe> probe_kvm(const std::string& kvm_path, uint64_t iterations = 200000);

// Above this many nanoseconds per loop iteration, ring-0 code is emulated.
// Native hardware virtualization runs an iteration in about a nanosecond;
// instruction emulation takes about a microsecond per instruction.
inline constexpr double kEmulatedThresholdNs = 50.0;

}  // namespace rv
