// virtio-net (device type 1) over a NetBackend (a TAP in the VMM, a socketpair
// in tests): one rx/tx queue pair, no control queue. The virtio-net header
// goes to and from the backend unchanged, so checksum and segmentation
// offloads are negotiated end to end: HOST_* features are what the backend
// accepts from the guest (a tap takes any), GUEST_* features acked by the
// driver become the backend's offloads.
//
// TX (queue 1): each chain's readable part (12-byte header + frame) is
// gathered straight from guest memory into one writev. When the backend is
// full (EAGAIN) the chain goes back to the ring and TX waits for the fd to
// become writable (EPOLLOUT is registered only then): no packet is dropped
// for backpressure.
//
// RX (queue 0): a packet is read into a bounce buffer (one per device, sized
// for the largest packet), then copied into as many chains as it needs
// (MRG_RXBUF, num_buffers set in the first) or into one chain. The copy is
// the price of knowing a packet's size before committing guest buffers: a
// tap cannot peek. A packet is taken off the backend only once an rx chain
// is in hand; when the ring runs dry the device stops polling the backend
// (packets wait in the tap) until the driver's next rx notify.
//
// Fairness: one pass of TX handles at most kTxBudget chains, one pass of RX
// at most kRxBudget units of work (a chain taken from the ring or a packet
// taken from the backend), so a guest that republishes TX chains as fast as
// we send them, or a host that keeps the tap full, cannot hold the event
// loop. A pass that runs out yields: it writes a private eventfd (the kick)
// and its direction resumes from there on a later event-loop turn, where it
// left off (an rx packet half placed stays held with its chains). Without
// the kick the rest would wait for the driver's next notification, which
// may never come: it has not seen us ask for one.
//
// Rate limiting (optional, Firecracker's rx/tx RateLimiter): a packet costs
// its frame bytes (without the virtio-net header) and 1 op. TX asks before
// writing a chain; refused, the chain goes back to the ring and TX waits for
// its limiter timer (guest kicks meanwhile do nothing). RX asks once a
// packet has been read and its chains are in hand; refused, the packet stays
// held with its chains, the tap is not polled (EPOLLIN off) and RX waits for
// its timer. A packet the backend could not take after all (EAGAIN) gets its
// tokens back, so the retry is not charged twice.
//
// Threads: activate/reset run on a vCPU thread; queue_notify, the backend
// handler, the kick and the limiter timers on the event-loop thread;
// set_*_rate_limiter on the API's thread; one mutex serializes them (and
// guards the limiters and their timers). The registrar must not hold its
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
    uint64_t rx_bytes{0};  // frame bytes, without the virtio-net header
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
};

class VirtioNet final : public VirtioDevice {
  public:
    static constexpr uint16_t kRxQueue = 0;
    static constexpr uint16_t kTxQueue = 1;
    static constexpr uint16_t kQueueSize = 256;
    // Per pass: TX chains; RX chains taken plus packets read (a one-buffer
    // packet costs 2), i.e. about a ring's worth of packets either way.
    static constexpr unsigned kTxBudget = kQueueSize;
    static constexpr unsigned kRxBudget = 2 * kQueueSize;

    // Sets the backend's header size to 12. Fails on a multicast or all-zero
    // MAC, an MTU below 68, or a backend that rejects the header size.
    static Result<std::unique_ptr<VirtioNet>> create(std::unique_ptr<NetBackend> backend,
                                                     const VirtioNetConfig& config);
    ~VirtioNet() override;

