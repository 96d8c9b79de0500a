// Message-signalled interrupts without KVM: a device (through its MSI-X
// capability) asks the VMM to route a vector's (address, data) to a GSI and
// to raise it. The VMM implements this with KVM GSI routing and irqfds.
#pragma once

#include <cstdint>

#include "base/error.h"

namespace rv {

struct MsiMessage {
    uint64_t address{0};
    uint32_t data{0};
    bool operator==(const MsiMessage&) const = default;
};

class MsiRouter {
public:
    virtual ~MsiRouter() = default;
    // A fresh GSI for one vector; fails when the routing table is full.
    virtual Result<uint32_t> allocate_gsi() = 0;
    // Points gsi at message (the guest programmed or changed the vector).
    virtual Result<void> set_route(uint32_t gsi, MsiMessage message) = 0;
    // Delivers one interrupt on gsi. Thread-safe; never blocks.
    virtual void trigger(uint32_t gsi) = 0;
};

}  // namespace rv
