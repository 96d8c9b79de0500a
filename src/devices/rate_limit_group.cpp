#include "devices/rate_limit_group.h"

#include <pthread.h>
#include <sys/mman.h>
#include <time.h>

#include <atomic>
#include <cstring>
#include <new>

#include "devices/rate_limiter.h"

namespace rv {

// The layout every member maps. Plain fields only (the buckets are
// trivially copyable), so the same build reads it the same way in every
// process; `version` and `size` tell another layout apart.
struct RateLimitGroup::State {
    std::atomic<uint64_t> magic;  // kMagic once the creator has finished
    uint32_t version;
    uint32_t size;  // sizeof(State)
    pthread_mutex_t mutex;  // process-shared, robust; guards everything below
    TokenBucketConfig bandwidth_config;  // all 0: the bucket does not limit
    TokenBucketConfig ops_config;
    TokenBucket bandwidth;
    TokenBucket ops;
    uint64_t recoveries;  // lockers that found the holder dead
};

namespace {

constexpr uint64_t kMagic = 0x2170756f72676c72;  // "rlgroup!" read little-endian
constexpr uint32_t kVersion = 1;

static_assert(std::atomic<uint64_t>::is_always_lock_free, "the magic is read by other processes");
static_assert(std::is_trivially_copyable_v<TokenBucket> &&
              std::is_trivially_copyable_v<TokenBucketConfig>);

std::optional<TokenBucketConfig> from_state(const TokenBucketConfig& bucket) {
    return limiting(bucket);
}

std::string describe_bucket(const std::optional<TokenBucketConfig>& bucket) {
    if (!bucket) return "none";
    return fmt::format("{{size {}, one_time_burst {}, refill_time {} ms}}", bucket->size,
                       bucket->one_time_burst, bucket->refill_time_ms);
}

bool fits(std::span<const std::byte> memory, size_t size) {
    return memory.size() >= size &&
           reinterpret_cast<uintptr_t>(memory.data()) % alignof(RateLimitGroup::State) == 0;
}

}  // namespace

std::string describe_limits(const RateLimiterConfig& limits) {
    return fmt::format("bandwidth {}, ops {}", describe_bucket(limits.bandwidth),
                       describe_bucket(limits.ops));
}

size_t RateLimitGroup::state_size() { return sizeof(State); }

Result<void> RateLimitGroup::initialize(std::span<std::byte> memory, const RateLimiterConfig& limits,
                                        uint64_t now_ns) {
    if (!fits(memory, sizeof(State)))
        return make_error("rate limit group: {} bytes at {}: too small or misaligned",
                          memory.size(), static_cast<const void*>(memory.data()));
    const RateLimiterConfig wanted = limits.limiting_only();
    if (wanted.unlimited())
        return input_error("rate limit group: no bucket limits (give bandwidth or ops a size "
                           "and a refill_time)");
    std::memset(memory.data(), 0, sizeof(State));
    auto* state = new (memory.data()) State{};
    state->version = kVersion;
    state->size = sizeof(State);
    pthread_mutexattr_t attr;
    ::pthread_mutexattr_init(&attr);
    ::pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    ::pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    const int made = ::pthread_mutex_init(&state->mutex, &attr);
    ::pthread_mutexattr_destroy(&attr);
    if (made != 0) return errno_error("rate limit group: pthread_mutex_init", made);
    state->bandwidth_config = wanted.bandwidth.value_or(TokenBucketConfig{});
    state->ops_config = wanted.ops.value_or(TokenBucketConfig{});
    state->bandwidth = TokenBucket(state->bandwidth_config, now_ns);
    state->ops = TokenBucket(state->ops_config, now_ns);
    // Last: whoever sees the magic sees everything above.
    state->magic.store(kMagic, std::memory_order_release);
    return {};
}

bool RateLimitGroup::initialized(std::span<const std::byte> memory) {
    if (!fits(memory, sizeof(uint64_t))) return false;
    // SAFETY: 8 aligned bytes; an atomic<uint64_t> is a plain 64-bit word.
    const auto* magic = reinterpret_cast<const std::atomic<uint64_t>*>(memory.data());
    return magic->load(std::memory_order_acquire) != 0;
}

RateLimitGroup::RateLimitGroup(State* state, RateLimitGroupConfig config,
                               std::shared_ptr<void> backing)
    : m_state(state),
      m_id(std::move(config.id)),
      m_limits(config.limits.limiting_only()),
      m_backing(std::move(backing)) {}

Result<std::shared_ptr<RateLimitGroup>> RateLimitGroup::open(std::span<std::byte> memory,
                                                             const RateLimitGroupConfig& config,
                                                             std::string where,
                                                             std::shared_ptr<void> backing) {
    if (!fits(memory, sizeof(State)))
        return make_error("{}: {} bytes, not a ringvisor rate limit group ({} bytes); remove it "
                          "once no VM uses it",
                          where, memory.size(), sizeof(State));
    // SAFETY: sized and aligned above; every field is checked before use.
    auto* state = reinterpret_cast<State*>(memory.data());
    const uint64_t magic = state->magic.load(std::memory_order_acquire);
    if (magic != kMagic)
        return make_error("{}: not a ringvisor rate limit group (magic {:#x}); remove it once no "
                          "VM uses it",
                          where, magic);
    if (state->version != kVersion || state->size != sizeof(State))
        return make_error("{}: a rate limit group of another ringvisor version (layout {}, {} "
                          "bytes; this one reads layout {}, {} bytes)",
                          where, state->version, state->size, kVersion, sizeof(State));
    const TokenBucketConfig bandwidth = state->bandwidth_config, ops = state->ops_config;
    const RateLimiterConfig theirs{from_state(bandwidth), from_state(ops)};
    auto damaged = [&] {
        return make_error("{}: the rate limit group's state is damaged; remove the file once no VM "
                          "uses it",
                          where);
    };
    // A stored bucket that does not limit is all zeros, as initialize() writes it.
    if (theirs.unlimited() || (!theirs.bandwidth && bandwidth != TokenBucketConfig{}) ||
        (!theirs.ops && ops != TokenBucketConfig{}))
        return damaged();
    const RateLimiterConfig mine = config.limits.limiting_only();
    if (mine != theirs)
        return input_error(
            "rate limit group '{}': this VM defines it as {}, but {} holds it as {} (every VM in a "
            "group must give it the same limits)",
            config.id, describe_limits(mine), where, describe_limits(theirs));
    std::shared_ptr<RateLimitGroup> group(new RateLimitGroup(state, config, std::move(backing)));
    {
        Hold hold = group->hold();
        if (!hold) return make_error("{}: cannot lock the rate limit group", where);
        if (!state->bandwidth.consistent_with(bandwidth) || !state->ops.consistent_with(ops))
            return damaged();
    }
    return group;
}

Result<std::shared_ptr<RateLimitGroup>> RateLimitGroup::anonymous(const RateLimitGroupConfig& config,
                                                                  uint64_t now_ns) {
    const size_t size = sizeof(State);
    void* at = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (at == MAP_FAILED) return errno_error("rate limit group: mmap");
    std::shared_ptr<void> backing(at, [size](void* p) { ::munmap(p, size); });
    std::span<std::byte> memory(static_cast<std::byte*>(at), size);
    RV_TRY_VOID(initialize(memory, config.limits, now_ns));
    return open(memory, config, fmt::format("rate limit group '{}' (anonymous memory)", config.id),
                std::move(backing));
}

// ---- the lock ------------------------------------------------------------------

RateLimitGroup::Hold RateLimitGroup::hold() {
    timespec deadline{};
    ::clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_nsec += static_cast<long>(kLockWaitNs);
    if (deadline.tv_nsec >= 1'000'000'000) {
        deadline.tv_sec += 1;
        deadline.tv_nsec -= 1'000'000'000;
    }
    int locked = ::pthread_mutex_clocklock(&m_state->mutex, CLOCK_MONOTONIC, &deadline);
    if (locked == EOWNERDEAD) {
        // The holder died between two stores: each bucket field is whole,
        // so the state is usable as it is.
        ::pthread_mutex_consistent(&m_state->mutex);
        ++m_state->recoveries;
        log::warn("rate limit group '{}': a member died holding its lock; carrying on", m_id);
        locked = 0;
    }
    if (locked != 0)
        log::warn_limited(m_lock_log, "rate limit group '{}': cannot take its lock: {}", m_id,
                          locked == ETIMEDOUT ? "held too long by another member"
                                              : std::strerror(locked));
    return Hold(this, locked);
}

RateLimitGroup::Hold::~Hold() {
    if (m_group && m_error == 0) ::pthread_mutex_unlock(&m_group->m_state->mutex);
}

// ---- the buckets ---------------------------------------------------------------

bool RateLimitGroup::try_take(uint64_t bytes, uint64_t ops, uint64_t now_ns) {
    Hold hold = this->hold();
    // Busy: refused, retried after ns_until's kLockRetryNs. Broken (a lock
    // that can never be had again): not limiting beats stalling the disks.
    if (!hold) return hold.error() != ETIMEDOUT;
    State& s = *m_state;
    s.bandwidth.refill(now_ns);
    s.ops.refill(now_ns);
    if (!s.bandwidth.can_take(bytes) || !s.ops.can_take(ops)) return false;
    s.bandwidth.take(bytes);
    s.ops.take(ops);
    return true;
}

uint64_t RateLimitGroup::ns_until(uint64_t bytes, uint64_t ops, uint64_t now_ns) {
    Hold hold = this->hold();
    if (!hold) return hold.error() == ETIMEDOUT ? kLockRetryNs : 0;
    State& s = *m_state;
    s.bandwidth.refill(now_ns);
    s.ops.refill(now_ns);
    return std::max(s.bandwidth.ns_until(bytes), s.ops.ns_until(ops));
}

void RateLimitGroup::refund(uint64_t bytes, uint64_t ops, uint64_t now_ns) {
    Hold hold = this->hold();
    if (!hold) return;
    m_state->bandwidth.refill(now_ns);
    m_state->ops.refill(now_ns);
    m_state->bandwidth.refund(bytes);
    m_state->ops.refund(ops);
}

RateLimitGroup::Status RateLimitGroup::status() {
    Hold hold = this->hold();
    if (!hold) return {};
    return Status{m_state->bandwidth.budget(), m_state->ops.budget(), m_state->recoveries};
}

}  // namespace rv
