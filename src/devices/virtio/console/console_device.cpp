#include "devices/virtio/console/console_device.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cstring>

#include "base/log.h"

namespace rv::virtio {

VirtioConsole::VirtioConsole(OutputSink output, uint16_t cols, uint16_t rows)
    : m_output(std::move(output)), m_cols(cols), m_rows(rows) {}

// The kick handler captures `this`: unregister it before we go away.
VirtioConsole::~VirtioConsole() {
    reset();
}

uint64_t VirtioConsole::device_features() const {
    return kConsoleFSize | kFVersion1 | kFRingEventIdx | kFRingIndirectDesc;
}

void VirtioConsole::read_config(uint64_t offset, std::span<uint8_t> data) {
    ConsoleConfig config{};
    {
        std::lock_guard lock(m_mutex);
        config.cols = m_cols;
        config.rows = m_rows;
    }
    config.max_nr_ports = 1;  // only meaningful with MULTIPORT; 1 is the truth anyway
    uint8_t bytes[sizeof(ConsoleConfig)];
    std::memcpy(bytes, &config, sizeof config);
    for (size_t i = 0; i < data.size(); ++i) {
        // Compared without adding, so a huge offset cannot wrap into range.
        bool in_range = offset < sizeof bytes && i < sizeof bytes - offset;
        data[i] = in_range ? bytes[offset + i] : 0;
    }
}

void VirtioConsole::write_config(uint64_t offset, std::span<const uint8_t> data) {
    // cols/rows are device-written; emerg_wr needs F_EMERG_WRITE, which we do
    // not offer. Ignore, as the interface promises.
    log::debug("virtio-console: ignoring {}-byte config write at {:#x}", data.size(), offset);
}

Result<void> VirtioConsole::activate(ActivateArgs args) {
    if (args.queues.size() != 2)
        return make_error("virtio-console: expected 2 queues, driver enabled {}",
                          args.queues.size());
    reset();  // a repeated DRIVER_OK without reset must not leak the old registration
    auto kick = RV_TRY(EventFd::create(EFD_NONBLOCK));
    int kick_fd = kick.fd();
    RV_TRY_VOID(with_context(args.events.add(kick_fd, EPOLLIN, [this](uint32_t) { on_kick(); }),
                             "virtio-console: registering kick eventfd"));
    std::lock_guard tx_lock(m_tx_mutex);
    std::unique_lock lock(m_mutex);
    m_active.emplace(Active{&args.memory, std::move(args.interrupt), std::move(args.queues),
                            &args.events, std::move(kick)});
    m_needs_reset = false;
    // The driver may have posted receive buffers (and even output) before
    // DRIVER_OK, when notifications are not yet delivered to us.
    Effects fx;
    process_tx_locked(fx);
    deliver_input_locked(fx);
    finish(lock, fx);
    return {};
}

void VirtioConsole::reset() {
    std::optional<Active> old;
    {
        std::lock_guard lock(m_mutex);
        old.swap(m_active);
        m_needs_reset = false;
    }
    // Outside the lock: the registrar may wait for a running handler, which
    // itself takes m_mutex.
    if (old) old->events->remove(old->kick.fd());
}

void VirtioConsole::queue_notify(uint16_t index) {
    std::lock_guard tx_lock(m_tx_mutex);
    std::unique_lock lock(m_mutex);
    if (!m_active || m_needs_reset) return;
    Effects fx;
    if (index == kReceiveQueue)
        deliver_input_locked(fx);
    else if (index == kTransmitQueue)
        process_tx_locked(fx);
    else
        warn_once_locked(kWarnBadQueue, "notify for a queue the device does not have");
    finish(lock, fx);
}

bool VirtioConsole::needs_reset() const {
    std::lock_guard lock(m_mutex);
    return m_needs_reset;
}

void VirtioConsole::enqueue_input(std::span<const uint8_t> bytes) {
    std::unique_lock lock(m_mutex);
    size_t taken = m_input.push(bytes);
    if (taken < bytes.size()) {
        m_stats.input_dropped += bytes.size() - taken;
        log::debug("virtio-console: input ring full, dropping {} bytes", bytes.size() - taken);
    }
    if (m_input.free_space() == 0) m_waiting_for_space = true;
    Effects fx;
    if (m_active && !m_needs_reset) deliver_input_locked(fx);
    finish(lock, fx);
}

size_t VirtioConsole::input_capacity() const {
    std::lock_guard lock(m_mutex);
    return m_input.free_space();
}

void VirtioConsole::set_input_space_callback(std::function<void()> callback) {
    std::lock_guard lock(m_mutex);
    m_on_input_space = std::move(callback);
}

void VirtioConsole::set_size(uint16_t cols, uint16_t rows) {
    std::unique_lock lock(m_mutex);
    if (cols == m_cols && rows == m_rows) return;
    m_cols = cols;
    m_rows = rows;
    Effects fx;
    if (m_active) {
        fx.config_change = true;
        ++m_stats.config_changes;
    }
    finish(lock, fx);
}

VirtioConsole::Stats VirtioConsole::stats() const {
    std::lock_guard lock(m_mutex);
    Stats s = m_stats;
    s.input_buffered = m_input.size();
    return s;
}

void VirtioConsole::on_kick() {
    std::lock_guard tx_lock(m_tx_mutex);
    std::unique_lock lock(m_mutex);
    if (!m_active) return;
    (void)m_active->kick.read();  // nonblocking; an empty read just means a stale wakeup
    if (m_needs_reset) return;
    Effects fx;
    process_tx_locked(fx);
    deliver_input_locked(fx);
    finish(lock, fx);
}

void VirtioConsole::deliver_input_locked(Effects& fx) {
    if (m_needs_reset) return;
    Queue& queue = m_active->queues[kReceiveQueue];
    const GuestMemory& memory = *m_active->memory;
    const size_t before = m_input.size();
    bool used_any = false;
    for (size_t chains = 0; !m_input.empty(); ++chains) {
        if (chains >= queue.size()) {  // the guest keeps posting useless chains
            reschedule_locked();
            break;
        }
        auto popped = queue.pop(memory);
        if (!popped) return fail_locked(fx, "receiveq", popped.error());
        if (!*popped) {
            // Out of buffers with input waiting: ask for a notification and
            // look again in case the driver posted one meanwhile.
            auto more = queue.enable_notification(memory);
            if (!more) return fail_locked(fx, "receiveq", more.error());
            if (*more) continue;
            break;
        }
        const DescriptorChain& chain = **popped;
        ChainWriter writer(memory, chain);
        if (writer.remaining() == 0) {
            ++m_stats.malformed_chains;
            warn_once_locked(kWarnRxNoSpace, "receive chain without writable buffers");
        }
        while (!m_input.empty() && writer.remaining() > 0) {
            auto wrote = writer.write(m_input.front());
            if (!wrote) return fail_locked(fx, "receiveq buffer", wrote.error());
            m_input.consume(*wrote);
        }
        auto added = queue.add_used(memory, chain.head, static_cast<uint32_t>(writer.written()));
        if (!added) return fail_locked(fx, "receiveq", added.error());
        used_any = true;
        ++m_stats.rx_chains;
        m_stats.rx_bytes += writer.written();
    }
    if (used_any) {
        auto notify = queue.needs_notification(memory);
        if (!notify) return fail_locked(fx, "receiveq", notify.error());
        fx.signal_rx = *notify;
    }
    if (m_waiting_for_space && m_input.size() < before) {
        m_waiting_for_space = false;
        fx.space_freed = true;
    }
}

void VirtioConsole::process_tx_locked(Effects& fx) {
    if (m_needs_reset) return;
    Queue& queue = m_active->queues[kTransmitQueue];
    const GuestMemory& memory = *m_active->memory;
    bool used_any = false;
    for (size_t chains = 0;; ++chains) {
        if (chains >= queue.size() || fx.output.size() >= kTxBudgetPerNotify) {
            reschedule_locked();  // let other event-loop work run first
            break;
        }
        auto popped = queue.pop(memory);
        if (!popped) return fail_locked(fx, "transmitq", popped.error());
        if (!*popped) {
            auto more = queue.enable_notification(memory);
            if (!more) return fail_locked(fx, "transmitq", more.error());
            if (*more) continue;
            break;
        }
        const DescriptorChain& chain = **popped;
        ChainReader reader(memory, chain);
        const uint64_t total = reader.remaining();
        if (total == 0) {
            ++m_stats.malformed_chains;
            warn_once_locked(kWarnTxNoData, "transmit chain without readable buffers");
        }
        const size_t want = static_cast<size_t>(std::min<uint64_t>(total, kMaxTxChainBytes));
        const size_t old_size = fx.output.size();
        fx.output.resize(old_size + want);
        auto got = reader.read(std::span(fx.output).subspan(old_size, want));
        if (!got) {
            fx.output.resize(old_size);
            return fail_locked(fx, "transmitq buffer", got.error());
        }
        fx.output.resize(old_size + *got);
        if (total > want) {
            m_stats.tx_truncated_bytes += total - want;
            warn_once_locked(kWarnTxTruncated, "transmit chain over 64 KiB truncated");
        }
        // Used length counts bytes written into the chain: none for output.
        auto added = queue.add_used(memory, chain.head, 0);
        if (!added) return fail_locked(fx, "transmitq", added.error());
        used_any = true;
        ++m_stats.tx_chains;
        m_stats.tx_bytes += *got;
    }
    if (used_any) {
        auto notify = queue.needs_notification(memory);
        if (!notify) return fail_locked(fx, "transmitq", notify.error());
        fx.signal_tx = *notify;
    }
}

void VirtioConsole::fail_locked(Effects& fx, std::string_view what, const Error& error) {
    ++m_stats.queue_errors;
    if (!(m_warned & kWarnQueue)) {
        m_warned |= kWarnQueue;
        log::warn("virtio-console: {}: {}; device needs reset", what, error.message());
    }
    m_needs_reset = true;
    fx.config_change = true;  // 2.1.2: tell the driver to look at DEVICE_NEEDS_RESET
}

void VirtioConsole::warn_once_locked(Warning kind, std::string_view text) {
    if (m_warned & kind) return;
    m_warned |= kind;
    log::warn("virtio-console: {} (logged once)", text);
}

void VirtioConsole::reschedule_locked() {
    if (auto kicked = m_active->kick.write(1); !kicked)
        log::warn("virtio-console: {}", kicked.error().message());
}

void VirtioConsole::finish(std::unique_lock<std::mutex>& lock, Effects& fx) {
    std::function<void()> on_space;
    if (fx.space_freed) on_space = m_on_input_space;
    std::shared_ptr<Interrupt> interrupt;
    if (m_active) interrupt = m_active->interrupt;
    // Callers that can produce output hold m_tx_mutex (taken before
    // m_mutex) across this call, so output reaches the sink in ring order
    // while the sink itself may take m_mutex through enqueue_input().
    lock.unlock();
    if (!fx.output.empty() && m_output) m_output(fx.output);
    if (interrupt) {
        if (fx.signal_rx) interrupt->signal_used_queue(kReceiveQueue);
        if (fx.signal_tx) interrupt->signal_used_queue(kTransmitQueue);
        if (fx.config_change) interrupt->signal_config_change();
    }
    if (on_space) on_space();
}

// --- snapshots -------------------------------------------------------------------

std::vector<Queue::State> VirtioConsole::queue_states() const {
    std::lock_guard lock(m_mutex);
    std::vector<Queue::State> out;
    if (m_active)
        for (const Queue& q : m_active->queues) out.push_back(q.save());
    return out;
}

std::vector<uint8_t> VirtioConsole::save_state() const {
    std::lock_guard lock(m_mutex);
    InputRing<kInputBufferSize> copy = m_input;
    std::vector<uint8_t> pending;
    while (!copy.empty()) {
        auto chunk = copy.front();
        pending.insert(pending.end(), chunk.begin(), chunk.end());
        copy.consume(chunk.size());
    }
    if (pending.empty()) return {};
    snapshot::Writer w;
    w.blob(pending);
    return w.take();
}

Result<void> VirtioConsole::restore_state(std::span<const uint8_t> state) {
    if (state.empty()) return {};
    snapshot::Reader r(state, "virtio-console state");
    auto pending = r.blob(kInputBufferSize);
    RV_TRY_VOID(r.finish());
    enqueue_input(pending);  // delivered at once if the driver posted buffers
    return {};
}

}  // namespace rv::virtio
