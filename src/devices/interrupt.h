// How a device raises an interrupt, without knowing how it is delivered
// (KVM_IRQ_LINE, irqfd, or a recording fake in tests).
#pragma once

namespace rv {

class IrqLine {
public:
    virtual ~IrqLine() = default;
    // Level-triggered line: high while the device asserts it.
    virtual void set_level(bool high) = 0;
    // Edge: one interrupt.
    virtual void pulse() {
        set_level(true);
        set_level(false);
    }
};

}  // namespace rv
