// virtio-blk (virtio 1.2, 5.2): request queues of up to 256 entries each over
// one BlockBackend. Requests go straight between guest RAM and the backend
// (host iovecs, no copy) and may complete out of order, except around a
// FLUSH, which is a barrier for the whole device: it is submitted only once
// every earlier request (of any queue) has completed, and later requests
// wait until it has completed.
//
// Multiqueue (VIRTIO_BLK_F_MQ, offered when num_queues > 1): Linux's blk-mq
// maps each queue to a set of vCPUs and programs each queue's MSI-X vector
// to interrupt one of them, so a request is submitted and completed on the
// vCPU that issued it. The driver may enable fewer queues than offered (it
// takes min(num_queues, its CPUs)); they are queues 0..k-1. A completion
// goes to the used ring of the queue its request came from and signals that
// queue.
//
// Malformed requests: anything that still has a writable status byte gets
// VIRTIO_BLK_S_IOERR (bad layout, lengths, sector ranges; writes to a
// read-only disk) or VIRTIO_BLK_S_UNSUPP (unknown or unnegotiated types).
// A chain without a status byte cannot be answered: it is returned with used
// length 0 (so the driver does not lose the descriptors), logged, and the
// device flags DEVICE_NEEDS_RESET (as QEMU does for a missing header) and
// stops taking new requests until the driver resets it; in-flight requests
// still complete. Queue corruption (pop/add_used errors) is handled the same
// way.
//
// Limits: a request beyond the advertised size_max or seg_max gets IOERR
// and a rate-limited warning. One pass over the queue takes at most
// kChainsPerPass chains; if more are waiting, the pass leaves notifications
// disabled, marks the queue and writes a private eventfd registered with the
// event loop, whose handler carries on with the marked queues, so a driver that keeps the ring full shares the
// event loop with everything else and none of its chains are stranded.
//
// Rate limiting (optional, Firecracker's RateLimiter): each request the
// device executes costs 1 op and its data bytes (IN/OUT; 0 for the others).
// The limiter is the device's, shared by its queues; a drive in a rate limit
// group (devices/rate_limit_group.h) also needs the group's tokens, all or
// nothing with its own, and waits for the later of the two. A request it refuses is
// kept, parsed, as the device's one held request; no queue is popped further
// (the holding queue's notifications stay off) until the limiter timer brings
// the device back, which executes it first and then drains every queue. Requests answered at once with an error status cost nothing.
//
// Threading: activate/reset run on a vCPU thread, queue_notify, the backend
// completion handler, the continuation and the limiter timer on the event
// loop, set_rate_limiter on the API's thread; one mutex serializes them (it
// also guards the limiter and its timer). The registrar must not hold its
// own lock while running handlers: the limiter timer is registered under
// ours.
#pragma once

#include <atomic>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "backends/block/block_backend.h"
#include "base/fd.h"
#include "base/log.h"
#include "devices/rate_limiter.h"
#include "devices/rate_limiter_timer.h"
#include "devices/virtio/blk/blk_wire.h"
#include "devices/virtio/blk/request.h"
#include "devices/virtio/virtio_device.h"

namespace rv::virtio {

struct BlkStats {
    uint64_t requests{0};  // chains popped
    // IN / OUT requests that completed with VIRTIO_BLK_S_OK, and their data
    // bytes (failed ones count in `errors` only). DISCARD and WRITE_ZEROES
    // are neither.
    uint64_t reads{0};
    uint64_t writes{0};
    uint64_t read_bytes{0};
    uint64_t write_bytes{0};
    uint64_t flushes{0};
    uint64_t submitted{0};      // requests handed to the backend
    uint64_t errors{0};         // completed with IOERR or UNSUPP
    uint64_t malformed{0};      // returned without a status (device needs reset)
    uint64_t notifications{0};  // queue_notify calls
    uint64_t interrupts{0};     // signal_used_queue calls
    uint64_t throttled{0};      // requests the rate limiter held back (each try counts)
    uint64_t throttled_us{0};   // time it held them, the hold in progress included
};

class VirtioBlk final : public VirtioDevice {
  public:
    static constexpr uint16_t kQueueSize = 256;
    static constexpr uint32_t kSizeMax = 1u << 20;
    static constexpr uint32_t kSegMax = kQueueSize - 2;       // minus header and status
    static constexpr uint32_t kMaxDiscardSectors = 1u << 22;  // 2 GiB per segment
    static constexpr uint32_t kMaxDiscardSeg = 16;
    static constexpr size_t kChainsPerPass = 256;  // one queue's worth
    static constexpr uint16_t kMaxQueues = 64;

    // `serial` is the GET_ID string (at most 20 bytes are used).
    // `num_queues`: 1..kMaxQueues (clamped). `rate_limiter`: none or
    // unlimited by default; `clock` is for tests (empty: CLOCK_MONOTONIC);
    // `group`: the rate limit group the drive draws from too (none: its own
    // limiter only).
    VirtioBlk(std::unique_ptr<BlockBackend> backend, std::string serial, uint16_t num_queues = 1,
              std::optional<RateLimiterConfig> rate_limiter = std::nullopt, NsClock clock = {},
              std::shared_ptr<RateLimitGroup> group = nullptr);
    ~VirtioBlk() override;

