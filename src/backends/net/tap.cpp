#include "backends/net/tap.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>

#include <climits>
#include <cstring>

namespace rv {

namespace {

constexpr const char* kTunPath = "/dev/net/tun";

// Turns a failed syscall's errno into the reason an operator can act on.
Result<std::optional<size_t>> io_result(ssize_t n, std::string_view what) {
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
    return errno_error(what);
}

}  // namespace

Result<std::unique_ptr<Tap>> Tap::open(const std::string& name) {
    // IFNAMSIZ counts the terminating NUL; the kernel would silently cut a
    // longer name and attach to a different interface.
    if (name.size() >= IFNAMSIZ)
        return make_error("tap name '{}' is longer than {} characters", name, IFNAMSIZ - 1);
    if (name.find('/') != std::string::npos || name.find_first_of(" \t\n") != std::string::npos)
        return make_error("tap name '{}' contains '/' or whitespace", name);

    int raw = ::open(kTunPath, O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (raw < 0) {
        int err = errno;
        if (err == ENOENT || err == ENODEV || err == ENXIO)
            return errno_error(
                fmt::format("{} is missing (load the tun module: modprobe tun)", kTunPath), err);
        if (err == EACCES || err == EPERM)
            return errno_error(fmt::format("opening {} is not permitted", kTunPath), err);
        return errno_error(fmt::format("opening {}", kTunPath), err);
    }
    Fd fd(raw);

    unsigned int features = 0;
    if (::ioctl(fd.get(), TUNGETFEATURES, &features) < 0) return errno_error("TUNGETFEATURES");
    if (!(features & IFF_VNET_HDR))
        return make_error("this kernel's tun driver has no IFF_VNET_HDR support");

    ifreq ifr{};
    std::memcpy(ifr.ifr_name, name.data(), name.size());
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (::ioctl(fd.get(), TUNSETIFF, &ifr) < 0) {
        int err = errno;
        if (err == EPERM || err == EACCES)
            return errno_error(fmt::format("attaching tap '{}' needs CAP_NET_ADMIN, or a "
                                           "persistent tap owned by this user "
                                           "(ip tuntap add {} mode tap user $USER)",
                                           name, name.empty() ? "NAME" : name),
                               err);
        if (err == EBUSY)
            return errno_error(fmt::format("tap '{}' is in use by another process", name), err);
        if (err == EINVAL)
            return errno_error(
                fmt::format("tap '{}': the name exists but is not a tap with vnet headers, or is "
                            "not a valid interface name",
                            name),
                err);
        return errno_error(fmt::format("TUNSETIFF '{}'", name), err);
    }
    // The kernel fills in the actual name (it picks one when `name` is empty).
    std::string actual(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
    return std::unique_ptr<Tap>(new Tap(std::move(fd), std::move(actual)));
}

Result<std::optional<size_t>> Tap::readv(std::span<const iovec> iov) {
    if (iov.size() > IOV_MAX) return make_error("tap readv: {} iovecs exceed IOV_MAX", iov.size());
    for (;;) {
        ssize_t n = ::readv(m_fd.get(), iov.data(), static_cast<int>(iov.size()));
        if (n < 0 && errno == EINTR) continue;
        return io_result(n, "tap readv");
    }
}

Result<std::optional<size_t>> Tap::writev(std::span<const iovec> iov) {
    if (iov.size() > IOV_MAX) return make_error("tap writev: {} iovecs exceed IOV_MAX", iov.size());
    for (;;) {
        ssize_t n = ::writev(m_fd.get(), iov.data(), static_cast<int>(iov.size()));
        if (n < 0 && errno == EINTR) continue;
        return io_result(n, "tap writev");
    }
}

Result<void> Tap::set_vnet_hdr_size(int size) {
    if (::ioctl(m_fd.get(), TUNSETVNETHDRSZ, &size) < 0)
        return errno_error(fmt::format("TUNSETVNETHDRSZ {} on tap '{}'", size, m_name));
    return {};
}

Result<void> Tap::set_offloads(const NetOffloads& offloads) {
    unsigned int flags = 0;
    if (offloads.csum) flags |= TUN_F_CSUM;
    // The tun driver rejects segmentation offloads without checksum offload
    // (a segment's checksum is always left partial), so they depend on csum.
    if (offloads.csum) {
        if (offloads.tso4) flags |= TUN_F_TSO4;
        if (offloads.tso6) flags |= TUN_F_TSO6;
        if (offloads.ecn && (offloads.tso4 || offloads.tso6)) flags |= TUN_F_TSO_ECN;
        if (offloads.ufo) flags |= TUN_F_UFO;
    }
    // TUNSETOFFLOAD takes the flags by value, not through a pointer.
    if (::ioctl(m_fd.get(), TUNSETOFFLOAD, static_cast<unsigned long>(flags)) < 0)
        return errno_error(fmt::format("TUNSETOFFLOAD {:#x} on tap '{}'", flags, m_name));
    return {};
}

}  // namespace rv
