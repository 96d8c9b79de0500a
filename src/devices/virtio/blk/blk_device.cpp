#include "devices/virtio/blk/blk_device.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <algorithm>
#include <utility>
#include <cstring>

#include "base/log.h"

namespace rv::virtio {

using namespace blk;

namespace {
// One submission for everything a pass over the queues (or over the
// completions, which release requests a flush held back) hands the backend.
class Plugged {
  public:
    explicit Plugged(BlockBackend& backend) : m_backend(backend) { m_backend.plug(); }
    ~Plugged() { m_backend.unplug(); }
    Plugged(const Plugged&) = delete;
    Plugged& operator=(const Plugged&) = delete;

  private:
    BlockBackend& m_backend;
};
}  // namespace

VirtioBlk::VirtioBlk(std::unique_ptr<BlockBackend> backend, std::string serial,
                     uint16_t num_queues, std::optional<RateLimiterConfig> rate_limiter,
                     NsClock clock, std::shared_ptr<RateLimitGroup> group)
    : m_backend(std::move(backend)),
      m_serial(std::move(serial)),
      m_limiter(rate_limiter, std::move(clock), std::move(group)) {
    m_config.capacity = m_backend->sectors();
    m_config.size_max = kSizeMax;
    m_config.seg_max = kSegMax;
    // With O_DIRECT on a 4K-sector host disk the guest must not issue
    // smaller I/O: advertise the host's alignment as the logical block size.
    m_config.blk_size =
        static_cast<uint32_t>(std::max<uint64_t>(kSectorSize, m_backend->alignment()));
    m_config.num_queues = std::clamp<uint16_t>(num_queues, 1, kMaxQueues);
    m_config.max_discard_sectors = kMaxDiscardSectors;
    m_config.max_discard_seg = kMaxDiscardSeg;
    m_config.discard_sector_alignment = 4096 / kSectorSize;  // hole-punching granularity
    m_config.max_write_zeroes_sectors = kMaxDiscardSectors;
    m_config.max_write_zeroes_seg = kMaxDiscardSeg;
    m_limits.capacity_sectors = m_config.capacity;
    m_limits.read_only = m_backend->read_only();
    m_limits.max_discard_sectors = kMaxDiscardSectors;
    m_limits.max_discard_seg = kMaxDiscardSeg;
    m_limits.max_write_zeroes_sectors = kMaxDiscardSectors;
    m_limits.max_write_zeroes_seg = kMaxDiscardSeg;
    m_limits.max_iovecs = BlockBackend::kMaxIovecs;
    // The parser enforces exactly what the driver reads in config space.
    m_limits.size_max = m_config.size_max;
    m_limits.seg_max = m_config.seg_max;
}

VirtioBlk::~VirtioBlk() {
    reset();
}

uint64_t VirtioBlk::device_features() const {
    uint64_t features = kFVersion1 | kFRingIndirectDesc | kFRingEventIdx | kFSizeMax | kFSegMax |
                        kFBlkSize | kFFlush;
    if (m_config.num_queues > 1) features |= kFMq;
    if (m_backend->read_only())
        features |= kFRo;
    else
        features |= kFDiscard | kFWriteZeroes;
    return features;
}

void VirtioBlk::read_config(uint64_t offset, std::span<uint8_t> data) {
    std::fill(data.begin(), data.end(), 0);
    if (offset >= sizeof(m_config)) return;
    size_t n = std::min<uint64_t>(data.size(), sizeof(m_config) - offset);
    std::memcpy(data.data(), reinterpret_cast<const uint8_t*>(&m_config) + offset, n);
}

void VirtioBlk::write_config(uint64_t offset, std::span<const uint8_t> data) {
    // Only `writeback` is writable, and only with CONFIG_WCE, which we do not offer.
    log::debug("virtio-blk: ignoring config write of {} bytes at {:#x}", data.size(), offset);
}

Result<void> VirtioBlk::activate(ActivateArgs args) {
    // Without MQ the driver uses queue 0 only; with it, 1..num_queues.
    const size_t allowed = (args.acked_features & kFMq) ? m_config.num_queues : 1;
    if (args.queues.empty() || args.queues.size() > allowed)
        return make_error("virtio-blk: the driver enabled {} queues (1..{} allowed)",
                          args.queues.size(), allowed);
    EventFd kick = RV_TRY(with_context(EventFd::create(EFD_NONBLOCK | EFD_CLOEXEC),
                                       "virtio-blk: continuation eventfd"));
    const int kick_fd = kick.fd();
    {
        std::lock_guard lock(m_mutex);
        if (m_active) return make_error("virtio-blk: activated twice without a reset");
        std::vector<QueueState> queues;
        for (Queue& q : args.queues) queues.push_back(QueueState{std::move(q)});
        m_active.emplace(Active{&args.memory, args.interrupt, std::move(queues),
                                args.acked_features, &args.events, std::move(kick)});
        m_limits.acked_features = args.acked_features;
        m_needs_reset = false;
        if (!m_limiter.unlimited()) {
            if (auto attached = attach_limiter_timer(); !attached) {
                m_active.reset();
                return with_context(std::move(attached), "virtio-blk");
            }
        }
    }
    // Outside the lock: the registrar may synchronize with the event loop,
    // which may be waiting for our lock in queue_notify.
    auto added = args.events.add(m_backend->completion_fd(), BlockBackend::kCompletionEvents,
                                 [this](uint32_t) { process_completions(); });
    if (added) {
        added = args.events.add(kick_fd, EPOLLIN, [this](uint32_t) { on_kick(); });
        if (!added) args.events.remove(m_backend->completion_fd());
    }
    if (!added) {
        std::lock_guard lock(m_mutex);
        m_limiter_timer.detach();
        m_active.reset();
        return with_context(std::move(added), "virtio-blk: registering with the event loop");
    }
    return {};
}

void VirtioBlk::reset() {
    EventRegistrar* events = nullptr;
    std::optional<EventFd> kick;  // closed only once the event loop has forgotten it
    {
        std::lock_guard lock(m_mutex);
        m_needs_reset = false;
        if (!m_active) return;
        events = m_active->events;
        kick.emplace(std::move(m_active->kick));
        // In-flight I/O may still write into guest RAM: wait for it before
        // forgetting the guest's buffers; its completions are dropped.
        m_backend->drain();
        m_backend->process_completions([this](uint64_t tag, int64_t) {
            if (tag < m_slots.size() && m_slots[tag].busy)
                m_active->memory->mark_written(m_slots[tag].read_into);
        });
        m_slots.clear();
        m_free_slots.clear();
        m_waiting.clear();
        m_held.reset();
        m_limiter_timer.release(m_limiter);
        m_limiter_timer.detach();
        m_in_flight = 0;
        m_flush_in_flight = false;
        m_active.reset();
    }
    events->remove(m_backend->completion_fd());
    events->remove(kick->fd());
}

void VirtioBlk::queue_notify(uint16_t index) {
    std::lock_guard lock(m_mutex);
    ++m_stats.notifications;
    if (!m_active || index >= m_active->queues.size()) return;
    Plugged batch(*m_backend);
    drain_queue(index);
    signal_if_needed();
}

// The continuation of a pass that ran out of budget (see drain_queue).
void VirtioBlk::on_kick() {
    std::lock_guard lock(m_mutex);
    if (!m_active) return;        // a wake-up racing with reset()
    (void)m_active->kick.read();  // nonblocking; nothing to read is a stale wake-up
    Plugged batch(*m_backend);
    for (uint16_t i = 0; i < m_active->queues.size(); ++i) {
        if (!std::exchange(m_active->queues[i].resume, false)) continue;
        drain_queue(i);
    }
    signal_if_needed();
}

// After the limiter let the held request go: every queue may have chains it
// did not pop meanwhile (kicks were ignored while a request was held).
void VirtioBlk::drain_all() {
    for (uint16_t i = 0; i < m_active->queues.size() && !m_held; ++i) drain_queue(i);
}

void VirtioBlk::drain_queue(uint16_t index) {
    // A request held by the limiter goes first: its timer resumes the queues.
    if (m_held) return;
    Active& a = *m_active;
    QueueState& q = a.queues[index];
    size_t budget = kChainsPerPass;
    // Event-idx dance: no kicks while we drain, then re-enable and look again
    // for buffers published in between.
    while (!m_needs_reset) {
        if (auto r = q.queue.disable_notification(*a.memory); !r)
            return fail_device(r.error().message());
        for (;;) {
            if (budget == 0) {
                // Let the rest of the event loop run. Notifications stay off,
                // so the driver need not kick: our own eventfd brings us back.
                // (It cannot fail short of a broken fd; if it did, stranding
                // the chains silently would be worse than a reset.)
                q.resume = true;
                if (auto kicked = a.kick.write(1); !kicked)
                    return fail_device(kicked.error().message());
                return;
            }
            auto chain = q.queue.pop(*a.memory);
            if (!chain) return fail_device(chain.error().message());
            if (!*chain) break;
            --budget;
            ++m_stats.requests;
            // An honest driver cannot have more requests outstanding than
            // descriptors; more means it republished heads we still hold.
            if (outstanding(index) >= q.queue.size())
                return fail_device("driver published more requests than the queue holds");
            handle_chain(index, **chain);
            // Held by the limiter: notifications stay off, the timer resumes.
            if (m_needs_reset || m_held) return;
        }
        auto more = q.queue.enable_notification(*a.memory);
        if (!more) return fail_device(more.error().message());
        if (!*more) break;
    }
}

void VirtioBlk::handle_chain(uint16_t queue, const DescriptorChain& chain) {
    Active& a = *m_active;
    auto request = parse_request(*a.memory, chain, m_limits);
    if (!request) {
        // No status byte to report through: hand the descriptors back empty.
        ++m_stats.malformed;
        QueueState& q = a.queues[queue];
        if (auto r = q.queue.add_used(*a.memory, chain.head, 0); r) q.used_dirty = true;
        return fail_device(request.error().message());
    }
    request->queue = queue;
    if (request->status != kSOk) {
        if (request->over_limit)
            log::warn_limited(m_over_limit_log,
                              "virtio-blk: request {} refused: {} (size_max {}, seg_max {}); the "
                              "driver ignores the config space",
                              request->head, request->over_limit, m_config.size_max,
                              m_config.seg_max);
        return complete(queue, request->head, request->status_addr, request->status,
                        request->used_len);
    }
    if (!m_limiter_timer.admit(m_limiter, request->data_len, 1)) {
        ++m_stats.throttled;
        m_held = std::move(*request);
        return;
    }
    execute(std::move(*request));
}

// A valid request the limiter let through.
void VirtioBlk::execute(Request&& request) {
    Active& a = *m_active;
    if (request.type == kTGetId) {
        auto written = write_id(*a.memory, request, m_serial);
        return complete(request.queue, request.head, request.status_addr,
                        written ? kSOk : kSIoErr, request.used_len);
    }
    if ((request.type == kTIn || request.type == kTOut) && request.data_len == 0) {
        ++(request.type == kTIn ? m_stats.reads : m_stats.writes);  // an op that moved nothing
        return complete(request.queue, request.head, request.status_addr, kSOk,
                        request.used_len);
    }
    ++m_active->queues[request.queue].enqueued;
    enqueue(std::move(request));
}

void VirtioBlk::enqueue(Request&& request) {
    bool flush = request.type == kTFlush;
    if (!m_waiting.empty() || m_flush_in_flight || (flush && m_in_flight > 0)) {
        m_waiting.push_back(std::move(request));
        return;
    }
    submit(std::move(request));
}

// Submits held-back requests in order, up to (and including) the next FLUSH
// that can go, i.e. once nothing before it is in flight.
void VirtioBlk::pump() {
    while (!m_waiting.empty() && !m_flush_in_flight) {
        if (m_waiting.front().type == kTFlush && m_in_flight > 0) break;
        Request request = std::move(m_waiting.front());
        m_waiting.pop_front();
        submit(std::move(request));
    }
}

void VirtioBlk::submit(Request&& request) {
    uint32_t index;
    if (!m_free_slots.empty()) {
        index = m_free_slots.back();
        m_free_slots.pop_back();
    } else {
        index = static_cast<uint32_t>(m_slots.size());
        m_slots.emplace_back();
    }
    bool ranged = request.type == kTDiscard || request.type == kTWriteZeroes;
    m_slots[index] = Slot{true,
                          request.queue,
                          request.head,
                          request.type,
                          request.used_len,
                          request.status_addr,
                          ranged ? static_cast<uint32_t>(request.segments.size()) : 1u,
                          request.data_len,
                          kSOk};
    ++m_in_flight;
    ++m_stats.submitted;
    uint64_t offset = request.sector * kSectorSize;
    switch (request.type) {
        case kTIn:
            m_backend->submit_read(offset, request.data, index);
            m_slots[index].read_into = std::move(request.data);  // (the backend copied the array)
            break;
        case kTOut:
            m_backend->submit_write(offset, request.data, index);
            break;
        case kTFlush:
            m_flush_in_flight = true;
            m_backend->submit_flush(index);
            break;
        case kTDiscard:
            for (const Segment& s : request.segments)
                m_backend->submit_discard(s.offset, s.len, index);
            break;
        case kTWriteZeroes:
            for (const Segment& s : request.segments)
                m_backend->submit_write_zeroes(s.offset, s.len, index);
            break;
        default:
            break;  // parse_request only lets the types above through
    }
}

void VirtioBlk::on_complete(uint64_t tag, int64_t result) {
    if (tag >= m_slots.size() || !m_slots[tag].busy) {
        log::warn("virtio-blk: completion for unknown request {}", tag);
        return;
    }
    Slot& slot = m_slots[tag];
    if (result < 0) {
        log::debug("virtio-blk: request {} failed: {}", slot.head, std::strerror(-result));
        slot.status = kSIoErr;
    }
    if (--slot.ops_left > 0) return;
    m_active->memory->mark_written(slot.read_into);  // failed or short: still maybe written
    if (slot.status == kSOk) {
        if (slot.type == kTIn) {
            ++m_stats.reads;
            m_stats.read_bytes += slot.bytes;
        }
        if (slot.type == kTOut) {
            ++m_stats.writes;
            m_stats.write_bytes += slot.bytes;
        }
    }
    if (slot.type == kTFlush) {
        ++m_stats.flushes;
        m_flush_in_flight = false;
    }
    slot.busy = false;
    m_free_slots.push_back(static_cast<uint32_t>(tag));
    --m_in_flight;
    --m_active->queues[slot.queue].enqueued;
    complete(slot.queue, slot.head, slot.status_addr, slot.status, slot.used_len);
    pump();
}

void VirtioBlk::complete(uint16_t queue, uint16_t head, GuestAddress status_addr, uint8_t status,
                         uint32_t used_len) {
    Active& a = *m_active;
    QueueState& q = a.queues[queue];
    if (status != kSOk) ++m_stats.errors;
    if (auto r = a.memory->write_obj(status_addr, status); !r)
        return fail_device(r.error().message());  // validated at pop; memory cannot shrink
    if (auto r = q.queue.add_used(*a.memory, head, used_len); !r)
        return fail_device(r.error().message());
    q.used_dirty = true;
}

void VirtioBlk::signal_if_needed() {
    Active& a = *m_active;
    for (uint16_t i = 0; i < a.queues.size(); ++i) {
        QueueState& q = a.queues[i];
        if (!q.used_dirty) continue;
        q.used_dirty = false;
        auto notify = q.queue.needs_notification(*a.memory);
        if (!notify) return fail_device(notify.error().message());
        if (*notify) {
            a.interrupt->signal_used_queue(i);
            ++m_stats.interrupts;
        }
    }
}

void VirtioBlk::fail_device(std::string_view why) {
    if (m_needs_reset.exchange(true)) return;
    log::warn("virtio-blk: {}; device needs reset", why);
    if (m_active) m_active->interrupt->signal_config_change();
}

void VirtioBlk::process_completions() {
    std::lock_guard lock(m_mutex);
    if (!m_active) {
        // A wake-up racing with reset(): just clear the eventfd.
        m_backend->process_completions([](uint64_t, int64_t) {});
        return;
    }
    Plugged batch(*m_backend);
    m_backend->process_completions(
        [this](uint64_t tag, int64_t result) { on_complete(tag, result); });
    signal_if_needed();
}

bool VirtioBlk::idle() const {
    std::lock_guard lock(m_mutex);
    return m_in_flight == 0 && m_waiting.empty() && !m_held && m_backend->pending() == 0;
}

DeviceCounters VirtioBlk::counters() const {
    const BlkStats s = stats();
    return {{"requests", s.requests},       {"reads", s.reads},
            {"writes", s.writes},           {"read_bytes", s.read_bytes},
            {"write_bytes", s.write_bytes}, {"flushes", s.flushes},
            {"submitted", s.submitted},     {"errors", s.errors},
            {"malformed", s.malformed},     {"notifications", s.notifications},
            {"interrupts", s.interrupts},   {"throttled", s.throttled},
            {"throttled_us", s.throttled_us}};
}

BlkStats VirtioBlk::stats() const {
    return BlkStats{.requests = m_stats.requests.load(),
                    .reads = m_stats.reads.load(),
                    .writes = m_stats.writes.load(),
                    .read_bytes = m_stats.read_bytes.load(),
                    .write_bytes = m_stats.write_bytes.load(),
                    .flushes = m_stats.flushes.load(),
                    .submitted = m_stats.submitted.load(),
                    .errors = m_stats.errors.load(),
                    .malformed = m_stats.malformed.load(),
                    .notifications = m_stats.notifications.load(),
                    .interrupts = m_stats.interrupts.load(),
                    .throttled = m_stats.throttled.load(),
                    .throttled_us = m_limiter_timer.held_ns(m_limiter) / 1000};
}

}  // namespace rv::virtio
