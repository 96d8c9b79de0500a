// virtio-blk media change: a new backing file under a running device.
#include <sys/epoll.h>

#include "base/log.h"
#include "devices/virtio/blk/blk_device.h"

namespace rv::virtio {

BlockOptions VirtioBlk::backend_options() const {
    std::lock_guard lock(m_mutex);
    return m_backend->options();
}

Result<void> VirtioBlk::reopen_backend() {
    std::lock_guard lock(m_mutex);
    return m_backend->reopen();
}

Result<void> VirtioBlk::replace_backend(std::unique_ptr<BlockBackend> backend) {
    if (!backend) return make_error("virtio-blk: no backend");
    EventRegistrar* events = nullptr;
    {
        std::lock_guard lock(m_mutex);
        if (backend->read_only() != m_backend->read_only())
            return input_error("the new image must be {} like the old one",
                               m_backend->read_only() ? "read-only" : "writable");
        if (m_active) events = m_active->events;
    }
    // What the old image still holds finishes there and reaches the guest.
    // (On the loop's thread, so no completion handler runs meanwhile.)
    // A completion may release requests a flush held back, which go to the
    // old image too: until it has nothing left.
    if (events) {
        for (;;) {
            {
                std::lock_guard lock(m_mutex);
                if (m_backend->pending() == 0) break;
                m_backend->drain();
            }
            process_completions();
        }
        events->remove(m_backend->completion_fd());
    }
    std::unique_ptr<BlockBackend> old;
    std::shared_ptr<Interrupt> interrupt;
    {
        std::lock_guard lock(m_mutex);
        old = std::exchange(m_backend, std::move(backend));
        m_config.capacity = m_backend->sectors();
        m_limits.capacity_sectors = m_config.capacity;
        if (m_active) interrupt = m_active->interrupt;
    }
    if (events) {
        auto added = events->add(m_backend->completion_fd(), BlockBackend::kCompletionEvents,
                                 [this](uint32_t) { process_completions(); });
        if (!added) {
            std::lock_guard lock(m_mutex);
            fail_device("cannot watch the new image's completions");
            return with_context(std::move(added), "virtio-blk media change");
        }
        // Requests held back meanwhile (a barrier, the limiter) go on now.
        std::lock_guard lock(m_mutex);
        pump();
    }
    log::info("virtio-blk {}: media changed ({} sectors)", m_serial, m_config.capacity);
    if (interrupt) interrupt->signal_config_change();
    return {};
}

}  // namespace rv::virtio
