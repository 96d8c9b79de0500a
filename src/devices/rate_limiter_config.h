// What a rate limiter is configured with: Firecracker's RateLimiter, two
// token buckets, one counting bytes (bandwidth) and one counting operations
// (ops). A bucket holds up to `size` tokens and refills completely over
// `refill_time_ms`; `one_time_burst` tokens are granted once on top, at start.
// Plain data, shared by the config front ends (CLI, --config-file, the API)
// and the devices (devices/rate_limiter.h).
#pragma once

#include <cstdint>
#include <optional>

namespace rv {

struct TokenBucketConfig {
    uint64_t size{0};
    uint64_t one_time_burst{0};
    uint64_t refill_time_ms{0};
    bool operator==(const TokenBucketConfig&) const = default;
};

struct RateLimiterConfig {
    std::optional<TokenBucketConfig> bandwidth;  // bytes
    std::optional<TokenBucketConfig> ops;        // requests / packets
    // No bucket (or only empty ones): unlimited.
    bool unlimited() const {
        auto off = [](const std::optional<TokenBucketConfig>& b) {
            return !b || b->size == 0 || b->refill_time_ms == 0;
        };
        return off(bandwidth) && off(ops);
    }
    bool operator==(const RateLimiterConfig&) const = default;
};

}  // namespace rv
