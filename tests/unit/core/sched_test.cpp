#include "base/sched.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <thread>

namespace rv {
namespace {

// Runs fn on a thread of its own, put in SCHED_OTHER first (its nice value
// is the process's), so that no policy leaks into the other tests.
template <typename Fn>
void on_fresh_thread(Fn fn) {
    std::thread t([&] {
        sched_param param{};
        ASSERT_EQ(::sched_setscheduler(0, SCHED_OTHER, &param), 0) << std::strerror(errno);
        fn();
    });
    t.join();
}

int policy_of_new_thread() {
    int policy = -1;
    std::thread([&] { policy = ::sched_getscheduler(0); }).join();
    return policy;
}

TEST(ThreadSched, BatchPutsTheThreadAndTheThreadsItCreatesInSchedBatch) {
    on_fresh_thread([] {
        ASSERT_TRUE(apply_thread_sched(ThreadSched::Batch));
        EXPECT_EQ(::sched_getscheduler(0), SCHED_BATCH);
        EXPECT_EQ(policy_of_new_thread(), SCHED_BATCH);
    });
}

TEST(ThreadSched, BatchKeepsTheNiceValue) {
    on_fresh_thread([] {
        ASSERT_EQ(::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), 7), 0);
        ASSERT_TRUE(apply_thread_sched(ThreadSched::Batch));
        EXPECT_EQ(::sched_getscheduler(0), SCHED_BATCH);
        errno = 0;
        EXPECT_EQ(::getpriority(PRIO_PROCESS, static_cast<id_t>(::gettid())), 7);
    });
}

TEST(ThreadSched, NormalLeavesTheThreadAsItWas) {
    on_fresh_thread([] {
        ASSERT_TRUE(apply_thread_sched(ThreadSched::Normal));
        EXPECT_EQ(::sched_getscheduler(0), SCHED_OTHER);
        EXPECT_EQ(policy_of_new_thread(), SCHED_OTHER);
    });
}

TEST(ThreadSched, BatchLeavesAPolicyTheProcessWasStartedWith) {
    on_fresh_thread([] {
        sched_param param{};
        ASSERT_EQ(::sched_setscheduler(0, SCHED_IDLE, &param), 0) << std::strerror(errno);
        ASSERT_TRUE(apply_thread_sched(ThreadSched::Batch));
        EXPECT_EQ(::sched_getscheduler(0), SCHED_IDLE);
    });
}

}  // namespace
}  // namespace rv
