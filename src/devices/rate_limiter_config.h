// What a rate limiter is configured with: Firecracker's RateLimiter, two
// token buckets, one counting bytes (bandwidth) and one counting operations
// (ops). A bucket holds up to `size` tokens and refills completely over
// `refill_time_ms`; `one_time_burst` tokens are granted once on top, at start.
// Plain data, shared by the config front ends (CLI, --config-file, the API)
// and the devices (devices/rate_limiter.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace rv {

struct TokenBucketConfig {
    uint64_t size{0};
    uint64_t one_time_burst{0};
    uint64_t refill_time_ms{0};
    bool operator==(const TokenBucketConfig&) const = default;
};

// The bucket if it limits: both size and refill_time set (Firecracker
// ignores the others); nullopt otherwise.
inline std::optional<TokenBucketConfig> limiting(const std::optional<TokenBucketConfig>& bucket) {
    if (!bucket || bucket->size == 0 || bucket->refill_time_ms == 0) return std::nullopt;
    return bucket;
}

struct RateLimiterConfig {
    std::optional<TokenBucketConfig> bandwidth;  // bytes
    std::optional<TokenBucketConfig> ops;        // requests / packets
    // No bucket (or only empty ones): unlimited.
    bool unlimited() const { return !limiting(bandwidth) && !limiting(ops); }
    // The same limits without the buckets that do not limit.
    RateLimiterConfig limiting_only() const { return {limiting(bandwidth), limiting(ops)}; }
    bool operator==(const RateLimiterConfig&) const = default;
};

// A rate limit group (ringvisor's extension, Cloud Hypervisor's
// rate_limit_group): buckets shared by every drive that names the group, in
// this VM and in every other ringvisor process on the host that defines a
// group of the same id (devices/rate_limit_group.h). All members must give
// it the same limits.
struct RateLimitGroupConfig {
    std::string id;  // letters, digits and '_', at most 64 (it names a file)
    RateLimiterConfig limits;
    bool operator==(const RateLimitGroupConfig&) const = default;
};

}  // namespace rv
