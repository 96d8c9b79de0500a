// Test doubles for virtio-net: the shared socketpair NetBackend, an Interrupt that records
// what the device signalled, and an EventRegistrar that remembers the epoll
// events asked for and runs handlers level-triggered, like the event loop.
// Also used by fuzz/virtio_net_fuzz.cpp.
#pragma once

#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <vector>

#include "backends/net/net_backend.h"
#include "base/fd.h"
#include "devices/event_registrar.h"
#include "devices/virtio/virtio_device.h"
#include "support/fake_net_backend.h"

namespace rv::test {

// The backend double is the shared one (support/fake_net_backend.h).
using FakeNetState = FakeNetPeer;

class NetRecordingInterrupt final : public virtio::Interrupt {
  public:
    void signal_used_queue(uint16_t queue_index) override {
        m_used.push_back(queue_index);
        if (on_signal) on_signal(queue_index);
    }
    // Called at each used-queue interrupt: what the driver sees at that moment.
    std::function<void(uint16_t)> on_signal;
    void signal_config_change() override { ++m_config_changes; }
    size_t used_count(uint16_t queue_index) const {
        size_t n = 0;
        for (uint16_t q : m_used) n += q == queue_index;
        return n;
    }
    size_t config_changes() const { return m_config_changes; }

  private:
    std::vector<uint16_t> m_used;
    size_t m_config_changes{0};
};

// The level-triggered registrar double is the shared one too.
using NetFakeRegistrar = PollingRegistrar;

}  // namespace rv::test
