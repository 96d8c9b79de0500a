#include "devices/rate_limiter.h"

#include <time.h>

#include "devices/rate_limit_group.h"

#include <algorithm>
#include <limits>

namespace rv {
namespace {

// Token and time arithmetic is done in 128 bits: size * elapsed_ns easily
// passes 2^64 (a 1 GiB bucket after 20 s), and the configured values are
// whatever the API was given.
using Wide = __int128;

constexpr uint64_t kNsPerMs = 1'000'000;
// Sizes, debts and refill times are capped at 2^62 (tokens; ns: 146 years),
// so every product below fits in 128 bits. No device gets near the caps.
constexpr uint64_t kMaxValue = uint64_t{1} << 62;

uint64_t saturate(Wide value) {
    if (value <= 0) return 0;
    if (value > Wide(std::numeric_limits<uint64_t>::max()))
        return std::numeric_limits<uint64_t>::max();
    return static_cast<uint64_t>(value);
}

}  // namespace

uint64_t monotonic_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
}

// ---- TokenBucket -------------------------------------------------------------

TokenBucket::TokenBucket(const TokenBucketConfig& config, uint64_t now_ns) {
    if (config.size == 0 || config.refill_time_ms == 0) return;  // unlimited
    m_size = std::min(config.size, kMaxValue);
    m_refill_ns = std::min(saturate(Wide(config.refill_time_ms) * kNsPerMs), kMaxValue);
    m_budget = static_cast<int64_t>(m_size);
    m_burst = config.one_time_burst;
    m_last_ns = now_ns;
}

void TokenBucket::refill(uint64_t now_ns) {
    if (unlimited()) return;
    // A clock that stepped back (or one shared by several buckets read out
    // of order) adds nothing; time is measured from the later point.
    if (now_ns <= m_last_ns) return;
    const uint64_t elapsed = now_ns - m_last_ns;
    m_last_ns = now_ns;
    if (m_budget >= static_cast<int64_t>(m_size)) {
        m_carry = 0;  // a full bucket overflows; nothing to carry
        return;
    }
    const Wide total = Wide(elapsed) * m_size + m_carry;
    const Wide added = total / m_refill_ns;
    m_carry = static_cast<uint64_t>(total % m_refill_ns);
    const Wide budget = std::min<Wide>(Wide(m_budget) + added, Wide(m_size));
    m_budget = static_cast<int64_t>(budget);
    if (m_budget == static_cast<int64_t>(m_size)) m_carry = 0;
}

bool TokenBucket::can_take(uint64_t tokens) const {
    if (unlimited()) return true;
    if (Wide(m_burst) + m_budget >= Wide(tokens)) return true;
    // More than the bucket can ever hold: admitted by a full bucket.
    return Wide(tokens) - m_burst > Wide(m_size) && m_budget >= static_cast<int64_t>(m_size);
}

void TokenBucket::take(uint64_t tokens) {
    if (unlimited()) return;
    const uint64_t from_burst = std::min(m_burst, tokens);
    m_burst -= from_burst;
    const Wide budget = Wide(m_budget) - (tokens - from_burst);
    m_budget = static_cast<int64_t>(std::max<Wide>(budget, -Wide(kMaxValue)));
}

uint64_t TokenBucket::ns_until(uint64_t tokens) const {
    if (can_take(tokens)) return 0;
    // What the budget has to reach: the tokens beyond the burst, or a full
    // bucket for an operation larger than it.
    const Wide target = std::min<Wide>(Wide(tokens) - m_burst, Wide(m_size));
    const Wide missing = target - m_budget;  // > 0, or can_take() would have said yes
    // Smallest t with t * size + carry >= missing * refill_ns (see refill()).
    const Wide numerator = missing * m_refill_ns - m_carry;
    return saturate((numerator + m_size - 1) / m_size);
}

void TokenBucket::refund(uint64_t tokens) {
    if (unlimited()) return;
    m_budget = static_cast<int64_t>(std::min<Wide>(Wide(m_budget) + tokens, Wide(m_size)));
}

bool TokenBucket::consistent_with(const TokenBucketConfig& config) const {
    const TokenBucket fresh(config, 0);
    if (fresh.unlimited()) return unlimited() && m_budget == 0 && m_burst == 0 && m_carry == 0;
    return m_size == fresh.m_size && m_refill_ns == fresh.m_refill_ns &&
           m_budget <= static_cast<int64_t>(m_size) && m_budget >= -static_cast<int64_t>(kMaxValue) &&
           m_burst <= config.one_time_burst && m_carry < m_refill_ns;
}

// ---- RateLimiter -------------------------------------------------------------

RateLimiter::RateLimiter(const std::optional<RateLimiterConfig>& config, NsClock clock,
                         std::shared_ptr<RateLimitGroup> group)
    : m_clock(std::move(clock)), m_group(std::move(group)) {
    reconfigure(config);
}

bool RateLimiter::consume_limited(uint64_t bytes, uint64_t ops) {
    const uint64_t t = now();
    m_bandwidth.refill(t);
    m_ops.refill(t);
    // Our own buckets are asked first, then the group's, which takes its
    // share only if it can give all of it; ours are charged only after it
    // did. So a refusal by either leaves both as they were.
    if (!m_bandwidth.can_take(bytes) || !m_ops.can_take(ops) ||
        (m_group && !m_group->try_take(bytes, ops, t))) {
        ++m_throttled;
        return false;
    }
    m_bandwidth.take(bytes);
    m_ops.take(ops);
    return true;
}

void RateLimiter::refund_limited(uint64_t bytes, uint64_t ops) {
    m_bandwidth.refund(bytes);
    m_ops.refund(ops);
    if (m_group) m_group->refund(bytes, ops, now());
}

uint64_t RateLimiter::ns_until_available(uint64_t bytes, uint64_t ops) {
    if (m_unlimited) return 0;
    const uint64_t t = now();
    m_bandwidth.refill(t);
    m_ops.refill(t);
    // Each bucket only gains tokens while we wait, so all are ready at the
    // latest of the moments. (Other members may take the group's tokens
    // first: the retry then waits again.)
    const uint64_t own = std::max(m_bandwidth.ns_until(bytes), m_ops.ns_until(ops));
    return m_group ? std::max(own, m_group->ns_until(bytes, ops, t)) : own;
}

void RateLimiter::reconfigure(const std::optional<RateLimiterConfig>& config) {
    std::optional<TokenBucketConfig> bandwidth, ops;
    if (config) {
        bandwidth = limiting(config->bandwidth);
        ops = limiting(config->ops);
    }
    const bool changed_bandwidth = bandwidth != m_bandwidth_config;
    const bool changed_ops = ops != m_ops_config;
    if (changed_bandwidth || changed_ops) {
        const uint64_t t = (bandwidth || ops) ? now() : 0;
        if (changed_bandwidth) m_bandwidth = bandwidth ? TokenBucket(*bandwidth, t) : TokenBucket();
        if (changed_ops) m_ops = ops ? TokenBucket(*ops, t) : TokenBucket();
    }
    m_bandwidth_config = bandwidth;
    m_ops_config = ops;
    m_unlimited = !bandwidth && !ops && !m_group;
}

std::optional<RateLimiterConfig> RateLimiter::config() const {
    if (!m_bandwidth_config && !m_ops_config) return std::nullopt;
    return RateLimiterConfig{.bandwidth = m_bandwidth_config, .ops = m_ops_config};
}

}  // namespace rv
