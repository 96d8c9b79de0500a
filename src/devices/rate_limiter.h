// Firecracker's rate limiter: two token buckets, bandwidth (bytes) and ops
// (requests or packets). An operation of N bytes takes N bandwidth tokens
// and 1 ops token, from both buckets or from neither (all-or-nothing), so a
// refused operation has cost nothing and can simply be tried again.
//
// A bucket holds up to `size` tokens and starts full. It refills
// continuously at size / refill_time (full again refill_time after being
// empty); fractions of a token are carried, so the long-run rate is exact
// whatever the clock's granularity. `one_time_burst` tokens are an extra
// allowance at start, spent before the bucket and never refilled.
//
// An operation larger than the bucket (more than size + the burst left)
// could never find that many tokens. It goes through once the bucket is
// full, and leaves the bucket in debt by the excess: nothing else passes
// until refill has paid the debt back. So it waits at most refill_time,
// and the long-run rate still holds: a stream of oversize operations moves
// `size` tokens' worth per refill_time, never more.
//
// A bucket with size 0 or refill_time 0 (or absent) does not limit; a
// limiter without limiting buckets is unlimited, and then consume() is one
// predictable branch and never reads the clock.
//
// A limiter may also belong to a rate limit group (devices/rate_limit_group.h):
// buckets shared with other drives, of this VM or of other VMM processes.
// An operation then needs its tokens from the limiter's own buckets and from
// the group's, all or nothing: a refusal by either takes nothing from
// either, and the wait is the longer of the two.
//
// Time comes from an injected clock (nanoseconds, monotonic); the default
// is CLOCK_MONOTONIC, the clock LimiterTimer's timerfd counts in (and the
// one every process sharing a group reads). Not synchronised: the owning
// device calls it under its own lock (each device names that lock where it
// declares its limiter); a group has its own, taken inside the device's.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "devices/rate_limiter_config.h"

namespace rv {

class RateLimitGroup;

// Nanoseconds on a monotonic clock.
using NsClock = std::function<uint64_t()>;
uint64_t monotonic_ns();

class TokenBucket {
  public:
    // A bucket that does not limit.
    TokenBucket() = default;
    // Full, with the whole one_time_burst; unlimited if size or
    // refill_time_ms is 0.
    TokenBucket(const TokenBucketConfig& config, uint64_t now_ns);

    bool unlimited() const { return m_size == 0; }
    // Adds what has trickled in since the last refill (never past size).
    void refill(uint64_t now_ns);
    // After refill(): whether `tokens` can be taken now (see the top of the
    // file for operations larger than the bucket).
    bool can_take(uint64_t tokens) const;
    // Takes them; only after can_take() said yes. May leave a debt.
    void take(uint64_t tokens);
    // After refill(): how long until can_take(tokens), 0 if it already can.
    uint64_t ns_until(uint64_t tokens) const;
    // Gives tokens back (never past size; a spent burst stays spent).
    void refund(uint64_t tokens);
    // Whether this state can have come from `config` (a bucket that lives in
    // memory other processes share is checked before it is trusted: a
    // corrupt one must not divide by zero).
    bool consistent_with(const TokenBucketConfig& config) const;

    // State, for tests and --stats: tokens in the bucket (negative while in
    // debt) and burst left.
    int64_t budget() const { return m_budget; }
    uint64_t burst() const { return m_burst; }

  private:
    uint64_t m_size{0};
    uint64_t m_refill_ns{0};
    int64_t m_budget{0};
    uint64_t m_burst{0};
    uint64_t m_last_ns{0};
    // Refill progress short of a whole token, in units of 1 / m_refill_ns
    // token (the remainder of elapsed_ns * size / refill_ns).
    uint64_t m_carry{0};
};

class RateLimiter {
  public:
    // nullopt (or a config without limiting buckets) and no group: unlimited.
    explicit RateLimiter(const std::optional<RateLimiterConfig>& config = std::nullopt,
                         NsClock clock = {}, std::shared_ptr<RateLimitGroup> group = nullptr);

    bool unlimited() const { return m_unlimited; }
    // Takes `bytes` bandwidth tokens and `ops` ops tokens from the limiter
    // and its group, or nothing: true if the operation may go now. A refusal
    // (by either) counts as a throttled event.
    bool consume(uint64_t bytes, uint64_t ops) {
        if (m_unlimited) [[likely]]
            return true;
        return consume_limited(bytes, ops);
    }
    // How long until consume(bytes, ops) would succeed: what to arm a timer
    // with. 0 when it would succeed now, and always when unlimited.
    uint64_t ns_until_available(uint64_t bytes, uint64_t ops);
    // Returns what a consume() took for an operation that then did not
    // happen after all (e.g. the backend was full and it will be retried),
    // so the retry is not charged twice. Firecracker's manual_replenish.
    void refund(uint64_t bytes, uint64_t ops) {
        if (m_unlimited) [[likely]]
            return;
        refund_limited(bytes, ops);
    }

    // A runtime change (PATCH from the API) of the limiter's own buckets,
    // effective at once; the group stays. A bucket whose configuration
    // changed starts afresh (full, with its new one_time_burst), as
    // Firecracker's update does; an unchanged one keeps its state, so
    // re-sending the same limits hands out no free refill.
    // Work the device holds back must be retried by the device (it re-arms
    // its timer; see LimiterTimer).
    void reconfigure(const std::optional<RateLimiterConfig>& config);
    // The limiter's own limits in force (buckets that do not limit left
    // out); nullopt when it has none (its group is not part of it).
    std::optional<RateLimiterConfig> config() const;
    const std::shared_ptr<RateLimitGroup>& group() const { return m_group; }

    // Refused consume() calls since creation (kept across reconfigure).
    uint64_t throttled() const { return m_throttled; }
    const TokenBucket& bandwidth() const { return m_bandwidth; }
    const TokenBucket& ops() const { return m_ops; }

    // The limiter's clock: the one it was given, else CLOCK_MONOTONIC.
    uint64_t now() const { return m_clock ? m_clock() : monotonic_ns(); }

  private:
    bool consume_limited(uint64_t bytes, uint64_t ops);
    void refund_limited(uint64_t bytes, uint64_t ops);

    NsClock m_clock;
    std::shared_ptr<RateLimitGroup> m_group;  // none: the limiter's own buckets only
    std::optional<TokenBucketConfig> m_bandwidth_config;  // only limiting buckets
    std::optional<TokenBucketConfig> m_ops_config;
    TokenBucket m_bandwidth;
    TokenBucket m_ops;
    bool m_unlimited{true};
    uint64_t m_throttled{0};
};

}  // namespace rv
