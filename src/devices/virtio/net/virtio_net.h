// virtio-net (device type 1) over NetBackends (a TAP in the VMM, socketpairs
// in tests): N rx/tx queue pairs, each served from its own backend (one fd of
// a multi-queue tap), plus a control queue. The virtio-net header goes to and
// from the backend unchanged, so checksum and segmentation offloads are
// negotiated end to end: HOST_* features are what the backend accepts from
// the guest (a tap takes any), GUEST_* features acked by the driver become
// the backend's offloads.
//
// Queues (5.1.2): 2k is rx of pair k, 2k+1 its tx, and queue 2N the control
// queue. CTRL_VQ (with GUEST_ANNOUNCE, below) is always offered, so a
// one-pair NIC has 3 queues: rx 0, tx 1, control 2. With N > 1 the device
// also offers MQ and says max_virtqueue_pairs = N; a driver that takes
// CTRL_VQ without MQ uses pair 0 and finds the control queue at 2, one that
// takes neither uses queues 0 and 1 only. The driver starts on pair 0 only
// (5.1.6.5.5) and moves to n pairs with VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET
// (1..N, and only with MQ negotiated; anything else is answered
// VIRTIO_NET_ERR, as is every command class but MQ and ANNOUNCE: RX mode,
// MAC and VLAN commands are not offered, so Linux sends none). Pairs at or
// above n are not served at all (their kicks and backend fds ignored), and
// their tap queues are detached (TUNSETQUEUE), so the kernel steers no flow
// to a queue nobody reads; a pair's held rx packet and chains wait there
// until it is enabled again. Control chains are hostile like the rest: too
// short, oversized or of the wrong size get ERR in the first writable byte;
// one with no writable byte cannot be answered, so it is returned with used
// length 0 and the device reports NEEDS_RESET (as QEMU does). Each queue
// signals its own index; the transport maps it to the MSI-X vector the
// driver programmed for it (Linux gives each pair's vectors the affinity of
// that pair's vCPU).
//
// Announce (5.1.6.5.4, GUEST_ANNOUNCE, which needs CTRL_VQ): after a restore
// or a live migration the guest may sit behind another switch port than the
// one its peers and the switches learned. announce() (which is what
// on_resumed_elsewhere does) sets VIRTIO_NET_S_ANNOUNCE in the config
// status and signals a config change; the driver sends the gratuitous ARP
// and unsolicited neighbour advertisements itself (it knows its addresses
// and VLANs, we do not) and clears the bit with VIRTIO_NET_CTRL_ANNOUNCE_ACK.
// A driver that did not negotiate the feature cannot be told: switches then
// learn the new port from the guest's next frame. A pending bit is part of
// save_state; reset clears it.
//
// TX (queue 2k+1): each chain's readable part (12-byte header + frame) is
// gathered straight from guest memory into one writev on pair k's backend.
// When the backend is full (EAGAIN) the chain goes back to the ring and TX
// waits for the fd to become writable (EPOLLOUT is registered only then):
// no packet is dropped for backpressure.
//
// RX (queue 2k): a tap cannot peek, so a packet's size is known only once
// it is read. When the chains held for the pair can take the largest packet
// (with MRG_RXBUF the pair holds chains ahead until they do, if the ring has
// them and they are not small; without, one chain must), the packet is read
// straight into their buffers, and only the chains it filled are returned
// (num_buffers set in the first); the rest stay held for the next packet.
// Otherwise it is read into the pair's bounce buffer (sized for the largest
// packet) and copied into as many chains as it needs, or into one. Either
// way the device checks and rewrites the header before the driver sees the
// packet. A packet is taken off the backend only once an rx chain is in
// hand; when the ring runs dry the pair stops polling its backend (packets
// wait in the tap) until the driver's next notify of that rx queue.
//
// Fairness: one pass of TX handles at most kTxBudget chains, one pass of RX
// at most kRxBudget units of work (a chain taken from the ring or a packet
// taken from the backend), the control queue kCtrlBudget commands, so a
// guest that republishes TX chains as fast as we send them, or a host that
// keeps the tap full, cannot hold the event loop. A pass that runs out
// yields: it writes a private eventfd (the kick, one per device, with a
// resume flag per pair and direction) and resumes where it left off on a
// later event-loop turn (an rx packet half placed stays held with its
// chains). Without the kick the rest would wait for the driver's next
// notification, which may never come: it has not seen us ask for one.
//
// Rate limiting (optional, Firecracker's rx/tx RateLimiter): one limiter per
// direction for the whole device, shared by all pairs, so the cap is the
// NIC's whatever the guest's queue count. A packet costs its frame bytes
// (without the virtio-net header) and 1 op. TX asks before writing a chain;
// refused, the chain goes back to the ring and that pair waits for the
// limiter's timer (guest kicks meanwhile do nothing). RX asks once a packet
// has been read and its chains are in hand; refused, the packet stays held
// with its chains, the pair's tap queue is not polled (EPOLLIN off) and it
// waits for the timer. The timer resumes every pair it held, starting from
// a different pair each time, so no pair starves the others. A packet the
// backend could not take after all (EAGAIN) gets its tokens back, so the
// retry is not charged twice. Counters are the device's: summed over pairs.
//
// Threads: activate, reset and read_config (the status) run on a vCPU
// thread; queue_notify, the backend handlers, the kick and the limiter
// timers on the event-loop thread; set_*_rate_limiter on the API's thread;
// announce() on any; one mutex serializes them (and guards the limiters and
// their timers). The registrar must not hold its
// own lock while running handlers.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "backends/net/net_backend.h"
#include "base/fd.h"
#include "devices/rate_limiter.h"
#include "devices/rate_limiter_timer.h"
#include "devices/virtio/net/net_flows.h"
#include "devices/virtio/virtio_device.h"