    std::string_view name() const override { return "virtio-net"; }
    uint32_t device_type() const override { return kTypeNet; }
    uint64_t device_features() const override;
    std::vector<uint16_t> queue_max_sizes() const override { return {kQueueSize, kQueueSize}; }
    void read_config(uint64_t offset, std::span<uint8_t> data) override;
    void write_config(uint64_t offset, std::span<const uint8_t> data) override;
    Result<void> activate(ActivateArgs args) override;
    void reset() override;
    void queue_notify(uint16_t index) override;
    bool needs_reset() const override { return m_needs_reset.load(); }

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
    // Whatever exists only between DRIVER_OK and reset.
    struct Active {
        const GuestMemory* memory;
        std::shared_ptr<Interrupt> interrupt;
        EventRegistrar* events;
        Queue rx;
        Queue tx;
        uint64_t features;
        uint32_t interest{0};      // epoll events currently registered for the backend fd
        bool rx_stalled{false};    // rx ring ran dry: backend not polled until an rx notify
        bool tx_blocked{false};    // backend full: TX waits for EPOLLOUT
        bool failed{false};        // a queue error; NEEDS_RESET reported, nothing processed
        bool backend_gone{false};  // backend hung up or failed reading: stop polling it
        bool kick_registered{false};
        // A pass ran out of budget with work left; the kick resumes it.
        bool tx_resume{false};
        bool rx_resume{false};
        // Held back by a rate limiter: its timer resumes the direction.
        bool rx_throttled{false};
        bool tx_throttled{false};
        // RX in progress: a packet in m_bounce and the chains held for it.
        bool rx_pending{false};
        size_t rx_len{0};
        std::vector<DescriptorChain> rx_chains;
        uint64_t rx_capacity{0};
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
    };
    struct Counters {
        std::atomic<uint64_t> rx_packets{0}, rx_bytes{0}, tx_packets{0}, tx_bytes{0};
        std::atomic<uint64_t> rx_dropped{0}, tx_dropped{0}, rx_errors{0}, tx_errors{0};
        std::atomic<uint64_t> tx_backpressure{0}, notifications{0}, interrupts{0};
        std::atomic<uint64_t> budget_yields{0};
        std::atomic<uint64_t> rx_throttled{0}, tx_throttled{0};
    };
    // A direction's limiter and the timer that brings it back.
    struct Limit {
        RateLimiter limiter;
        LimiterTimer timer;  // attached while active with a limiter in force
    };

    VirtioNet(std::unique_ptr<NetBackend> backend, const VirtioNetConfig& config, EventFd kick);

    void on_backend_event(uint32_t events);
    void on_kick();
    void on_limiter_timer(uint16_t queue);
    Result<void> set_rate_limiter(uint16_t queue, const std::optional<RateLimiterConfig>& config);
    Result<void> attach_limiter_timer(uint16_t queue);
    Limit& limit(uint16_t queue) { return queue == kRxQueue ? m_rx_limit : m_tx_limit; }
    void resume_later(bool& resume);
    void process_tx(Active& a);
    void process_rx(Active& a);
    PopResult pop_rx_chain(Active& a, bool& used, unsigned& budget);
    bool take_rx_packet(Active& a);
    bool deliver_rx_packet(Active& a);
    bool rx_offloads_allowed(const Active& a) const;
    void signal_used(Active& a, Queue& queue, uint16_t index);
    void update_interest(Active& a);
    void fail(Active& a, std::string_view what, const Error& error);
    void warn_once(unsigned bit, std::string_view text);
    void stop(Active& a);

    const std::unique_ptr<NetBackend> m_backend;
    const VirtioNetConfig m_config;
    const EventFd m_kick;  // resumes a pass that ran out of budget (registered while active)
    Counters m_counters;
    std::atomic<bool> m_needs_reset{false};

    mutable std::mutex m_mutex;  // guards everything below
    std::optional<Active> m_active;
    std::vector<uint8_t> m_bounce;  // one rx packet, kNetMaxPacketLen + 1 (to see truncation)
    std::vector<iovec> m_tx_iov;    // reused per TX chain
    Limit m_rx_limit;
    Limit m_tx_limit;
    unsigned m_warned{0};  // warn_once bits: log each kind of guest error once
};

}  // namespace rv::virtio
