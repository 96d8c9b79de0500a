// Shared by the config tests: an assertion that a Result failed as the
// caller's mistake with a message containing the given words.
#pragma once

#include <gtest/gtest.h>

#include <string_view>

#include "base/error.h"

namespace rv::testing_support {

template <typename T>
::testing::AssertionResult InputError(const Result<T>& result, std::string_view needle) {
    if (result)
        return ::testing::AssertionFailure()
               << "succeeded; expected an error containing '" << needle << "'";
    const auto& message = result.error().message();
    if (!result.error().is_input())
        return ::testing::AssertionFailure() << "not ErrorKind::InvalidInput: " << message;
    if (message.find(needle) == std::string::npos)
        return ::testing::AssertionFailure()
               << "message '" << message << "' does not contain '" << needle << "'";
    return ::testing::AssertionSuccess() << message;
}

}  // namespace rv::testing_support