namespace rv::virtio {

struct VirtioNetConfig {
    std::array<uint8_t, 6> mac{};
    std::optional<uint16_t> mtu;  // offered as VIRTIO_NET_F_MTU when set
    // Packets to the guest / from the guest; none: unlimited.
    std::optional<RateLimiterConfig> rx_rate_limiter;
    std::optional<RateLimiterConfig> tx_rate_limiter;
    NsClock clock_ns;  // the limiters' clock, for tests; empty: CLOCK_MONOTONIC
};

// Counters, readable from any thread.
struct NetStats {
    uint64_t rx_packets{0};
    uint64_t rx_bytes{0};     // frame bytes, without the virtio-net header
    uint64_t rx_in_place{0};  // of the rx_packets, read straight into guest buffers
    uint64_t tx_packets{0};
    uint64_t tx_bytes{0};
    uint64_t rx_dropped{0};       // packets that fit no guest buffer, or bad offload types
    uint64_t tx_dropped{0};       // the backend refused a packet (e.g. tap down)
    uint64_t rx_errors{0};        // malformed rx chains, backend read failures
    uint64_t tx_errors{0};        // malformed tx chains
    uint64_t tx_backpressure{0};  // times TX waited for the backend to drain
    uint64_t notifications{0};    // driver queue notifications
    uint64_t interrupts{0};       // used-buffer interrupts sent
    uint64_t budget_yields{0};    // passes that ran out of budget and resumed on a later turn
    uint64_t rx_throttled{0};     // packets the rx rate limiter held back (each try counts)
    uint64_t tx_throttled{0};     // the same for tx
    // Time the rx (tx) limiter held work back, in µs: from its first refusal
    // until its timer let every held pair go, the hold in progress included.
    uint64_t rx_throttled_us{0};
    uint64_t tx_throttled_us{0};
    uint64_t ctrl_commands{0};    // control queue chains handled
    uint64_t ctrl_errors{0};      // ... answered VIRTIO_NET_ERR, or malformed
    uint64_t announces{0};        // announcements asked of the driver (announce() true)
};

class VirtioNet final : public VirtioDevice {
  public:
    // Pair 0's queues (pair k: 2k and 2k + 1).
    static constexpr uint16_t kRxQueue = 0;
    static constexpr uint16_t kTxQueue = 1;
    static constexpr uint16_t kQueueSize = 256;
    static constexpr uint16_t kCtrlQueueSize = 64;
    // The most queue pairs a NIC gets (and the config's cap on queues=).
    static constexpr unsigned kMaxQueuePairs = 16;
    // Per pass: TX chains; RX chains taken plus packets read (a one-buffer
    // packet costs 2), i.e. about a ring's worth of packets either way;
    // control commands.
    static constexpr unsigned kTxBudget = kQueueSize;
    static constexpr unsigned kRxBudget = 2 * kQueueSize;
    // With MRG_RXBUF, chains are held ahead for reading packets in place
    // while they have this many bytes each (Linux posts 1.5 to 4 KiB): at
    // most 65 chains.
    static constexpr uint64_t kRxDirectMinChain = 1024;
    static constexpr unsigned kCtrlBudget = kCtrlQueueSize;

    static constexpr uint16_t rx_queue(unsigned pair) { return static_cast<uint16_t>(2 * pair); }
    static constexpr uint16_t tx_queue(unsigned pair) {
        return static_cast<uint16_t>(2 * pair + 1);
    }

    // One queue pair. Sets the backend's header size to 12. Fails on a
    // multicast or all-zero MAC, an MTU below 68, or a backend that rejects
    // the header size.
    static Result<std::unique_ptr<VirtioNet>> create(std::unique_ptr<NetBackend> backend,
                                                     const VirtioNetConfig& config);
    // One queue pair per backend (1..kMaxQueuePairs), pair k on backends[k].
    static Result<std::unique_ptr<VirtioNet>> create(
        std::vector<std::unique_ptr<NetBackend>> backends, const VirtioNetConfig& config);
    ~VirtioNet() override;

