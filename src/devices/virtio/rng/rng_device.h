// virtio-rng / entropy device (virtio 1.2, 5.4): one requestq; each chain's
// device-writable buffers are filled with bytes from the host kernel's CSPRNG
// (getrandom(2)) and returned with the byte count as used length. Linux
// exposes it as /dev/hwrng and feeds its own pool from it.
//
// Limits keep the event loop fair: at most kMaxBytesPerRequest per chain
// (the used length tells the driver how many it got) and about
// kMaxBytesPerNotify per pass; leftover chains are picked up on a later pass
// scheduled through a private eventfd, so none are stranded.
//
// Rate limiting (optional, Firecracker's entropy rate_limiter): a request
// costs the bytes it asks for (capped as above) and 1 op, charged before it
// is filled. A request the limiter refuses goes back to the ring and the
// queue waits for the limiter timer; notifications meanwhile do nothing.
//
// Threads: activate/reset on a vCPU thread, queue_notify, the kick and the
// limiter timer on the event loop, set_rate_limiter on the API's thread; one
// mutex guards the state, the limiter and its timer (registered under it:
// the registrar must not hold its own lock while running handlers).
//
// Guest errors: a malformed ring sets needs_reset() and raises a
// config-change interrupt; a chain without writable bytes is returned with
// used length 0. Each kind is logged once per device.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "base/fd.h"
#include "devices/rate_limiter.h"
#include "devices/rate_limiter_timer.h"
#include "devices/virtio/virtio_device.h"

namespace rv::virtio {

class VirtioRng final : public VirtioDevice {
  public:
    static constexpr uint16_t kQueueSize = 256;
    static constexpr uint32_t kMaxBytesPerRequest = 64 * 1024;
    static constexpr size_t kMaxBytesPerNotify = 64 * 1024;

    // Fills up to out.size() bytes, returns how many; fewer (even 0) means
    // "no entropy right now". Injected for tests; the default is getrandom.
    using EntropySource = std::function<Result<size_t>(std::span<uint8_t>)>;

    struct Stats {
        uint64_t requests{0};
        uint64_t bytes{0};
        uint64_t empty_requests{0};  // chains without writable buffers
        uint64_t source_errors{0};
        uint64_t queue_errors{0};
        uint64_t throttled{0};  // requests the rate limiter held back (each try counts)
        uint64_t throttled_us{0};  // time it held them, the hold in progress included
    };

    // `rate_limiter`: none or unlimited by default; `clock` is for tests
    // (empty: CLOCK_MONOTONIC).
    explicit VirtioRng(EntropySource source = {},
                       std::optional<RateLimiterConfig> rate_limiter = std::nullopt,
                       NsClock clock = {});
    ~VirtioRng() override;

    // getrandom(2) without blocking the event loop: loops over short reads
    // and EINTR; returns what it has when the pool is not initialised yet.
    static Result<size_t> host_entropy(std::span<uint8_t> out);

    std::string_view name() const override { return "virtio-rng"; }
    uint32_t device_type() const override { return kTypeRng; }
    uint64_t device_features() const override {
        return kFVersion1 | kFRingEventIdx | kFRingIndirectDesc;
    }
    std::vector<uint16_t> queue_max_sizes() const override { return {kQueueSize}; }
    // No device-specific configuration.
    void read_config(uint64_t offset, std::span<uint8_t> data) override;
    void write_config(uint64_t offset, std::span<const uint8_t> data) override;
    Result<void> activate(ActivateArgs args) override;
    void reset() override;
    void queue_notify(uint16_t index) override;
    // A request the limiter holds is already back in the ring (undo_pop).
    std::vector<Queue::State> queue_states() const override;
    bool needs_reset() const override;
    DeviceCounters counters() const override;

    // Replaces the rate limiter (nullopt: unlimited) while the device runs,
    // from any thread; a request it holds back is retried under the new
    // limits at once, from the event loop. Fails only if the limiter's timer
    // cannot be set up (the limits then stay as they were).
    Result<void> set_rate_limiter(std::optional<RateLimiterConfig> config);
    // The limiter timer's fd, -1 while none is registered (tests fire it).
    int rate_limiter_timer_fd() const;

    Stats stats() const;

  private:
    struct Active {
        const GuestMemory* memory;
        std::shared_ptr<Interrupt> interrupt;
        std::vector<Queue> queues;
        EventRegistrar* events;
        EventFd kick;  // reschedules work left over by a budgeted pass
    };
    struct Effects {
        bool signal{false};
        bool config_change{false};
    };
    enum Warning : uint32_t {
        kWarnNoSpace = 1,
        kWarnSource = 2,
        kWarnQueue = 4,
        kWarnBadQueue = 8
    };

    void on_kick();
    void on_limiter_timer();
    Result<void> attach_limiter_timer_locked();
    void process_locked(Effects& fx);
    Result<uint32_t> fill_chain_locked(const DescriptorChain& chain);
    void fail_locked(Effects& fx, const Error& error);
    void warn_once_locked(Warning kind, std::string_view text);
    void finish(std::unique_lock<std::mutex>& lock, const Effects& fx);

    mutable std::mutex m_mutex;
    EntropySource m_source;
    std::optional<Active> m_active;
    std::vector<uint8_t> m_scratch;  // one request's bytes on their way to the guest
    bool m_needs_reset{false};
    RateLimiter m_limiter;
    LimiterTimer m_limiter_timer;  // attached while active with a limiter in force
    bool m_throttled{false};       // a request waits for the limiter timer
    uint32_t m_warned{0};
    Stats m_stats;
};

}  // namespace rv::virtio
