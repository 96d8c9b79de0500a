#include "vmm/crash_report.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "base/log.h"
#include "vmm/vm.h"

namespace rv {

namespace {

std::string registers_line(const Vcpu& vcpu) {
    auto regs = vcpu.fd().get_regs();
    auto sregs = vcpu.fd().get_sregs();
    if (!regs || !sregs) return "registers unavailable";
    return fmt::format(
        "rip {:#x} rsp {:#x} rflags {:#x} rax {:#x} cr0 {:#x} cr2 {:#x} cr3 {:#x} cr4 {:#x} "
        "efer {:#x} cs {:#x} cpl {}",
        regs->rip, regs->rsp, regs->rflags, regs->rax, sregs->cr0, sregs->cr2, sregs->cr3,
        sregs->cr4, sregs->efer, sregs->cs.selector, sregs->cs.dpl);
}

}  // namespace

nlohmann::json vcpu_crash_state(const Vcpu& vcpu) {
    nlohmann::json j;
    j["registers"] = registers_line(vcpu);
    j["exits_served"] = vcpu.recorder().total();
    j["last_exits"] = nlohmann::json::array();
    for (const auto& e : vcpu.recorder().entries())
        j["last_exits"].push_back(ExitRecorder::describe(e));
    return j;
}

void log_crash_report(const Vm& vm) {
    for (const auto& vcpu : vm.vcpus()) {
        log::error("crash report: vCPU {}: {}", vcpu->fd().id(), registers_line(*vcpu));
        const auto entries = vcpu->recorder().entries();
        const size_t show = std::min<size_t>(entries.size(), 8);
        for (size_t i = entries.size() - show; i < entries.size(); ++i)
            log::error("crash report: vCPU {}: exit {}", vcpu->fd().id(),
                       ExitRecorder::describe(entries[i]));
    }
}

}  // namespace rv
