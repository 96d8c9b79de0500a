// The 82540's receive path: the address filter (unicast RAR entries,
// broadcast, multicast hash table, promiscuous modes, VLAN filter table)
// and delivery of one frame into the legacy receive descriptor ring,
// spanning as many buffers as it needs with EOP on the last.
//
// Frames arrive without an FCS (the backend strips nothing: a tap has
// none); unless RCTL.SECRC asks for it stripped we append a real one,
// because Linux's e1000 driver always cuts 4 bytes off. Checksums are not
// verified (IXSM is set), so the guest checks them itself. RDTR/RADV delay
// timers are not modelled: RXT0 is raised as soon as a frame is written,
// and ITR is what spaces interrupts out.
// Not synchronised: the device calls it under its lock.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "devices/legacy/e1000/e1000_regs.h"
#include "memory/guest_memory.h"

namespace rv::e1000 {

// A descriptor ring as the registers describe it, once validated.
struct Ring {
    uint64_t base{0};
    uint32_t count{0};  // descriptors
    uint32_t head{0};
    uint32_t tail{0};
    // Descriptors the hardware owns (between head and tail).
    uint32_t available() const { return (tail + count - head) % count; }
};

// The receive ring, if RDLEN/RDBA/RDH/RDT describe one inside guest RAM.
std::optional<Ring> rx_ring(const GuestMemory& memory, const RegisterFile& regs);

// Receive buffer size selected by RCTL.BSIZE/BSEX.
uint32_t rx_buffer_size(uint32_t rctl);

// Standard Ethernet CRC-32 (the FCS, sent least significant byte first).
uint32_t ethernet_crc32(std::span<const uint8_t> data);

class RxEngine {
  public:
    enum class Outcome { kDelivered, kNoRoom, kDropped };

    // RX is enabled and the ring has at least one free descriptor.
    static bool ready(const GuestMemory& memory, const RegisterFile& regs);
    // Whether the address and VLAN filters take this frame.
    static bool accepts(const RegisterFile& regs, std::span<const uint8_t> frame);

    // Writes one frame into the ring, advancing RDH; ORs RXT0/RXDMT0/RXO
    // into causes. kNoRoom leaves everything untouched (retry once the
    // guest has given more descriptors).
    Outcome deliver(const GuestMemory& memory, RegisterFile& regs, std::span<const uint8_t> frame,
                    uint32_t& causes);

  private:
    std::vector<uint8_t> m_buf;  // the frame as the guest will see it
};

}  // namespace rv::e1000
