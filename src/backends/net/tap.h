// A Linux TAP interface opened through /dev/net/tun with a virtio-net header
// on every packet (IFF_VNET_HDR), so checksum and segmentation offloads pass
// between the guest and the host stack untouched.
#pragma once

#include <memory>
#include <string>

#include "backends/net/net_backend.h"
#include "base/fd.h"

namespace rv {

class Tap final : public NetBackend {
  public:
    // Attaches to the tap `name` (a persistent one made with `ip tuntap add`)
    // or creates it (needs CAP_NET_ADMIN). The fd is non-blocking and
    // close-on-exec. The interface is not brought up: that, addresses and
    // bridging are the host administrator's business.
    static Result<std::unique_ptr<Tap>> open(const std::string& name);

    const std::string& name() const { return m_name; }

    int fd() const override { return m_fd.get(); }
    Result<std::optional<size_t>> readv(std::span<const iovec> iov) override;
    Result<std::optional<size_t>> writev(std::span<const iovec> iov) override;
    // TUNSETVNETHDRSZ: 12 for virtio 1.x (virtio_net_hdr_v1 with num_buffers).
    Result<void> set_vnet_hdr_size(int size) override;
    // TUNSETOFFLOAD: which offloaded (partial-checksum, GSO) packets the tap
    // may hand us; everything else it checksums and segments itself.
    Result<void> set_offloads(const NetOffloads& offloads) override;

  private:
    Tap(Fd fd, std::string name) : m_fd(std::move(fd)), m_name(std::move(name)) {}

    Fd m_fd;
    std::string m_name;
};

}  // namespace rv
