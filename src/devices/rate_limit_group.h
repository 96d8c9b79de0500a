// A rate limit group: a bandwidth and an ops token bucket (the same
// TokenBucket and TokenBucketConfig as a drive's own limiter) shared by every
// drive that names the group, whether in this VMM process or in others on the
// same host (issue 14: fair and limited I/O between VMs; Cloud Hypervisor's
// rate_limit_group). A drive's RateLimiter asks its own buckets and then the
// group's, all or nothing (devices/rate_limiter.h).
//
// The state lives in memory every member maps MAP_SHARED: a file under the
// run directory for groups between processes (devices/rate_limit_group_file.h),
// or an anonymous shared mapping (tests, and children forked after it). In it:
// a magic number (written last by the creator, so a state whose creator died
// half-way is recognisably incomplete), a layout version and size, the limits
// every member must agree on, the two buckets, and a process-shared robust
// pthread mutex guarding them. A member that dies holding the mutex leaves
// the buckets as they were between two 8-byte stores; the next one to lock it
// gets EOWNERDEAD, marks it consistent, counts a recovery and carries on.
//
// Time: every member passes its CLOCK_MONOTONIC reading (the same clock in
// every process of a host); a bucket takes no refill from a reading older
// than the last one it saw, so members reading the clock in a different
// order than they lock do no harm.
//
// Nobody waits for the mutex long: a member that cannot have it within
// kLockWait (another stopped while holding it: SIGSTOP, a debugger) treats
// the operation as refused, to be retried after kLockRetry, and logs it.
//
// Thread-safe: a group may serve several devices on different threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>

#include "base/error.h"
#include "base/log.h"
#include "devices/rate_limiter_config.h"

namespace rv {

class RateLimitGroup {
  public:
    static constexpr uint64_t kLockWaitNs = 2'000'000;   // 2 ms
    static constexpr uint64_t kLockRetryNs = 1'000'000;  // 1 ms

    // The bytes a group's state takes (a group file's size).
    static size_t state_size();
    // Lays out a fresh group in `memory` (state_size() bytes, 8-byte
    // aligned): full buckets with their one_time_burst, the mutex, and last
    // the magic. Only while no other member can use the memory (a file's
    // creator holds its lock). `limits` needs a bucket that limits.
    static Result<void> initialize(std::span<std::byte> memory, const RateLimiterConfig& limits,
                                   uint64_t now_ns);
    // Whether `memory` holds a state whose creator finished (its magic), of
    // whatever version: what open() then checks.
    static bool initialized(std::span<const std::byte> memory);
    // The group in `memory` for a member that defines it as `config`.
    // Memory that holds no group, another layout version or an impossible
    // state is an error naming `where` (the file); limits other than the
    // ones in memory are an input error naming both. `backing` is kept for
    // the group's life (what keeps `memory` mapped, and its file open).
    static Result<std::shared_ptr<RateLimitGroup>> open(std::span<std::byte> memory,
                                                        const RateLimitGroupConfig& config,
                                                        std::string where,
                                                        std::shared_ptr<void> backing);
    // A group in a fresh anonymous MAP_SHARED mapping: shared with the
    // children this process forks afterwards, and with nobody else.
    static Result<std::shared_ptr<RateLimitGroup>> anonymous(const RateLimitGroupConfig& config,
                                                             uint64_t now_ns);

    RateLimitGroup(const RateLimitGroup&) = delete;
    RateLimitGroup& operator=(const RateLimitGroup&) = delete;

    const std::string& id() const { return m_id; }
    const RateLimiterConfig& limits() const { return m_limits; }

    // Takes `bytes` bandwidth and `ops` ops tokens from both buckets, or
    // nothing (see TokenBucket for operations larger than a bucket).
    bool try_take(uint64_t bytes, uint64_t ops, uint64_t now_ns);
    // How long until try_take(bytes, ops) could succeed, if no other member
    // takes tokens meanwhile; 0 if it could now.
    uint64_t ns_until(uint64_t bytes, uint64_t ops, uint64_t now_ns);
    // Gives back what try_take took for an operation that did not happen.
    void refund(uint64_t bytes, uint64_t ops, uint64_t now_ns);

    // The buckets' budgets (negative in debt), and how many times a member
    // found the mutex held by one that had died.
    struct Status {
        int64_t bandwidth_budget{0};
        int64_t ops_budget{0};
        uint64_t recoveries{0};
    };
    Status status();

    // The group's mutex, held while this lives (false if it could not be
    // had: see kLockWaitNs). try_take and the others take it themselves;
    // tests hold it to play a member that dies holding it.
    class Hold {
      public:
        Hold(Hold&& other) noexcept
            : m_group(std::exchange(other.m_group, nullptr)), m_error(other.m_error) {}
        Hold& operator=(Hold&&) = delete;
        ~Hold();
        explicit operator bool() const { return m_error == 0; }
        // Why the lock could not be had: ETIMEDOUT (held too long by
        // another member), or what pthread said (ENOTRECOVERABLE ...).
        int error() const { return m_error; }

      private:
        friend class RateLimitGroup;
        Hold(RateLimitGroup* group, int error) : m_group(group), m_error(error) {}
        RateLimitGroup* m_group;
        int m_error;
    };
    [[nodiscard]] Hold hold();

    struct State;  // the shared layout (rate_limit_group.cpp)

  private:
    RateLimitGroup(State* state, RateLimitGroupConfig config, std::shared_ptr<void> backing);

    State* m_state;
    std::string m_id;
    RateLimiterConfig m_limits;
    std::shared_ptr<void> m_backing;
    log::RateLimit m_lock_log;  // lock waits that timed out, or failed
};

// "bandwidth {size 1048576, one_time_burst 0, refill_time 100 ms}, ops none":
// limits as error messages name them.
std::string describe_limits(const RateLimiterConfig& limits);

}  // namespace rv
