// open_virtio_net_taps against the real /dev/net/tun: the default count
// falls back to one pair on a persistent single-queue tap, a given count is
// refused there. Skips where tun cannot be used (no device, not root).
#include "vmm/net_taps.h"

#include <gtest/gtest.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "backends/net/tap.h"

namespace rv {
namespace {

// A persistent single-queue tap, removed again by the destructor.
class PersistentTap {
  public:
    explicit PersistentTap(std::string name) : m_name(std::move(name)) {
        auto tap = Tap::open(m_name);
        if (!tap) {
            m_skip = tap.error().message();
            return;
        }
        m_made = ::ioctl((*tap)->fd(), TUNSETPERSIST, 1) == 0;
        if (!m_made) m_skip = "TUNSETPERSIST refused";
    }
    ~PersistentTap() {
        if (!m_made) return;
        if (auto tap = Tap::open(m_name)) (void)::ioctl((*tap)->fd(), TUNSETPERSIST, 0);
    }
    const std::string& skip() const { return m_skip; }

  private:
    std::string m_name;
    std::string m_skip;
    bool m_made{false};
};

TEST(NetTaps, DefaultFallsBackToOnePairOnASingleQueueTap) {
    const std::string name = fmt::format("rvnt{}", ::getpid() % 100000);
    PersistentTap persistent(name);
    if (!persistent.skip().empty()) GTEST_SKIP() << "no usable tun: " << persistent.skip();
    NetConfig net;
    net.id = "net0";
    net.tap = name;
    auto taps = open_virtio_net_taps(net, 2);
    ASSERT_TRUE(taps) << taps.error().message();
    EXPECT_EQ(taps->size(), 1u) << "one pair, on the plain tap";
    taps->clear();

    net.queues = 2;
    auto given = open_virtio_net_taps(net, 2);
    ASSERT_FALSE(given);
    EXPECT_EQ(given.error().kind(), ErrorKind::InvalidInput);
    EXPECT_NE(given.error().message().find("network interface 'net0'"), std::string::npos);
    EXPECT_NE(given.error().message().find("single-queue tap"), std::string::npos)
        << given.error().message();
}

TEST(NetTaps, DefaultIsOnePairPerVcpu) {
    const std::string name = fmt::format("rvnu{}", ::getpid() % 100000);
    NetConfig net;
    net.tap = name;
    auto taps = open_virtio_net_taps(net, 3);
    if (!taps && (taps.error().os_errno() == EPERM || taps.error().os_errno() == ENOENT ||
                  taps.error().os_errno() == ENODEV || taps.error().os_errno() == EACCES))
        GTEST_SKIP() << "no usable tun: " << taps.error().message();
    ASSERT_TRUE(taps) << taps.error().message();
    EXPECT_EQ(taps->size(), 3u);
}

}  // namespace
}  // namespace rv
