// Snapshot State test helpers shared by the device State tests.
#pragma once

#include <gtest/gtest.h>

#include <span>

#include "snapshot/state_codec.h"

namespace rv::test {

// Encodes and decodes the state, as a snapshot file would carry it.
template <typename S>
S through_bytes(const S& state) {
    const auto bytes = snapshot::encode(state);
    auto back = snapshot::decode<S>(bytes, "test");
    EXPECT_TRUE(back.has_value()) << back.error().message();
    return back.value_or(S{});
}

// Every strict prefix of the encoding is refused, and so is a trailing byte.
template <typename S>
void expect_truncation_refused(const S& state) {
    auto bytes = snapshot::encode(state);
    for (size_t len = 0; len < bytes.size(); ++len)
        EXPECT_FALSE(snapshot::decode<S>(std::span(bytes).first(len), "test").has_value()) << len;
    bytes.push_back(0);
    EXPECT_FALSE(snapshot::decode<S>(bytes, "test").has_value());
}

}  // namespace rv::test
