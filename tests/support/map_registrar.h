// An EventRegistrar that only records what a device registers (fd -> its
// EPOLLIN handler), for tests that fire the handlers themselves.
#pragma once

#include <gtest/gtest.h>
#include <sys/epoll.h>

#include <functional>
#include <map>

#include "devices/event_registrar.h"

namespace rv::test {

class MapRegistrar final : public EventRegistrar {
  public:
    Result<void> add(int fd, uint32_t events, std::function<void(uint32_t)> handler) override {
        EXPECT_EQ(events, static_cast<uint32_t>(EPOLLIN));
        if (!handlers.emplace(fd, std::move(handler)).second) return make_error("fd {} twice", fd);
        return {};
    }
    void remove(int fd) override { handlers.erase(fd); }
    std::map<int, std::function<void(uint32_t)>> handlers;
};

}  // namespace rv::test
