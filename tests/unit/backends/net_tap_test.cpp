// Tap against the real /dev/net/tun: open, header size, offloads, and one
// frame each way through an AF_PACKET socket on the interface. Skips where
// the host has no tun device or we lack CAP_NET_ADMIN.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "backends/net/tap.h"

namespace rv {
namespace {

constexpr uint16_t kTestEtherType = 0x88b5;  // IEEE local experimental
constexpr size_t kHdr = 12;

// A per-process name, so concurrent test runs do not fight over one tap.
std::string test_tap_name() {
    return fmt::format("rvtest{}", ::getpid() % 100000);
}

std::unique_ptr<Tap> open_or_skip(const std::string& name, std::string& skip_reason) {
    auto tap = Tap::open(name);
    if (tap) return std::move(*tap);
    int err = tap.error().os_errno();
    if (err == ENOENT || err == ENODEV || err == ENXIO || err == EPERM || err == EACCES) {
        skip_reason = tap.error().message();
        return nullptr;
    }
    ADD_FAILURE() << tap.error().message();
    return nullptr;
}

std::vector<uint8_t> test_frame(uint8_t seed) {
    std::vector<uint8_t> f(ETH_ZLEN + 40);
    std::memset(f.data(), 0xff, 6);  // broadcast destination
    const uint8_t src[6] = {0x52, 0x54, 0x00, 0xab, 0xcd, seed};
    std::memcpy(f.data() + 6, src, 6);
    f[12] = kTestEtherType >> 8;
    f[13] = kTestEtherType & 0xff;
    for (size_t i = 14; i < f.size(); ++i) f[i] = static_cast<uint8_t>(seed + i);
    return f;
}

bool set_link_up(const std::string& name) {
    int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) return false;
    ifreq ifr{};
    std::strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
    bool ok = ::ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
    ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP);
    ok = ok && ::ioctl(s, SIOCSIFFLAGS, &ifr) == 0;
    ::close(s);
    return ok;
}

TEST(TapTest, RejectsNamesTheKernelWouldMangle) {
    auto tap = Tap::open("a-name-much-too-long");
    ASSERT_FALSE(tap);
    EXPECT_NE(tap.error().message().find("longer than 15"), std::string::npos)
        << tap.error().message();
    EXPECT_FALSE(Tap::open("bad/name"));
}

TEST(TapTest, OpensConfiguresAndDisappearsOnClose) {
    const std::string name = test_tap_name();
    const bool existed = if_nametoindex(name.c_str()) != 0;
    std::string skip;
    auto tap = open_or_skip(name, skip);
    if (!tap) {
        if (!skip.empty()) {
            GTEST_SKIP() << "no usable /dev/net/tun here: " << skip;
        }
        return;
    }
    EXPECT_EQ(tap->name(), name);
    EXPECT_GE(tap->fd(), 0);
    EXPECT_NE(if_nametoindex(name.c_str()), 0u) << "the interface exists (ip link)";
    EXPECT_TRUE(tap->set_vnet_hdr_size(12));
    EXPECT_TRUE(tap->set_offloads({.csum = true, .tso4 = true, .tso6 = true, .ecn = true}));
    EXPECT_TRUE(tap->set_offloads({.tso4 = true})) << "TSO without csum is masked, not rejected";
    EXPECT_TRUE(tap->set_offloads({}));

    std::vector<uint8_t> buf(2048);
    iovec iov{buf.data(), buf.size()};
    auto r = tap->readv(std::span(&iov, 1));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_FALSE(*r) << "nothing queued: would block, not an error";

    tap.reset();
    if (!existed) {
        EXPECT_EQ(if_nametoindex(name.c_str()), 0u) << "non-persistent tap is gone";
    }
}

TEST(TapTest, FramesPassBothWays) {
    const std::string name = test_tap_name();
    std::string skip;
    auto tap = open_or_skip(name, skip);
    if (!tap) {
        if (!skip.empty()) {
            GTEST_SKIP() << "no usable /dev/net/tun here: " << skip;
        }
        return;
    }
    ASSERT_TRUE(tap->set_vnet_hdr_size(kHdr));
    ASSERT_TRUE(tap->set_offloads({}));

    // Sending while the link is down is refused (EIO), not "would block".
    std::vector<uint8_t> out(kHdr, 0);
    auto frame = test_frame(1);
    out.insert(out.end(), frame.begin(), frame.end());
    iovec out_iov{out.data(), out.size()};
    auto down = tap->writev(std::span(&out_iov, 1));
    EXPECT_FALSE(down) << "writing to a down tap should fail";

    ASSERT_TRUE(set_link_up(name)) << "SIOCSIFFLAGS: " << std::strerror(errno);
    int ifindex = static_cast<int>(if_nametoindex(name.c_str()));
    int ps = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(kTestEtherType));
    if (ps < 0) {
        GTEST_SKIP() << "no AF_PACKET sockets: " << std::strerror(errno);
    }
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(kTestEtherType);
    sll.sll_ifindex = ifindex;
    ASSERT_EQ(::bind(ps, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)), 0);

    // Guest -> host: a frame written to the tap arrives on the interface.
    auto sent = tap->writev(std::span(&out_iov, 1));
    ASSERT_TRUE(sent) << sent.error().message();
    ASSERT_TRUE(*sent);
    EXPECT_EQ(**sent, out.size());
    pollfd pp{ps, POLLIN, 0};
    ASSERT_EQ(::poll(&pp, 1, 2000), 1) << "frame did not reach the interface";
    std::vector<uint8_t> got(2048);
    ssize_t n = ::recv(ps, got.data(), got.size(), 0);
    ASSERT_GT(n, 0);
    got.resize(static_cast<size_t>(n));
    EXPECT_EQ(got, frame);

    // Host -> guest: a frame sent on the interface comes out of the tap with
    // a 12-byte virtio-net header in front. Other traffic (IPv6 router
    // solicitations on link-up) is skipped.
    auto back = test_frame(2);
    ASSERT_EQ(
        ::sendto(ps, back.data(), back.size(), 0, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)),
        static_cast<ssize_t>(back.size()));
    std::vector<uint8_t> in(70000);
    iovec in_iov{in.data(), in.size()};
    bool found = false;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    while (!found && std::chrono::steady_clock::now() < deadline) {
        pollfd tp{tap->fd(), POLLIN, 0};
        if (::poll(&tp, 1, 100) != 1) continue;
        auto r = tap->readv(std::span(&in_iov, 1));
        ASSERT_TRUE(r) << r.error().message();
        if (!*r || **r < kHdr + 14) continue;
        if (in[kHdr + 12] != (kTestEtherType >> 8) || in[kHdr + 13] != (kTestEtherType & 0xff))
            continue;
        ASSERT_EQ(**r, kHdr + back.size());
        EXPECT_EQ(std::vector<uint8_t>(in.begin() + kHdr, in.begin() + static_cast<long>(**r)),
                  back);
        EXPECT_EQ(in[1], 0u) << "no GSO without offloads";
        found = true;
    }
    EXPECT_TRUE(found) << "frame sent on the interface never came out of the tap";
    ::close(ps);
}

}  // namespace
}  // namespace rv