    std::string_view name() const override { return "virtio-blk"; }
    uint32_t device_type() const override { return kTypeBlock; }
    uint64_t device_features() const override;
    std::vector<uint16_t> queue_max_sizes() const override {
        return std::vector<uint16_t>(m_config.num_queues, kQueueSize);
    }
    void read_config(uint64_t offset, std::span<uint8_t> data) override;
    void write_config(uint64_t offset, std::span<const uint8_t> data) override;
    Result<void> activate(ActivateArgs args) override;
    void reset() override;
    void queue_notify(uint16_t index) override;
    bool needs_reset() const override { return m_needs_reset.load(); }
    // Waits for every request at the backend or behind a FLUSH and
    // completes it in its used ring; a request the limiter holds goes back
    // to its ring (blk_snapshot.cpp).
    Result<void> quiesce() override;
    std::vector<Queue::State> queue_states() const override;

    // Delivers finished backend requests to the guest. Registered with the
    // event loop on completion_fd; public so tests can drive it directly.
    void process_completions();

    // Replaces the rate limiter (nullopt: unlimited) while the device runs,
    // from any thread; a request it holds back is retried under the new
    // limits at once, from the event loop. Fails only if the limiter's timer
    // cannot be set up (the limits then stay as they were).
    Result<void> set_rate_limiter(std::optional<RateLimiterConfig> config);
    // A media change (PATCH /drives path_on_host): in-flight requests finish
    // on the old image, later ones go to `backend`; the capacity in config
    // space follows and the guest gets a config-change interrupt (Linux then
    // re-reads the size). `backend` must have the same read-only mode (open
    // it with backend_options()). On the event loop's thread.
    Result<void> replace_backend(std::unique_ptr<BlockBackend> backend);
    BlockOptions backend_options() const;
    // Opens the image again (BlockBackend::reopen); before activation or
    // with nothing in flight. A migration's destination, once the source
    // has stopped writing.
    Result<void> reopen_backend();
    // The limiter timer's fd, -1 while none is registered (tests fire it).
    int rate_limiter_timer_fd() const;

    BlkStats stats() const;
    DeviceCounters counters() const override;
    // No request in flight, held back by a barrier or by the rate limiter.
    bool idle() const;
    const blk::BlkConfig& config() const { return m_config; }

  private:
    struct QueueState {
        Queue queue;
        bool used_dirty{false};  // add_used since the last interrupt decision
        bool resume{false};      // a pass ran out of budget: the kick carries on
        size_t enqueued{0};      // its requests waiting for or at the backend
    };
    struct Active {
        const GuestMemory* memory;
        std::shared_ptr<Interrupt> interrupt;
        std::vector<QueueState> queues;  // the ones the driver enabled
        uint64_t features;
        EventRegistrar* events;
        EventFd kick;  // brings back a pass that ran out of budget
    };
    struct Slot {
        bool busy{false};
        uint16_t queue{0};
        uint16_t head{0};
        uint32_t type{0};
        uint32_t used_len{0};
        GuestAddress status_addr;
        uint32_t ops_left{0};
        uint64_t bytes{0};
        uint8_t status{blk::kSOk};
        // IN: the guest buffers read into, marked for dirty tracking once the
        // read completes (not at submission: a dirty pass in between would
        // copy the old bytes and take the mark).
        std::vector<iovec> read_into;
    };

    void drain_queue(uint16_t index);
    void drain_all();
    void on_kick();
    void handle_chain(uint16_t queue, const DescriptorChain& chain);
    void execute(blk::Request&& request);
    void on_limiter_timer();
    Result<void> attach_limiter_timer();
    void enqueue(blk::Request&& request);
    void submit(blk::Request&& request);
    void pump();
    void on_complete(uint64_t tag, int64_t result);
    void complete(uint16_t queue, uint16_t head, GuestAddress status_addr, uint8_t status,
                  uint32_t used_len);
    void signal_if_needed();
    void fail_device(std::string_view why);
    // Requests of a queue the device holds (waiting, at the backend, held by
    // the limiter): at most the queue's size from an honest driver.
    size_t outstanding(uint16_t queue) const {
        return m_active->queues[queue].enqueued + (m_held && m_held->queue == queue ? 1 : 0);
    }

    std::unique_ptr<BlockBackend> m_backend;
    std::string m_serial;
    blk::BlkConfig m_config{};
    blk::RequestLimits m_limits;

    mutable std::mutex m_mutex;
    std::optional<Active> m_active;
    std::vector<Slot> m_slots;  // indexed by backend tag
    std::vector<uint32_t> m_free_slots;
    std::deque<blk::Request> m_waiting;  // held back by a FLUSH barrier
    RateLimiter m_limiter;
    LimiterTimer m_limiter_timer;        // attached while active with a limiter in force
    std::optional<blk::Request> m_held;  // refused by the limiter, executed first
    size_t m_in_flight{0};
    bool m_flush_in_flight{false};
    std::atomic<bool> m_needs_reset{false};
    log::RateLimit m_over_limit_log;  // requests beyond size_max / seg_max

    struct Counters {
        std::atomic<uint64_t> requests, reads, writes, read_bytes, write_bytes, flushes, submitted,
            errors, malformed, notifications, interrupts, throttled;
    } m_stats{};
};

}  // namespace rv::virtio
