// Errors as values: every fallible operation returns Result<T>.
#pragma once

#include <cerrno>
#include <cstring>
#include <expected>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace rv {

class Error {
public:
    Error() = default;
    explicit Error(std::string message, int os_errno = 0)
        : m_message(std::move(message)), m_errno(os_errno) {}

    // An error from a failed system call: "what: strerror(errno)".
    static Error from_errno(std::string_view what, int err = errno) {
        return Error(fmt::format("{}: {}", what, std::strerror(err)), err);
    }

    const std::string& message() const { return m_message; }
    int os_errno() const { return m_errno; }

    // Prefix context, e.g. "loading kernel: " + inner message.
    Error context(std::string_view what) const& {
        return Error(fmt::format("{}: {}", what, m_message), m_errno);
    }

private:
    std::string m_message;
    int m_errno{0};
};

template <typename T = void>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> make_error(std::string message) {
    return std::unexpected(Error(std::move(message)));
}

template <typename... Args>
std::unexpected<Error> make_error(fmt::format_string<Args...> f, Args&&... args) {
    return std::unexpected(Error(fmt::format(f, std::forward<Args>(args)...)));
}

inline std::unexpected<Error> errno_error(std::string_view what, int err = errno) {
    return std::unexpected(Error::from_errno(what, err));
}

// Prefixes an error with what was being done (GCC 12's std::expected has no
// transform_error yet).
template <typename T>
Result<T> with_context(Result<T>&& result, std::string_view what) {
    if (!result) return std::unexpected(result.error().context(what));
    return std::move(result);
}

}  // namespace rv

// TRY(expr): evaluate a Result; on error return it from the enclosing function,
// otherwise yield the value (GNU statement expression, as SerenityOS does).
#define RV_TRY(expr)                                          \
    ({                                                        \
        auto&& _rv_result = (expr);                           \
        if (!_rv_result) [[unlikely]]                         \
            return std::unexpected(std::move(_rv_result).error()); \
        std::move(_rv_result).value();                        \
    })

// TRY for Result<void>.
#define RV_TRY_VOID(expr)                                     \
    do {                                                      \
        auto&& _rv_result = (expr);                           \
        if (!_rv_result) [[unlikely]]                         \
            return std::unexpected(std::move(_rv_result).error()); \
    } while (0)
