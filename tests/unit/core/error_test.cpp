#include "base/error.h"

#include <gtest/gtest.h>

namespace rv {
namespace {

Result<int> half(int v) {
    if (v % 2) return make_error("{} is odd", v);
    return v / 2;
}

Result<int> quarter(int v) {
    int h = RV_TRY(half(v));
    return RV_TRY(half(h));
}

TEST(Error, TryPropagatesFirstError) {
    EXPECT_EQ(quarter(8).value(), 2);
    auto r = quarter(6);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message(), "3 is odd");
    EXPECT_EQ(r.error().context("dividing").message(), "dividing: 3 is odd");
}

TEST(Error, FromErrnoNamesTheCall) {
    auto e = Error::from_errno("open /nope", ENOENT);
    EXPECT_EQ(e.os_errno(), ENOENT);
    EXPECT_NE(e.message().find("open /nope: "), std::string::npos);
    EXPECT_NE(e.message().find("No such file"), std::string::npos);
}

}  // namespace
}  // namespace rv
