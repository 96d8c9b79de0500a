// A Linux TAP interface opened through /dev/net/tun with a virtio-net header
// on every packet (IFF_VNET_HDR), so checksum and segmentation offloads pass
// between the guest and the host stack untouched. A multi-queue tap
// (IFF_MULTI_QUEUE) is one Tap per queue: each its own fd on the same
// interface, the kernel steering each flow to one of the attached queues.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backends/net/net_backend.h"
#include "base/fd.h"

namespace rv {

class Tap final : public NetBackend {
  public:
    // Attaches to the tap `name` (a persistent one made with `ip tuntap add`)
    // or creates it (needs CAP_NET_ADMIN). The fd is non-blocking and
    // close-on-exec. The interface is not brought up: that, addresses and
    // bridging are the host administrator's business. Single-queue (no
    // IFF_MULTI_QUEUE), except that a persistent tap made with `multi_queue`
    // is attached as a multi-queue tap with one queue (the kernel refuses
    // the single-queue flags on it).
    static Result<std::unique_ptr<Tap>> open(const std::string& name);
    // `queues` fds of one multi-queue tap, in queue order (one TUNSETIFF
    // each, IFF_MULTI_QUEUE, the same name). queues == 1 is open(name).
    // Errors (kind InvalidInput where the user can fix it): a persistent tap
    // made without `multi_queue`, a kernel without multi-queue taps, or one
    // refusing that many queues.
    static Result<std::vector<std::unique_ptr<Tap>>> open_queues(const std::string& name,
                                                                 unsigned queues);

    const std::string& name() const { return m_name; }
    bool multi_queue() const { return m_multi_queue; }
    bool attached() const { return m_attached; }

    int fd() const override { return m_fd.get(); }
    Result<std::optional<size_t>> readv(std::span<const iovec> iov) override;
    Result<std::optional<size_t>> writev(std::span<const iovec> iov) override;
    // TUNSETVNETHDRSZ: 12 for virtio 1.x (virtio_net_hdr_v1 with num_buffers).
    Result<void> set_vnet_hdr_size(int size) override;
    // TUNSETOFFLOAD: which offloaded (partial-checksum, GSO) packets the tap
    // may hand us; everything else it checksums and segments itself.
    Result<void> set_offloads(const NetOffloads& offloads) override;
    // TUNSETQUEUE IFF_ATTACH_QUEUE / IFF_DETACH_QUEUE on a multi-queue tap
    // (the kernel refuses either when already done: we remember); a no-op
    // on a single-queue one.
    Result<void> set_queue_attached(bool attached) override;

  private:
    Tap(Fd fd, std::string name, bool multi_queue)
        : m_fd(std::move(fd)), m_name(std::move(name)), m_multi_queue(multi_queue) {}

    Fd m_fd;
    std::string m_name;
    bool m_multi_queue{false};
    bool m_attached{true};
    std::optional<NetOffloads> m_pending_offloads;  // set while detached
};

}  // namespace rv
