// What ringvisor says when the guest crashes (a triple fault): every vCPU's
// registers and the last exits it served, on stderr and in --stats.
// Call once the vCPU threads have stopped.
#pragma once

#include <nlohmann/json_fwd.hpp>

namespace rv {

class Vm;
class Vcpu;

void log_crash_report(const Vm& vm);
// One vCPU's registers (where KVM can still tell them) and last exits.
nlohmann::json vcpu_crash_state(const Vcpu& vcpu);

}  // namespace rv
