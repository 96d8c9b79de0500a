// Multi-queue taps against the real /dev/net/tun: N fds on one interface,
// queues detached and attached again (TUNSETQUEUE), offloads set while a
// queue is detached, and the clear refusal of a persistent single-queue tap.
// Skips where the host has no tun device or we lack CAP_NET_ADMIN.
#include <gtest/gtest.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "backends/net/tap.h"

namespace rv {
namespace {

std::string test_tap_name(std::string_view tag) {
    return fmt::format("rv{}{}", tag, ::getpid() % 100000);
}

// Why this host cannot run the test, or empty if it can.
std::string tun_unusable(const Error& error) {
    int err = error.os_errno();
    if (err == ENOENT || err == ENODEV || err == ENXIO || err == EPERM || err == EACCES)
        return error.message();
    return {};
}

// Opens `queues` queues of tap `name`; on a host where tun cannot be used
// (no device, no CAP_NET_ADMIN) says why in `skip` instead.
Result<std::vector<std::unique_ptr<Tap>>> open_or_skip(const std::string& name, unsigned queues,
                                                       std::string& skip) {
    auto taps = Tap::open_queues(name, queues);
    if (!taps) skip = tun_unusable(taps.error());
    return taps;
}

unsigned tun_flags(const std::string& name) {
    FILE* f = std::fopen(fmt::format("/sys/class/net/{}/tun_flags", name).c_str(), "r");
    if (!f) return 0;
    unsigned flags = 0;
    if (std::fscanf(f, "%x", &flags) != 1) flags = 0;
    std::fclose(f);
    return flags;
}

TEST(TapMqTest, OpensOneFdPerQueueOnOneInterface) {
    const std::string name = test_tap_name("mq");
    std::string skip;
    auto taps = open_or_skip(name, 2, skip);
    if (!skip.empty()) GTEST_SKIP() << "no usable /dev/net/tun here: " << skip;
    ASSERT_TRUE(taps) << taps.error().message();
    ASSERT_EQ(taps->size(), 2u);
    Tap& q0 = *(*taps)[0];
    Tap& q1 = *(*taps)[1];
    EXPECT_GE(q0.fd(), 0);
    EXPECT_GE(q1.fd(), 0);
    EXPECT_NE(q0.fd(), q1.fd());
    EXPECT_EQ(q0.name(), name);
    EXPECT_EQ(q1.name(), name);
    EXPECT_TRUE(q0.multi_queue());
    EXPECT_TRUE(q1.multi_queue());
    EXPECT_TRUE(tun_flags(name) & IFF_MULTI_QUEUE) << "the kernel made a multi-queue tap";
    // Both fds are on the same interface: the kernel reports its name on each.
    for (const Tap* t : {&q0, &q1}) {
        ifreq ifr{};
        ASSERT_EQ(::ioctl(t->fd(), TUNGETIFF, &ifr), 0) << std::strerror(errno);
        EXPECT_EQ(std::string(ifr.ifr_name), name);
        EXPECT_TRUE(ifr.ifr_flags & IFF_MULTI_QUEUE);
        EXPECT_TRUE(ifr.ifr_flags & IFF_VNET_HDR);
    }
    for (auto& t : *taps) ASSERT_TRUE(t->set_vnet_hdr_size(12));

    // Detached (older kernels refuse a detached queue's ioctls: offloads
    // wait for the attach).
    ASSERT_TRUE(q1.set_queue_attached(false)) << "detach";
    EXPECT_FALSE(q1.attached());
    EXPECT_TRUE(q1.set_queue_attached(false)) << "idempotent, though the kernel says EINVAL";
    // The kernel's own view: attaching works only on a detached queue.
    auto raw_attach_refused = [&] {
        ifreq ifr{};
        ifr.ifr_flags = IFF_ATTACH_QUEUE;
        return ::ioctl(q1.fd(), TUNSETQUEUE, &ifr) != 0;
    };
    EXPECT_TRUE(q1.set_offloads({.csum = true, .tso4 = true}));
    ASSERT_TRUE(q1.set_queue_attached(true)) << "attach (and the held offloads)";
    EXPECT_TRUE(q1.attached());
    EXPECT_TRUE(raw_attach_refused()) << "the kernel sees it attached";
    EXPECT_TRUE(q1.set_queue_attached(true));
    ASSERT_TRUE(q1.set_queue_attached(false));
    EXPECT_FALSE(raw_attach_refused()) << "the kernel saw it detached (and attached it now)";

    taps->clear();
    EXPECT_EQ(if_nametoindex(name.c_str()), 0u) << "non-persistent tap is gone";
}

TEST(TapMqTest, OneQueueIsThePlainTap) {
    const std::string name = test_tap_name("sq");
    std::string skip;
    auto taps = open_or_skip(name, 1, skip);
    if (!skip.empty()) GTEST_SKIP() << "no usable /dev/net/tun here: " << skip;
    ASSERT_TRUE(taps) << taps.error().message();
    ASSERT_EQ(taps->size(), 1u);
    EXPECT_FALSE((*taps)[0]->multi_queue());
    EXPECT_FALSE(tun_flags(name) & IFF_MULTI_QUEUE) << "no IFF_MULTI_QUEUE for one queue";
    EXPECT_TRUE((*taps)[0]->set_queue_attached(false)) << "a no-op on a single-queue tap";
    EXPECT_TRUE((*taps)[0]->attached());
}

// A persistent tap made without multi_queue, then asked for 2 queues.
TEST(TapMqTest, SingleQueuePersistentTapIsRefusedClearly) {
    const std::string name = test_tap_name("pq");
    {
        std::string skip;
        auto tap = open_or_skip(name, 1, skip);
        if (!skip.empty()) GTEST_SKIP() << "no usable /dev/net/tun here: " << skip;
        ASSERT_TRUE(tap) << tap.error().message();
        ASSERT_EQ(::ioctl((*tap)[0]->fd(), TUNSETPERSIST, 1), 0) << std::strerror(errno);
    }
    auto mq = Tap::open_queues(name, 2);
    // Remove the persistent tap before asserting anything.
    {
        auto tap = Tap::open(name);
        ASSERT_TRUE(tap) << tap.error().message();
        ASSERT_EQ(::ioctl((*tap)->fd(), TUNSETPERSIST, 0), 0);
    }
    ASSERT_FALSE(mq);
    EXPECT_EQ(mq.error().kind(), ErrorKind::InvalidInput);
    EXPECT_NE(mq.error().message().find("single-queue tap"), std::string::npos)
        << mq.error().message();
    EXPECT_NE(mq.error().message().find("multi_queue"), std::string::npos) << mq.error().message();
    EXPECT_EQ(if_nametoindex(name.c_str()), 0u);
}

// A persistent multi-queue tap serves a one-queue NIC too.
TEST(TapMqTest, PersistentMultiQueueTapOpensWithOneQueue) {
    const std::string name = test_tap_name("pm");
    {
        std::string skip;
        auto taps = open_or_skip(name, 2, skip);
        if (!skip.empty()) GTEST_SKIP() << "no usable /dev/net/tun here: " << skip;
        ASSERT_TRUE(taps) << taps.error().message();
        ASSERT_EQ(::ioctl((*taps)[0]->fd(), TUNSETPERSIST, 1), 0) << std::strerror(errno);
    }
    auto one = Tap::open(name);
    bool multi = one && (*one)->multi_queue();
    if (one) {
        ASSERT_EQ(::ioctl((*one)->fd(), TUNSETPERSIST, 0), 0);
    }
    ASSERT_TRUE(one) << one.error().message();
    EXPECT_TRUE(multi);
    one->reset();
    EXPECT_EQ(if_nametoindex(name.c_str()), 0u);
}

TEST(TapMqTest, RefusesZeroQueues) {
    EXPECT_FALSE(Tap::open_queues("rvzero", 0));
}

}  // namespace
}  // namespace rv
