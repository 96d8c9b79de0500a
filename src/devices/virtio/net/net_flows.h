// Which backend queue a guest packet leaves by, on a NIC with several queue
// pairs.
//
// A multi-queue tap steers each flow towards the guest on the queue that
// flow's packets from the guest were last written to (the tun driver's
// automatic steering). A bulk sender writes from one vCPU, so its ACKs come
// back there: good. But a TCP *receiver* sends only ACKs, from whichever
// vCPU sends them (the one taking the interrupt, or the one the application
// runs on), so its flow flips between queues, and packets already queued on
// the old queue reach the guest after newer ones on the new queue. The
// guest sees them out of order, sends duplicate ACKs, and the sender
// retransmits: 1062 out-of-order segments and 484 duplicates in one 8 s
// iperf3 stream (docs/BENCHMARKS.md).
//
// So a flow is pinned to the queue of the pair it last sent *data* from: a
// pure ACK (TCP, no payload, no SYN/FIN/RST) leaves by the flow's pinned
// queue, and the tap never sees the flow move for it. Everything else leaves
// by its own pair's queue, as before. The table is a hint with 256 slots
// keyed by a hash of the flow: a collision only shares a queue.
#pragma once

#include <array>
#include <cstdint>
#include <span>

namespace rv::virtio {

// What the start of a TX packet (virtio-net header, then the frame) says.
struct TxFlow {
    bool flow{false};      // IPv4/IPv6 with TCP or UDP: `key` names the flow
    bool pure_ack{false};  // TCP with no payload and none of SYN, FIN, RST
    uint32_t key{0};
};

// Reads only `head` (a copy: guest memory is never parsed in place); a packet
// cut short or malformed is no flow.
TxFlow classify_tx(std::span<const uint8_t> head);

// The bytes of a packet classify_tx needs at most.
inline constexpr size_t kTxFlowHeadBytes = 12 + 14 + 40 + 60;

class FlowQueues {
  public:
    FlowQueues() { clear(); }
    // The pair (< active_pairs) the packet leaves by, from pair `from`.
    unsigned pick(const TxFlow& flow, unsigned from, unsigned active_pairs);
    void clear() { m_pinned.fill(kNone); }

  private:
    static constexpr uint8_t kNone = 0xff;
    std::array<uint8_t, 256> m_pinned{};
};

}  // namespace rv::virtio
