// Errors as values: every fallible operation returns Result<T>.
#pragma once

#include <cerrno>
#include <cstring>
#include <expected>
#include <string>
#include <utility>

#include <fmt/format.h>

namespace rv {

// Who is to blame, which decides how a front end reports it: bad input is
// the caller's to fix (CLI exit 2, HTTP 400), a request that the VM's state
// does not allow too (HTTP 400, saying why), anything else is the VMM's
// failure (exit 1, HTTP 500).
enum class ErrorKind {
    Internal,      // a system call, KVM or the VMM itself failed
    InvalidInput,  // bad flags, files, bodies, values
    NotAllowed,    // valid, but not in the current state (e.g. after start)
};

class Error {
public:
    Error() = default;
    explicit Error(std::string message, int os_errno = 0, ErrorKind kind = ErrorKind::Internal)
        : m_message(std::move(message)), m_errno(os_errno), m_kind(kind) {}

    // An error from a failed system call: "what: strerror(errno)".
    static Error from_errno(std::string_view what, int err = errno) {
        return Error(fmt::format("{}: {}", what, std::strerror(err)), err);
    }

    const std::string& message() const { return m_message; }
    int os_errno() const { return m_errno; }
    ErrorKind kind() const { return m_kind; }
    bool is_input() const { return m_kind == ErrorKind::InvalidInput; }

    // Prefix context, e.g. "loading kernel: " + inner message. Keeps the kind.
    Error context(std::string_view what) const& {
        return Error(fmt::format("{}: {}", what, m_message), m_errno, m_kind);
    }
    Error with_kind(ErrorKind kind) const& { return Error(m_message, m_errno, kind); }

private:
    std::string m_message;
    int m_errno{0};
    ErrorKind m_kind{ErrorKind::Internal};
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

// The caller's mistake (see ErrorKind).
template <typename... Args>
std::unexpected<Error> input_error(fmt::format_string<Args...> f, Args&&... args) {
    return std::unexpected(
        Error(fmt::format(f, std::forward<Args>(args)...), 0, ErrorKind::InvalidInput));
}

// Valid, but not now (see ErrorKind).
template <typename... Args>
std::unexpected<Error> not_allowed_error(fmt::format_string<Args...> f, Args&&... args) {
    return std::unexpected(
        Error(fmt::format(f, std::forward<Args>(args)...), 0, ErrorKind::NotAllowed));
}

// Prefixes an error with what was being done (GCC 12's std::expected has no
// transform_error yet).
template <typename T>
Result<T> with_context(Result<T>&& result, std::string_view what) {
    if (!result) return std::unexpected(result.error().context(what));
    return std::move(result);
}

// The same, marking the error as the caller's (e.g. a file the user named
// cannot be opened).
template <typename T>
Result<T> as_input_error(Result<T>&& result, std::string_view what) {
    if (!result)
        return std::unexpected(result.error().context(what).with_kind(ErrorKind::InvalidInput));
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