    std::string_view name() const override { return "virtio-net"; }
    uint32_t device_type() const override { return kTypeNet; }
    uint64_t device_features() const override;
    std::vector<uint16_t> queue_max_sizes() const override;
    void read_config(uint64_t offset, std::span<uint8_t> data) override;
    void write_config(uint64_t offset, std::span<const uint8_t> data) override;
    Result<void> activate(ActivateArgs args) override;
    void reset() override;
    void queue_notify(uint16_t index) override;
    bool needs_reset() const override { return m_needs_reset.load(); }
    // rx chains held for a packet go back to the ring and the packet is
    // dropped, as a NIC drops one it has no buffer for (net_snapshot.cpp).
    Result<void> quiesce() override;
    std::vector<Queue::State> queue_states() const override;
    // The pairs the driver set with VQ_PAIRS_SET and a pending announce.
    std::vector<uint8_t> save_state() const override;
    Result<void> restore_state(std::span<const uint8_t> state) override;
    void on_resumed_elsewhere() override { (void)announce(); }

    // Asks the driver to announce the guest on the network (from any
    // thread): sets VIRTIO_NET_S_ANNOUNCE and signals a config change.
    // False, doing nothing, when the device is inactive or failed, or the
    // driver did not negotiate GUEST_ANNOUNCE and CTRL_VQ: it cannot be told.
    bool announce();

    // N, the pairs the device has; the control queue's index is 2N (2
    // for a driver without MQ).
    unsigned queue_pairs() const { return static_cast<unsigned>(m_backends.size()); }
    // The pairs served now (1 until the driver sets more); 0 while inactive.
    unsigned active_pairs() const;

    // Replace a direction's rate limiter (nullopt: unlimited) while the
    // device runs, from any thread; a packet it holds back is retried under
    // the new limits at once, from the event loop. Fails only if the
    // limiter's timer cannot be set up (the limits then stay as they were).
    Result<void> set_rx_rate_limiter(std::optional<RateLimiterConfig> config);
    Result<void> set_tx_rate_limiter(std::optional<RateLimiterConfig> config);
    // The limiter timers' fds, -1 while none is registered (tests fire them).
    int rx_limiter_timer_fd() const;
    int tx_limiter_timer_fd() const;

    NetStats stats() const;
    DeviceCounters counters() const override;

  private:
    // One rx/tx pair between DRIVER_OK and reset.
    struct Pair {
        unsigned index;
        NetBackend* backend;
        std::span<uint8_t> bounce;  // one rx packet, kNetMaxPacketLen + 1 (to see truncation)
        Queue rx;
        Queue tx;
        uint32_t interest{0};      // epoll events currently registered for the backend fd
        bool rx_stalled{false};    // rx ring ran dry: backend not polled until an rx notify
        bool tx_blocked{false};    // backend full: TX waits for EPOLLOUT
        bool backend_gone{false};  // backend hung up or failed reading: stop polling it
        // A pass ran out of budget with work left; the kick resumes it.
        bool tx_resume{false};
        bool rx_resume{false};
        // Held back by a rate limiter: its timer resumes the direction.
        bool rx_throttled{false};
        bool tx_throttled{false};
        // RX in progress: a packet in `bounce` (or in the held chains, its
        // header in both: rx_in_place) and the chains held for it.
        bool rx_pending{false};
        bool rx_in_place{false};
        size_t rx_len{0};
        std::vector<DescriptorChain> rx_chains;
        uint64_t rx_capacity{0};
        // The held chains' buffers in order, as host memory, for reading a
        // packet straight into them: one entry per buffer, {nullptr, len}
        // for one not inside a single region.
        std::vector<iovec> rx_iov;
        // An unusable chain was returned after one still held: the held ones
        // are not the ring's last (quiesce cannot undo their pops).
        bool rx_gap{false};
    };
    // Whatever exists only between DRIVER_OK and reset.
    struct Active {
        const GuestMemory* memory;
        std::shared_ptr<Interrupt> interrupt;
        EventRegistrar* events;
        uint64_t features;
        std::vector<Pair> pairs;    // the negotiated ones: N with MQ, else 1; never resized
        std::optional<Queue> ctrl;  // with CTRL_VQ
        uint16_t ctrl_index{0};
        unsigned active_pairs{1};  // pairs served (VQ_PAIRS_SET)
        FlowQueues flows;          // the pair each flow's pure ACKs leave by (net_flows.h)
        bool announce{false};      // VIRTIO_NET_S_ANNOUNCE: set by announce(), cleared by the ACK
        bool failed{false};        // a queue error; NEEDS_RESET reported, nothing processed
        bool kick_registered{false};
        bool ctrl_resume{false};
        unsigned rx_timer_turn{0};  // the pair a limiter timer resumes first
        unsigned tx_timer_turn{0};
        // The transport index of each queue activate() was given, in order
        // (queue_states answers in that order; extra ones are never used).
        std::vector<uint16_t> given;
    };
    enum class PopResult { Got, Empty, Failed, OutOfBudget };
    // warn_once bits.
    enum Warn : unsigned {
        kWarnTxBadChain = 1u << 0,
        kWarnTxRefused = 1u << 1,
        kWarnRxBadChain = 1u << 2,
        kWarnRxTooBig = 1u << 3,
        kWarnRxBadPacket = 1u << 4,
        kWarnBackendGone = 1u << 5,
        kWarnCtrlBadChain = 1u << 6,
        kWarnCtrlRefused = 1u << 7,
        kWarnQueueAttach = 1u << 8,
    };
    struct Counters {
        std::atomic<uint64_t> rx_packets{0}, rx_bytes{0}, tx_packets{0}, tx_bytes{0};
        std::atomic<uint64_t> rx_in_place{0};
        std::atomic<uint64_t> rx_dropped{0}, tx_dropped{0}, rx_errors{0}, tx_errors{0};
        std::atomic<uint64_t> tx_backpressure{0}, notifications{0}, interrupts{0};
        std::atomic<uint64_t> budget_yields{0};
        std::atomic<uint64_t> rx_throttled{0}, tx_throttled{0};
        std::atomic<uint64_t> ctrl_commands{0}, ctrl_errors{0};
        std::atomic<uint64_t> announces{0};
    };
    // A direction's limiter and the timer that brings it back.
    struct Limit {
        RateLimiter limiter;
        LimiterTimer timer;  // attached while active with a limiter in force
    };

