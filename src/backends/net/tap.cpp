#include "backends/net/tap.h"

#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>

#include <charconv>
#include <climits>
#include <cstring>
#include <utility>

namespace rv {

namespace {

constexpr const char* kTunPath = "/dev/net/tun";
constexpr short kTapFlags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;

// Turns a failed syscall's errno into the reason an operator can act on.
Result<std::optional<size_t>> io_result(ssize_t n, std::string_view what) {
    if (n >= 0) return static_cast<size_t>(n);
    if (errno == EAGAIN || errno == EWOULDBLOCK) return std::nullopt;
    return errno_error(what);
}

std::unexpected<Error> user_error(std::string message, int err) {
    return std::unexpected(Error(std::move(message), err, ErrorKind::InvalidInput));
}

Result<void> check_name(const std::string& name) {
    // IFNAMSIZ counts the terminating NUL; the kernel would silently cut a
    // longer name and attach to a different interface.
    if (name.size() >= IFNAMSIZ)
        return make_error("tap name '{}' is longer than {} characters", name, IFNAMSIZ - 1);
    if (name.find('/') != std::string::npos || name.find_first_of(" \t\n") != std::string::npos)
        return make_error("tap name '{}' contains '/' or whitespace", name);
    return {};
}

Result<Fd> open_tun() {
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
    return Fd(raw);
}

Result<unsigned> tun_features(const Fd& fd) {
    unsigned int features = 0;
    if (::ioctl(fd.get(), TUNGETFEATURES, &features) < 0) return errno_error("TUNGETFEATURES");
    if (!(features & IFF_VNET_HDR))
        return make_error("this kernel's tun driver has no IFF_VNET_HDR support");
    return features;
}

// The flags of an existing tun/tap interface (its sysfs tun_flags), to say
// why the kernel refused to attach; nullopt if there is no such interface.
std::optional<unsigned> existing_tun_flags(const std::string& name) {
    if (name.empty()) return std::nullopt;
    auto text = read_file(fmt::format("/sys/class/net/{}/tun_flags", name));
    if (!text) return std::nullopt;
    std::string_view v = *text;
    if (v.starts_with("0x")) v.remove_prefix(2);
    unsigned flags = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), flags, 16);
    if (ec != std::errc() || end == v.data()) return std::nullopt;
    return flags;
}

// TUNSETIFF; returns the interface's actual name (the kernel picks one for
// an empty name) or the kernel's refusal in words an operator can act on.
Result<std::string> set_iff(const Fd& fd, const std::string& name, short flags, unsigned queues) {
    ifreq ifr{};
    std::memcpy(ifr.ifr_name, name.data(), name.size());
    ifr.ifr_flags = flags;
    if (::ioctl(fd.get(), TUNSETIFF, &ifr) == 0)
        return std::string(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
    const int err = errno;
    const bool mq = flags & IFF_MULTI_QUEUE;
    if (err == EPERM || err == EACCES)
        return errno_error(
            fmt::format("attaching tap '{}' needs CAP_NET_ADMIN, or a "
                        "persistent tap owned by this user "
                        "(ip tuntap add {} mode tap{} user $USER)",
                        name, name.empty() ? "NAME" : name, mq ? " multi_queue" : ""),
            err);
    if (err == EBUSY)
        return errno_error(fmt::format("tap '{}' is in use by another process", name), err);
    if (err == EINVAL) {
        const auto existing = existing_tun_flags(name);
        if (mq && existing && (*existing & IFF_TAP) && !(*existing & IFF_MULTI_QUEUE))
            return user_error(fmt::format("tap '{}' is a single-queue tap, but {} queue pairs need "
                                          "a multi-queue one: recreate it with `ip tuntap add {} "
                                          "mode tap multi_queue`, or give the NIC queues=1",
                                          name, queues, name),
                              err);
        return errno_error(
            fmt::format("tap '{}': the name exists but is not a tap with vnet headers, or is "
                        "not a valid interface name",
                        name),
            err);
    }
    if (mq && err == E2BIG)
        return user_error(fmt::format("tap '{}': the kernel refused a queue ({} asked for; a tap "
                                      "has at most 256, counting other users')",
                                      name, queues),
                          err);
    return errno_error(fmt::format("TUNSETIFF '{}'", name), err);
}

}  // namespace

Result<std::unique_ptr<Tap>> Tap::open(const std::string& name) {
    RV_TRY_VOID(check_name(name));
    Fd fd = RV_TRY(open_tun());
    const unsigned features = RV_TRY(tun_features(fd));
    auto actual = set_iff(fd, name, kTapFlags, 1);
    if (!actual && actual.error().os_errno() == EINVAL && (features & IFF_MULTI_QUEUE)) {
        // A persistent multi-queue tap refuses single-queue flags; one of
        // its queues serves as well.
        const auto existing = existing_tun_flags(name);
        if (existing && (*existing & IFF_TAP) && (*existing & IFF_MULTI_QUEUE)) {
            std::string mq_name = RV_TRY(set_iff(fd, name, kTapFlags | IFF_MULTI_QUEUE, 1));
            return std::unique_ptr<Tap>(new Tap(std::move(fd), std::move(mq_name), true));
        }
    }
    if (!actual) return std::unexpected(actual.error());
    return std::unique_ptr<Tap>(new Tap(std::move(fd), std::move(*actual), false));
}

Result<std::vector<std::unique_ptr<Tap>>> Tap::open_queues(const std::string& name,
                                                           unsigned queues) {
    std::vector<std::unique_ptr<Tap>> out;
    if (queues == 0) return make_error("tap '{}': no queues asked for", name);
    if (queues == 1) {
        out.push_back(RV_TRY(open(name)));
        return out;
    }
    RV_TRY_VOID(check_name(name));
    std::string actual = name;
    for (unsigned q = 0; q < queues; ++q) {
        Fd fd = RV_TRY(open_tun());
        if (q == 0) {
            const unsigned features = RV_TRY(tun_features(fd));
            if (!(features & IFF_MULTI_QUEUE))
                return user_error(
                    "this kernel's tun driver has no multi-queue taps "
                    "(IFF_MULTI_QUEUE); give the NIC queues=1",
                    EINVAL);
        }
        // The first queue's actual name: the kernel names an unnamed tap once.
        actual = RV_TRY(with_context(set_iff(fd, actual, kTapFlags | IFF_MULTI_QUEUE, queues),
                                     fmt::format("queue {} of {}", q, queues)));
        out.push_back(std::unique_ptr<Tap>(new Tap(std::move(fd), actual, true)));
    }
    return out;
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
    // A detached queue's ioctls fail (EBADFD); the offloads are the whole
    // interface's anyway, so the attached queues carry them: apply on attach.
    if (!m_attached) {
        m_pending_offloads = offloads;
        return {};
    }
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

Result<void> Tap::set_queue_attached(bool attached) {
    if (!m_multi_queue || attached == m_attached) return {};
    ifreq ifr{};
    ifr.ifr_flags = attached ? IFF_ATTACH_QUEUE : IFF_DETACH_QUEUE;
    if (::ioctl(m_fd.get(), TUNSETQUEUE, &ifr) < 0)
        return errno_error(
            fmt::format("TUNSETQUEUE {} on tap '{}'", attached ? "attach" : "detach", m_name));
    m_attached = attached;
    if (attached && m_pending_offloads) return set_offloads(*std::exchange(m_pending_offloads, {}));
    return {};
}

}  // namespace rv
