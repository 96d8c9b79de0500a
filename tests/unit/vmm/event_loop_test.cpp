#include "vmm/event_loop.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace rv {
namespace {

struct EventLoopTest : ::testing::Test {
    std::unique_ptr<EventLoop> loop = std::move(*EventLoop::create());
    // Runs the loop until the posted marker runs (everything ready before it ran).
    void run_once() {
        loop->post([this] { loop->stop(); });
        ASSERT_TRUE(loop->run());
    }
};

TEST_F(EventLoopTest, PostedFunctionsRunInOrderOnTheLoop) {
    std::vector<int> order;
    std::thread::id ran_on;
    std::thread poster([&] {
        for (int i = 0; i < 3; ++i) loop->post([&, i] { order.push_back(i); });
        loop->post([&] {
            ran_on = std::this_thread::get_id();
            loop->stop();
        });
    });
    poster.join();
    ASSERT_TRUE(loop->run());
    EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
    EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST_F(EventLoopTest, PausedDevicesAreNotServedUntilResumed) {
    auto dev = *EventFd::create(EFD_NONBLOCK);
    auto ctl = *EventFd::create(EFD_NONBLOCK);
    int device_calls = 0, control_calls = 0;
    ASSERT_TRUE(loop->devices().add(dev.fd(), EPOLLIN, [&](uint32_t) {
        ++device_calls;
        (void)dev.read();
    }));
    ASSERT_TRUE(loop->add(ctl.fd(), EPOLLIN, [&](uint32_t) {
        ++control_calls;
        (void)ctl.read();
    }));
    ASSERT_TRUE(loop->set_devices_paused(true));
    (void)dev.write(1);
    (void)ctl.write(1);
    run_once();
    EXPECT_EQ(control_calls, 1) << "the control set is served while paused";
    EXPECT_EQ(device_calls, 0) << "a device fd was served while paused";
    ASSERT_TRUE(loop->set_devices_paused(false));
    run_once();
    EXPECT_EQ(device_calls, 1) << "the device fd that became ready while paused is served on resume";
}

TEST_F(EventLoopTest, AnFdRemovedInABatchIsNotServedLater) {
    auto a = *EventFd::create(EFD_NONBLOCK);
    auto b = *EventFd::create(EFD_NONBLOCK);
    int a_calls = 0, b_calls = 0;
    // Whichever runs first removes the other: the other must not run.
    ASSERT_TRUE(loop->add(a.fd(), EPOLLIN, [&](uint32_t) {
        ++a_calls;
        loop->remove(b.fd());
        (void)a.read();
    }));
    ASSERT_TRUE(loop->add(b.fd(), EPOLLIN, [&](uint32_t) {
        ++b_calls;
        loop->remove(a.fd());
        (void)b.read();
    }));
    (void)a.write(1);
    (void)b.write(1);
    run_once();
    EXPECT_EQ(a_calls + b_calls, 1);
}

TEST_F(EventLoopTest, RegisteringAnFdTwiceFails) {
    auto a = *EventFd::create(EFD_NONBLOCK);
    ASSERT_TRUE(loop->add(a.fd(), EPOLLIN, [](uint32_t) {}));
    EXPECT_FALSE(loop->add(a.fd(), EPOLLIN, [](uint32_t) {}));
    loop->remove(a.fd());
    EXPECT_TRUE(loop->add(a.fd(), EPOLLIN, [](uint32_t) {}));
}

}  // namespace
}  // namespace rv
