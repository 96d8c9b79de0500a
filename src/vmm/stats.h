// `ringvisor run --stats FILE`: at exit, the VM's counters as JSON — KVM's
// per-vCPU statistics (exits by kind, interrupt injections, halts), the
// exits the VMM itself served, and the MSI interrupts devices raised — so
// benchmarks can report exits and interrupts per MiB of I/O.
#pragma once

#include <string>

#include "base/error.h"

namespace rv {

class Vm;
Result<void> write_stats(const Vm& vm, const std::string& path);

}  // namespace rv
