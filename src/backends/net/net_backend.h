// The host side of a virtual NIC, as the virtio-net device sees it: one fd to
// poll, packet-at-a-time scatter/gather I/O, and the two knobs of the
// virtio-net header path. A multi-queue NIC is several backends, one per
// queue pair (Tap::open_queues), each its own fd. Tap implements it over /dev/net/tun; unit tests
// and fuzzers implement it over a SOCK_SEQPACKET socketpair, which preserves packet boundaries the
// way a tap does.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <optional>
#include <span>

#include "base/error.h"

namespace rv {

// Offloads the *guest* can receive (virtio-net GUEST_* features the driver
// acked). With all false the backend hands us fully checksummed, unsegmented
// frames.
struct NetOffloads {
    bool csum{false};
    bool tso4{false};
    bool tso6{false};
    bool ecn{false};
    bool ufo{false};
    bool operator==(const NetOffloads&) const = default;
};

class NetBackend {
  public:
    virtual ~NetBackend() = default;

    // Pollable fd: readable when a packet is queued for the guest, writable
    // when a packet from the guest can be sent. Non-blocking.
    virtual int fd() const = 0;

    // Reads one packet (virtio-net header first) into iov. nullopt: nothing
    // queued (EAGAIN). A packet larger than iov is truncated, so callers pass
    // room for the largest packet.
    virtual Result<std::optional<size_t>> readv(std::span<const iovec> iov) = 0;
    // Writes one packet (virtio-net header first). nullopt: the backend is
    // full (EAGAIN), nothing was sent, retry when fd() is writable.
    virtual Result<std::optional<size_t>> writev(std::span<const iovec> iov) = 0;

    // Size of the virtio-net header on both paths (12 for virtio 1.x).
    virtual Result<void> set_vnet_hdr_size(int size) = 0;
    virtual Result<void> set_offloads(const NetOffloads& offloads) = 0;

    // Whether the host steers packets to this queue (a multi-queue tap's
    // TUNSETQUEUE): a queue pair the guest does not use is detached, so no
    // flow lands where nobody reads it. Idempotent. A detached queue must
    // not be polled or read (a tap reports EPOLLERR / EBADFD). Single-queue
    // backends are always attached.
    virtual Result<void> set_queue_attached(bool /*attached*/) { return {}; }
};

}  // namespace rv