    VirtioNet(std::vector<std::unique_ptr<NetBackend>> backends, const VirtioNetConfig& config,
              EventFd kick);

    Result<void> build_active(ActivateArgs& args);
    Result<void> register_events(Active& a);
    void on_backend_event(unsigned pair, uint32_t events);
    void on_kick();
    void on_limiter_timer(uint16_t queue);
    Result<void> set_rate_limiter(uint16_t queue, const std::optional<RateLimiterConfig>& config);
    Result<void> attach_limiter_timer(uint16_t queue);
    Limit& limit(uint16_t queue) { return queue == kRxQueue ? m_rx_limit : m_tx_limit; }
    void resume_later(bool& resume);
    void process_tx(Active& a, Pair& p);
    void process_rx(Active& a, Pair& p);
    PopResult pop_rx_chain(Active& a, Pair& p, bool& used, unsigned& budget);
    bool take_rx_packet(Active& a, Pair& p);
    size_t direct_rx_entries(const Active& a, const Pair& p) const;
    void hold_rx_chain(const Active& a, Pair& p, DescriptorChain&& chain);
    void release_rx_chains(Pair& p, size_t n);
    static void drop_rx_chains(Pair& p);
    bool deliver_rx_packet(Active& a, Pair& p);
    bool rx_offloads_allowed(const Active& a, const Pair& p) const;
    void process_ctrl(Active& a);
    uint8_t handle_ctrl_command(Active& a, const DescriptorChain& chain);
    uint8_t ctrl_pairs_set(Active& a, std::span<const uint8_t> data);
    uint8_t ctrl_announce_ack(Active& a, std::span<const uint8_t> data);
    static bool announce_negotiated(uint64_t features);
    uint8_t ctrl_refuse(unsigned warn_bit, std::string_view why);
    void set_active_pairs(Active& a, unsigned pairs);
    void attach_queue(Pair& p, bool attached);
    void signal_used(Active& a, Queue& queue, uint16_t index);
    void update_interest(Active& a, Pair& p);
    void fail(Active& a, std::string_view what, const Error& error);
    void warn_once(unsigned bit, std::string_view text);
    void stop(Active& a);

    const std::vector<std::unique_ptr<NetBackend>> m_backends;  // one per pair
    const VirtioNetConfig m_config;
    const EventFd m_kick;  // resumes a pass that ran out of budget (registered while active)
    Counters m_counters;
    std::atomic<bool> m_needs_reset{false};

    mutable std::mutex m_mutex;  // guards everything below
    std::optional<Active> m_active;
    std::vector<std::vector<uint8_t>> m_bounce;  // per pair, lent to Pair::bounce
    std::vector<iovec> m_tx_iov;                 // reused per TX chain
    Limit m_rx_limit;
    Limit m_tx_limit;
    unsigned m_warned{0};  // warn_once bits: log each kind of guest error once
};

}  // namespace rv::virtio
