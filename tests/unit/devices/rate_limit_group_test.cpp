// Rate limit groups: buckets shared through memory every member maps. Two
// memberships of one file in one test play two VMM processes (each has its
// own descriptor, flock and mapping); forked children play real ones. Time
// is a manual clock except where the mutex's own deadline is under test.
// Covered: the shared bucket, all-or-nothing with a drive's own limiter and
// the longer of the two waits, joining with other limits, foreign and
// damaged files, the file's removal by the last member, a file left by
// killed members, and the robust mutex after its holder died.
#include "devices/rate_limit_group.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "devices/rate_limit_group_file.h"
#include "devices/rate_limiter.h"
#include "support/manual_clock.h"

namespace rv::test {
namespace {

constexpr uint64_t kMs = 1'000'000;

// 1000 bytes per second: a 1000-byte bucket refilled in 1 s.
RateLimitGroupConfig group_config(std::string id = "g", uint64_t size = 1000,
                                  uint64_t refill_ms = 1000) {
    return RateLimitGroupConfig{id, RateLimiterConfig{.bandwidth = TokenBucketConfig{size, 0, refill_ms}}};
}

// Runs `child` in a forked process; its exit status (0: its checks passed;
// a child may also _exit itself, skipping every destructor as a killed
// process would).
template <typename Fn>
int in_child(Fn child) {
    const pid_t pid = ::fork();
    if (pid == 0) {
        if constexpr (std::is_void_v<decltype(child())>) {
            child();
            ::_exit(0);
        } else {
            ::_exit(child());
        }
    }
    int status = 0;
    ::waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

class RateLimitGroupTest : public testing::Test {
  protected:
    void SetUp() override {
        char tmpl[] = "/tmp/rv-rlg-XXXXXX";
        ASSERT_NE(::mkdtemp(tmpl), nullptr);
        m_root = tmpl;
        m_dir = rate_limit_group_dir(m_root);
    }
    void TearDown() override { std::filesystem::remove_all(m_root); }

    Result<std::shared_ptr<RateLimitGroup>> join(const RateLimitGroupConfig& config = group_config()) {
        return join_rate_limit_group(m_dir, config, m_clock.function());
    }
    std::string path(const std::string& id = "g") const { return m_dir + "/" + id; }
    bool exists(const std::string& id = "g") const { return std::filesystem::exists(path(id)); }
    void write_file(const std::string& bytes, const std::string& id = "g") {
        std::filesystem::create_directories(m_dir);
        std::ofstream(path(id), std::ios::binary) << bytes;
    }

    std::string m_root, m_dir;
    ManualNsClock m_clock;
};

TEST_F(RateLimitGroupTest, TwoMembersOfOneFileShareTheBucket) {
    auto a = join();
    ASSERT_TRUE(a) << a.error().message();
    auto b = join();
    ASSERT_TRUE(b) << b.error().message();
    EXPECT_TRUE(exists());
    struct stat st {};
    ASSERT_EQ(::stat(path().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u);

    const uint64_t t = m_clock();
    EXPECT_TRUE((*a)->try_take(600, 1, t));
    EXPECT_FALSE((*b)->try_take(600, 1, t));  // only 400 left, in either mapping
    EXPECT_TRUE((*b)->try_take(400, 1, t));
    EXPECT_EQ((*a)->status().bandwidth_budget, 0);
    EXPECT_EQ((*a)->ns_until(100, 1, t), 100 * kMs);
    // Refill is shared too: 250 ms later a quarter, for whoever comes first.
    EXPECT_TRUE((*b)->try_take(250, 1, t + 250 * kMs));
    EXPECT_FALSE((*a)->try_take(1, 1, t + 250 * kMs));
    // A member reading the clock before another locked adds nothing twice.
    EXPECT_FALSE((*a)->try_take(1, 1, t + 200 * kMs));
}

TEST_F(RateLimitGroupTest, ForkedProcessesShareTheBucket) {
    auto group = RateLimitGroup::anonymous(group_config(), m_clock());
    ASSERT_TRUE(group) << group.error().message();
    const uint64_t t = m_clock();
    // The child takes 700 of the parent's 1000 (anonymous MAP_SHARED memory).
    EXPECT_EQ(in_child([&] { return (*group)->try_take(700, 1, t) ? 0 : 1; }), 0);
    EXPECT_FALSE((*group)->try_take(301, 1, t));
    EXPECT_TRUE((*group)->try_take(300, 1, t));
    // And a child that joins the file itself, as another VMM would.
    auto member = join();
    ASSERT_TRUE(member);
    EXPECT_EQ(in_child([&] {
                  auto mine = join_rate_limit_group(m_dir, group_config(), [t] { return t; });
                  return mine && (*mine)->try_take(1000, 1, t) && !(*mine)->try_take(1, 1, t) ? 0 : 1;
              }),
              0);
    EXPECT_FALSE((*member)->try_take(1, 1, t));
    EXPECT_TRUE(exists());  // the child left; we are still a member
}

TEST_F(RateLimitGroupTest, AllOrNothingWithTheDrivesOwnLimiter) {
    auto group = RateLimitGroup::anonymous(group_config("g", 1000, 1000), m_clock());
    ASSERT_TRUE(group);
    // The drive's own bucket: 500 bytes per 250 ms (2000/s).
    RateLimiter drive(RateLimiterConfig{.bandwidth = TokenBucketConfig{500, 0, 250}},
                      m_clock.function(), *group);
    EXPECT_FALSE(drive.unlimited());
    EXPECT_TRUE(drive.consume(400, 1));
    EXPECT_EQ((*group)->status().bandwidth_budget, 600);
    EXPECT_EQ(drive.bandwidth().budget(), 100);
    // Its own bucket refuses 200: the group keeps its 600.
    EXPECT_FALSE(drive.consume(200, 1));
    EXPECT_EQ((*group)->status().bandwidth_budget, 600);
    // Another member empties the group: now the group refuses, and the
    // drive's own bucket keeps its 100.
    ASSERT_TRUE((*group)->try_take(600, 1, m_clock()));
    EXPECT_FALSE(drive.consume(100, 1));
    EXPECT_EQ(drive.bandwidth().budget(), 100);
    EXPECT_EQ(drive.throttled(), 2u);
    // The wait is the longer one: 100 bytes from the group take 100 ms;
    // 400 from the drive's own bucket take 150 ms, from the group 400.
    EXPECT_EQ(drive.ns_until_available(100, 1), 100 * kMs);
    EXPECT_EQ(drive.ns_until_available(400, 1), 400 * kMs);
    m_clock.advance_ms(100);
    EXPECT_TRUE(drive.consume(100, 1));
    EXPECT_EQ(drive.bandwidth().budget(), 200);  // 100 + 200 refilled - 100
    EXPECT_EQ((*group)->status().bandwidth_budget, 0);
    // A refund goes back to both.
    drive.refund(100, 1);
    EXPECT_EQ(drive.bandwidth().budget(), 300);
    EXPECT_EQ((*group)->status().bandwidth_budget, 100);
    // Without buckets of its own, a drive in a group is limited by the group alone.
    RateLimiter only_group(std::nullopt, m_clock.function(), *group);
    EXPECT_FALSE(only_group.unlimited());
    EXPECT_FALSE(only_group.config());
    EXPECT_FALSE(only_group.consume(101, 1));
    EXPECT_TRUE(only_group.consume(100, 1));
    // Its own limits change; the group stays.
    only_group.reconfigure(std::nullopt);
    EXPECT_FALSE(only_group.unlimited());
    EXPECT_FALSE(only_group.consume(1, 1));
}

TEST_F(RateLimitGroupTest, OtherLimitsThanTheMembersAreAnInputErrorNamingBoth) {
    auto a = join(group_config("g", 1000, 1000));
    ASSERT_TRUE(a);
    auto b = join(group_config("g", 2000, 1000));
    ASSERT_FALSE(b);
    EXPECT_TRUE(b.error().is_input());
    const std::string& m = b.error().message();
    EXPECT_NE(m.find("size 2000"), std::string::npos) << m;
    EXPECT_NE(m.find("size 1000"), std::string::npos) << m;
    EXPECT_NE(m.find(path()), std::string::npos) << m;
    // The refused joiner leaves the file to the members.
    EXPECT_TRUE(exists());
    EXPECT_TRUE((*a)->try_take(1000, 1, m_clock()));
    // An ops bucket the members do not have differs too.
    auto c = join(RateLimitGroupConfig{
        "g", {.bandwidth = TokenBucketConfig{1000, 0, 1000}, .ops = TokenBucketConfig{10, 0, 1000}}});
    ASSERT_FALSE(c);
    EXPECT_NE(c.error().message().find("ops {size 10"), std::string::npos) << c.error().message();
    // Buckets that do not limit are no difference.
    auto d = join(RateLimitGroupConfig{
        "g", {.bandwidth = TokenBucketConfig{1000, 0, 1000}, .ops = TokenBucketConfig{0, 0, 0}}});
    EXPECT_TRUE(d) << d.error().message();
}

TEST_F(RateLimitGroupTest, TheLastMemberOutRemovesTheFile) {
    auto a = join();
    auto b = join();
    ASSERT_TRUE(a && b);
    a->reset();
    EXPECT_TRUE(exists());  // b still uses it
    ASSERT_TRUE((*b)->try_take(1000, 1, m_clock()));
    b->reset();
    EXPECT_FALSE(exists());
    // The next VM starts over: full buckets.
    auto c = join();
    ASSERT_TRUE(c);
    EXPECT_EQ((*c)->status().bandwidth_budget, 1000);
}

TEST_F(RateLimitGroupTest, AFileLeftByKilledMembersIsTakenOver) {
    // A member that exits without leaving (as SIGKILL would): the file stays.
    const uint64_t t = m_clock();
    auto killed_member = [&] {
        auto g = join_rate_limit_group(m_dir, group_config(), [t] { return t; });
        if (!g || !(*g)->try_take(1000, 1, t)) return 1;
        ::_exit(0);  // no destructors: the membership is never given up
    };
    ASSERT_EQ(in_child(killed_member), 0);
    ASSERT_TRUE(exists());
    // Same limits: its buckets carry on (emptied by the one that died).
    {
        auto same = join();
        ASSERT_TRUE(same) << same.error().message();
        EXPECT_EQ((*same)->status().bandwidth_budget, 0);
    }
    EXPECT_FALSE(exists());  // we were its only member
    ASSERT_EQ(in_child(killed_member), 0);
    // Other limits: nobody to disagree, so it is made again with them.
    auto other = join(group_config("g", 5000, 1000));
    ASSERT_TRUE(other) << other.error().message();
    EXPECT_EQ((*other)->status().bandwidth_budget, 5000);
}

TEST_F(RateLimitGroupTest, ForeignDamagedOrIncompleteFiles) {
    // Another size: not ours, an error, left alone.
    write_file("hello");
    auto small = join();
    ASSERT_FALSE(small);
    EXPECT_NE(small.error().message().find("not a ringvisor rate limit group"), std::string::npos)
        << small.error().message();
    EXPECT_TRUE(exists());
    // The right size, a foreign magic.
    std::string bytes(RateLimitGroup::state_size(), '\0');
    std::memcpy(bytes.data(), "NOTAGRP!", 8);
    write_file(bytes);
    auto foreign = join();
    ASSERT_FALSE(foreign);
    EXPECT_NE(foreign.error().message().find("magic"), std::string::npos) << foreign.error().message();
    // Another layout version: the version field follows the magic.
    alignas(8) std::byte state[512];
    ASSERT_GE(sizeof(state), RateLimitGroup::state_size());
    ASSERT_TRUE(RateLimitGroup::initialize({state, RateLimitGroup::state_size()},
                                           group_config().limits, m_clock()));
    std::string good(reinterpret_cast<const char*>(state), RateLimitGroup::state_size());
    std::string other_version = good;
    other_version[8] = 99;
    write_file(other_version);
    auto old = join();
    ASSERT_FALSE(old);
    EXPECT_NE(old.error().message().find("another ringvisor version"), std::string::npos)
        << old.error().message();
    // Damaged buckets (what a process scribbling over the file would leave)
    // are found before anything divides by them.
    auto damaged = good;
    for (size_t at = damaged.size() - 64; at < damaged.size() - 8; ++at) damaged[at] = '\x7f';
    write_file(damaged);
    auto bad = join();
    ASSERT_FALSE(bad);
    EXPECT_NE(bad.error().message().find("damaged"), std::string::npos) << bad.error().message();
    // A state whose creator died half-way (no magic yet): made afresh.
    write_file(std::string(RateLimitGroup::state_size(), '\0'));
    auto fresh = join();
    ASSERT_TRUE(fresh) << fresh.error().message();
    EXPECT_EQ((*fresh)->status().bandwidth_budget, 1000);
    // In memory too: memory that holds no group.
    alignas(8) std::byte zeros[512]{};
    EXPECT_FALSE(RateLimitGroup::initialized({zeros, RateLimitGroup::state_size()}));
    EXPECT_FALSE(RateLimitGroup::open({zeros, RateLimitGroup::state_size()}, group_config(),
                                      "zeros", nullptr));
    EXPECT_FALSE(RateLimitGroup::open({zeros, 16}, group_config(), "short", nullptr));
}

TEST_F(RateLimitGroupTest, BadIdsAndGroupsThatLimitNothing) {
    for (const char* id : {"", "a/b", "..", "x y"}) {
        auto r = join(group_config(id));
        ASSERT_FALSE(r) << id;
        EXPECT_TRUE(r.error().is_input()) << id;
    }
    auto none = join(RateLimitGroupConfig{"g", {}});
    ASSERT_FALSE(none);
    EXPECT_TRUE(none.error().is_input());
    // A run directory that cannot be made is the user's to fix.
    auto denied = join_rate_limit_group("/proc/rv-no/rate-limit-groups", group_config());
    ASSERT_FALSE(denied);
    EXPECT_TRUE(denied.error().is_input());
    EXPECT_NE(denied.error().message().find("RINGVISOR_RUN_DIR"), std::string::npos);
}

// A member that dies holding the lock: the next one gets EOWNERDEAD, marks
// the mutex consistent and goes on; the buckets are as the dead one left them.
TEST_F(RateLimitGroupTest, TheLockOutlivesAHolderThatDied) {
    auto group = join();
    ASSERT_TRUE(group);
    const uint64_t t = m_clock();
    ASSERT_TRUE((*group)->try_take(300, 1, t));
    EXPECT_EQ(in_child([&] {
                  auto mine = join_rate_limit_group(m_dir, group_config(), [t] { return t; });
                  if (!mine) return 1;
                  auto held = (*mine)->hold();
                  if (!held) return 2;
                  ::_exit(0);  // dies holding it
              }),
              0);
    EXPECT_TRUE((*group)->try_take(700, 1, t));
    EXPECT_FALSE((*group)->try_take(1, 1, t));
    EXPECT_EQ((*group)->status().recoveries, 1u);
    // And again in a forked child that dies holding an anonymous group's lock.
    auto anon = RateLimitGroup::anonymous(group_config(), t);
    ASSERT_TRUE(anon);
    EXPECT_EQ(in_child([&] {
                  auto held = (*anon)->hold();
                  ::_exit(held ? 0 : 1);
              }),
              0);
    EXPECT_TRUE((*anon)->try_take(1000, 1, t));
    EXPECT_EQ((*anon)->status().recoveries, 1u);
}

// A member stopped while it holds the lock (SIGSTOP, a debugger) stalls the
// others' group I/O, never their event loops: refused, retried in 1 ms.
TEST_F(RateLimitGroupTest, ALockHeldTooLongRefusesForAMoment) {
    auto group = RateLimitGroup::anonymous(group_config(), m_clock());
    ASSERT_TRUE(group);
    int ready[2];
    ASSERT_EQ(::pipe(ready), 0);
    const pid_t pid = ::fork();
    if (pid == 0) {
        auto held = (*group)->hold();
        char c = held ? 'y' : 'n';
        (void)!::write(ready[1], &c, 1);
        ::pause();
        ::_exit(0);
    }
    char c = 0;
    ASSERT_EQ(::read(ready[0], &c, 1), 1);
    ASSERT_EQ(c, 'y');
    const uint64_t t = m_clock();
    const uint64_t before = monotonic_ns();
    EXPECT_FALSE((*group)->try_take(1, 1, t));
    EXPECT_EQ((*group)->ns_until(1, 1, t), RateLimitGroup::kLockRetryNs);
    EXPECT_LT(monotonic_ns() - before, 500 * kMs);  // two waits of kLockWaitNs, not forever
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    EXPECT_TRUE((*group)->try_take(1, 1, t));
    EXPECT_EQ((*group)->status().recoveries, 1u);
    ::close(ready[0]);
    ::close(ready[1]);
}

}  // namespace
}  // namespace rv::test
