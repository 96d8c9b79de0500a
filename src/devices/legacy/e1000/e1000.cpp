#include "devices/legacy/e1000/e1000.h"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>

#include "base/log.h"

namespace rv {

using namespace e1000;

namespace {

// Room for the largest packet a tap can hand us with offloads off: a 64 KiB
// frame (tap MTU up to 65535) behind the virtio-net header.
constexpr size_t kRxBufferSize = kVnetHdrSize + 65536 + 64;
// Packets taken off the backend per readiness event: bounded so one busy
// tap cannot keep the event loop from other work (epoll is level-triggered
// and calls again).
constexpr int kRxBatch = 64;
// How often a receive path starved of descriptors asks for posted RDT
// writes: from kRxRetryNs, doubling while nothing arrives (a guest that
// stopped receiving), up to kRxRetryMaxNs.
constexpr uint64_t kRxRetryNs = 1'000'000;
constexpr uint64_t kRxRetryMaxNs = 64'000'000;

Result<Fd> make_timer() {
    int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0) return errno_error("e1000: timerfd_create");
    return Fd(fd);
}

// One-shot: fires once after delay_ns.
bool arm_once(const Fd& timer, uint64_t delay_ns) {
    itimerspec spec{};
    delay_ns = std::max<uint64_t>(delay_ns, 1);
    spec.it_value.tv_sec = static_cast<time_t>(delay_ns / 1'000'000'000ull);
    spec.it_value.tv_nsec = static_cast<long>(delay_ns % 1'000'000'000ull);
    return ::timerfd_settime(timer.get(), 0, &spec, nullptr) == 0;
}

}  // namespace

Result<std::shared_ptr<E1000>> E1000::create(const GuestMemory& memory,
                                             std::unique_ptr<NetBackend> backend,
                                             const E1000Config& config, EventRegistrar& events) {
    if (!backend) return make_error("e1000: no backend");
    // The backend speaks virtio-net headers; we always send them zeroed and
    // take plain, fully checksummed frames back.
    RV_TRY_VOID(with_context(backend->set_vnet_hdr_size(kVnetHdrSize), "e1000: vnet header size"));
    RV_TRY_VOID(with_context(backend->set_offloads(NetOffloads{}), "e1000: backend offloads"));
    Fd itr = RV_TRY(make_timer());
    Fd retry = RV_TRY(make_timer());
    std::shared_ptr<E1000> dev(
        new E1000(memory, std::move(backend), config, events, std::move(itr), std::move(retry)));
    std::weak_ptr<E1000> weak = dev;
    RV_TRY_VOID(with_context(events.add(dev->m_timer.get(), EPOLLIN,
                                        [weak](uint32_t) {
                                            if (auto d = weak.lock()) d->on_itr_timer();
                                        }),
                             "e1000: registering the ITR timer"));
    // (On failure the destructor takes the timers off the loop again.)
    RV_TRY_VOID(with_context(events.add(dev->m_rx_retry.get(), EPOLLIN,
                                        [weak](uint32_t) {
                                            if (auto d = weak.lock()) d->on_rx_retry_timer();
                                        }),
                             "e1000: registering the RX retry timer"));
    std::lock_guard lock(dev->m_mutex);
    for (bool rx : {true, false}) {
        if ((rx ? dev->m_rx_limit : dev->m_tx_limit).limiter.unlimited()) continue;
        RV_TRY_VOID(dev->attach_limiter_timer(rx));
    }
    return dev;
}

E1000::E1000(const GuestMemory& memory, std::unique_ptr<NetBackend> backend,
             const E1000Config& config, EventRegistrar& events, Fd timer, Fd rx_retry)
    : m_memory(memory),
      m_backend(std::move(backend)),
      m_events(events),
      m_config(config),
      m_timer(std::move(timer)),
      m_rx_retry(std::move(rx_retry)),
      m_pci(PciHeader{.vendor_id = kVendorIntel,
                      .device_id = kDevice82540Em,
                      .revision = 0x02,
                      .class_code = 0x02,  // network controller
                      .subclass = 0x00,    // Ethernet
                      .prog_if = 0x00,
                      .subsystem_vendor_id = kVendorIntel,
                      .subsystem_id = kSubsystemId,
                      .header_type = 0,
                      .interrupt_pin = 1}),  // INTA#
      m_eeprom(config.mac),
      m_rx_buf(kRxBufferSize),
      m_rx_limit{RateLimiter(config.rx_rate_limiter, config.clock_ns)},
      m_tx_limit{RateLimiter(config.tx_rate_limiter, config.clock_ns)} {
    // Both BARs are valid by construction (sizes are powers of two, indices distinct).
    (void)m_pci.add_bar(PciBarInfo{.index = kMmioBar, .size = kMmioBarSize});
    (void)m_pci.add_bar(PciBarInfo{.index = kIoBar, .size = kIoBarSize, .io = true});
    std::lock_guard lock(m_mutex);
    m_rx_retry_ns = kRxRetryNs;
    reset_locked();
}

E1000::~E1000() {
    m_events.remove(m_timer.get());
    m_events.remove(m_rx_retry.get());
    m_rx_limit.timer.detach();
    m_tx_limit.timer.detach();
    if (m_rx_registered) m_events.remove(m_backend->fd());
}

void E1000::assign_intx(std::shared_ptr<IrqLine> line) {
    std::lock_guard lock(m_mutex);
    m_intx = std::move(line);
    if (m_intx) m_intx->set_level(m_level);
}

// RDT only: the driver writes it after every batch of refilled buffers, and
// its effect (more room for received packets) may wait for the driver's next
// register access or the retry timer. Never without a flush hook. (Reads
// only the const config: PciRoot asks under its own lock.)
std::vector<PciBarRange> E1000::posted_write_ranges(uint8_t index) const {
    if (index != kMmioBar || !m_config.flush_posted) return {};
    return {PciBarRange{.offset = reg::kRdt, .size = 4}};
}

E1000Stats E1000::stats() const {
    std::lock_guard lock(m_mutex);
    E1000Stats s = m_stats;
    s.tx_packets = m_tx.counters().packets;
    s.tx_bytes = m_tx.counters().bytes;
    s.tx_dropped = m_tx.counters().dropped;
    s.rx_throttled_us = m_rx_limit.timer.held_ns(m_rx_limit.limiter) / 1000;
    s.tx_throttled_us = m_tx_limit.timer.held_ns(m_tx_limit.limiter) / 1000;
    return s;
}

// The statistics plus the ring and interrupt state: enough to tell a guest
// that stopped refilling the ring from a device that stopped raising the line.
DeviceCounters E1000::counters() const {
    std::lock_guard lock(m_mutex);
    return {{"rx_packets", m_stats.rx_packets},
            {"rx_bytes", m_stats.rx_bytes},
            {"rx_filtered", m_stats.rx_filtered},
            {"rx_dropped", m_stats.rx_dropped},
            {"tx_packets", m_tx.counters().packets},
            {"tx_bytes", m_tx.counters().bytes},
            {"tx_dropped", m_tx.counters().dropped},
            {"interrupts", m_stats.interrupts},
            {"throttled", m_stats.throttled},
            {"rdh", m_regs.get(reg::kRdh)},
            {"rdt", m_regs.get(reg::kRdt)},
            {"tdh", m_regs.get(reg::kTdh)},
            {"tdt", m_regs.get(reg::kTdt)},
            {"rctl", m_regs.get(reg::kRctl)},
            {"icr", m_icr},
            {"ims", m_ims},
            {"itr", m_regs.get(reg::kItr)},
            {"irq_level", m_level},
            {"itr_timer_armed", m_timer_armed},
            {"rx_polling", m_rx_registered},
            {"rx_held_packet", m_rx_pending},
            {"rx_retry_armed", m_rx_retry_armed},
            {"rx_retries", m_stats.rx_retries},
            {"rx_throttled", m_stats.rx_throttled},
            {"tx_throttled", m_stats.tx_throttled},
            {"rx_throttled_us", m_rx_limit.timer.held_ns(m_rx_limit.limiter) / 1000},
            {"tx_throttled_us", m_tx_limit.timer.held_ns(m_tx_limit.limiter) / 1000},
            {"rx_rate_limited", m_rx_throttled},
            {"tx_rate_limited", m_tx_throttled},
            {"backend_gone", m_backend_gone}};
}

// --- PCI ---------------------------------------------------------------------

void E1000::config_read(uint16_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(m_mutex);
    m_pci.read(offset, data);
    // The INTx pending bit of the status register is live.
    if (offset <= pci_reg::kStatus && offset + data.size() > pci_reg::kStatus && m_level)
        data[pci_reg::kStatus - offset] |= kPciStatusInterrupt;
}

void E1000::config_write(uint16_t offset, std::span<const uint8_t> data) {
    std::lock_guard lock(m_mutex);
    m_pci.write(offset, data);
    update_irq();  // INTx disable may have changed
}

std::vector<PciBarInfo> E1000::bars() const {
    std::lock_guard lock(m_mutex);
    return m_pci.bars();
}

void E1000::bar_read(uint8_t index, uint64_t offset, std::span<uint8_t> data) {
    std::fill(data.begin(), data.end(), 0);
    std::lock_guard lock(m_mutex);
    if (index == kMmioBar)
        access(offset, data, false);
    else if (index == kIoBar)
        io_access(offset, data, false);
}

void E1000::bar_write(uint8_t index, uint64_t offset, std::span<const uint8_t> data) {
    // The access helpers take a mutable span for both directions; copy so a
    // write never aliases the caller's buffer.
    std::array<uint8_t, 8> bytes{};
    size_t n = std::min(data.size(), bytes.size());
    std::copy_n(data.begin(), n, bytes.begin());
    std::lock_guard lock(m_mutex);
    if (index == kMmioBar)
        access(offset, std::span(bytes.data(), n), true);
    else if (index == kIoBar)
        io_access(offset, std::span(bytes.data(), n), true);
}

// --- interrupts --------------------------------------------------------------

uint64_t E1000::now_ns() const {
    return m_config.clock_ns ? m_config.clock_ns() : monotonic_ns();
}

void E1000::raise(uint32_t causes) {
    m_icr |= causes & kIntMask;
    update_irq();
}

void E1000::set_line(bool high) {
    if (high == m_level) return;
    m_level = high;
    if (high) ++m_stats.interrupts;
    if (m_intx) m_intx->set_level(high);
}

// The line follows ICR & IMS, except that with ITR set a new assertion
// waits until ITR * 256 ns after the previous one; the timerfd brings us
// back then. Lowering is never delayed.
void E1000::update_irq() {
    bool want = (m_icr & m_ims) != 0 && !(m_pci.command() & kPciCommandIntxDisable);
    if (!want || m_level) {
        set_line(want);
        return;
    }
    const uint64_t itr = m_regs.get(reg::kItr) & 0xFFFF;
    const uint64_t now = now_ns();
    if (itr != 0 && now < m_next_irq_ns) {
        ++m_stats.throttled;
        arm_timer(m_next_irq_ns - now);
        return;
    }
    set_line(true);
    m_next_irq_ns = itr ? now + itr * kItrUnitNs : 0;
}

void E1000::arm_timer(uint64_t delay_ns) {
    if (m_timer_armed) return;
    if (!arm_once(m_timer, delay_ns)) {
        // Cannot wait: deliver now rather than lose the interrupt.
        log::warn("e1000: timerfd_settime failed ({}); not throttling", std::strerror(errno));
        m_next_irq_ns = 0;
        set_line(true);
        return;
    }
    m_timer_armed = true;
}

void E1000::on_itr_timer() {
    uint64_t expirations = 0;
    (void)::read(m_timer.get(), &expirations, sizeof(expirations));
    std::lock_guard lock(m_mutex);
    m_timer_armed = false;
    // The kernel timer is the authority on the interval having passed.
    m_next_irq_ns = 0;
    update_irq();
}

// --- TX and RX -----------------------------------------------------------------

void E1000::process_tx() {
    if (m_tx_throttled) return;  // the limiter timer resumes
    RateLimiter* limiter = m_tx_limit.limiter.unlimited() ? nullptr : &m_tx_limit.limiter;
    uint32_t causes =
        m_tx.process(TxEngine::Env{m_memory, *m_backend, m_regs, limiter, &m_tx_limit.timer});
    if (m_tx.throttled()) {
        m_tx_throttled = true;
        ++m_stats.tx_throttled;
    }
    if (causes) raise(causes);
}

void E1000::on_backend_event(uint32_t events) {
    std::lock_guard lock(m_mutex);
    if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) {
        log::warn("e1000: backend hung up; no more packets for the guest");
        m_backend_gone = true;
        update_rx_interest();
        return;
    }
    if (events & EPOLLIN) process_rx(true);
}

// Delivers the packet held back for lack of descriptors, then (read_backend)
// reads and delivers more until the backend is empty, the ring is full or
// the batch is done. Runs on the event loop (fd readable) and on vCPU
// threads (RDT and RCTL writes).
void E1000::process_rx(bool read_backend) {
    // The held packet waits for the limiter (the fd is not polled): its
    // timer resumes, not RDT writes or the retry timer.
    if (m_rx_throttled) return;
    uint32_t causes = 0;
    for (int i = 0; i < kRxBatch; ++i) {
        if (!m_rx_pending) {
            if (!read_backend || m_backend_gone || !RxEngine::ready(m_memory, m_regs)) break;
            iovec iov{m_rx_buf.data(), m_rx_buf.size()};
            auto got = m_backend->readv(std::span(&iov, 1));
            if (!got) {
                // A failing fd would stay readable and spin the loop.
                log::error("e1000: backend read failed: {}; receive stopped",
                           got.error().message());
                m_backend_gone = true;
                break;
            }
            if (!*got) break;  // EAGAIN
            m_rx_len = **got;
            m_rx_pending = true;
        }
        std::span<const uint8_t> packet(m_rx_buf.data(), std::min(m_rx_len, m_rx_buf.size()));
        if (packet.size() <= kVnetHdrSize ||
            !RxEngine::accepts(m_regs, packet.subspan(kVnetHdrSize))) {
            m_rx_pending = false;
            ++m_stats.rx_filtered;
            continue;
        }
        // Charged once, when accepted; a packet then waiting for
        // descriptors keeps its tokens.
        if (!m_rx_paid) {
            if (!m_rx_limit.timer.admit(m_rx_limit.limiter, packet.size() - kVnetHdrSize, 1)) {
                m_rx_throttled = true;
                ++m_stats.rx_throttled;
                break;
            }
            m_rx_paid = true;
        }
        auto outcome = m_rx.deliver(m_memory, m_regs, packet.subspan(kVnetHdrSize), causes);
        if (outcome == RxEngine::Outcome::kNoRoom) break;  // keep it for the next RDT write
        m_rx_pending = false;
        m_rx_paid = false;
        if (outcome == RxEngine::Outcome::kDelivered) {
            ++m_stats.rx_packets;
            m_stats.rx_bytes += packet.size() - kVnetHdrSize;  // the frame, no FCS
        } else {
            ++m_stats.rx_dropped;
        }
    }
    if (causes) raise(causes);
    update_rx_interest();
    if (causes & kIntRxt0) m_rx_retry_ns = kRxRetryNs;  // delivering again
    if (rx_starved()) arm_rx_retry();
}

// Receive is on but has no descriptors for what the backend may hold: the
// guest's refill may be sitting among the posted writes.
bool E1000::rx_starved() const {
    return !m_backend_gone && !m_rx_throttled && (m_regs.get(reg::kRctl) & kRctlEn) &&
           (m_rx_pending || !RxEngine::ready(m_memory, m_regs));
}

void E1000::arm_rx_retry() {
    if (m_rx_retry_armed || !m_config.flush_posted) return;
    // If the timer cannot be armed the packets still go in at the driver's
    // next register access, which applies the posted writes first.
    m_rx_retry_armed = arm_once(m_rx_retry, m_rx_retry_ns);
}

// Receive has been starved for a retry interval: apply the posted writes
// (an RDT write among them fills the ring and re-arms as needed).
void E1000::on_rx_retry_timer() {
    uint64_t expirations = 0;
    (void)::read(m_rx_retry.get(), &expirations, sizeof(expirations));
    uint64_t before = 0;
    {
        std::lock_guard lock(m_mutex);
        m_rx_retry_armed = false;
        before = m_stats.rx_packets;
        ++m_stats.rx_retries;
    }
    // Takes our lock itself, through bar_write.
    if (m_config.flush_posted) m_config.flush_posted();
    std::lock_guard lock(m_mutex);
    // Nothing came in: the guest is not refilling; ask less often (a
    // delivery below resets the interval).
    if (m_stats.rx_packets == before) m_rx_retry_ns = std::min(m_rx_retry_ns * 2, kRxRetryMaxNs);
    process_rx(true);  // re-arms while still starved
}

void E1000::update_rx_interest() {
    const int fd = m_backend->fd();
    bool want = !m_backend_gone && !m_rx_pending && RxEngine::ready(m_memory, m_regs);
    if (want == m_rx_registered) return;
    if (!want) {
        m_events.remove(fd);
        m_rx_registered = false;
        return;
    }
    std::weak_ptr<E1000> weak = weak_from_this();
    auto added = m_events.add(fd, EPOLLIN, [weak](uint32_t events) {
        if (auto d = weak.lock()) d->on_backend_event(events);
    });
    if (!added) {
        log::error("e1000: registering the backend fd: {}; receive stopped",
                   added.error().message());
        m_backend_gone = true;
        return;
    }
    m_rx_registered = true;
}

}  // namespace rv
