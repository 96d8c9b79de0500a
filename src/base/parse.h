// Small text-to-number helpers for what the kernel and users write.
#pragma once

#include <charconv>
#include <cstdint>
#include <optional>
#include <string_view>

namespace rv {

// A whole decimal number and nothing else ("12", not "12 ", "-1" or "").
inline std::optional<uint64_t> parse_u64(std::string_view s) {
    uint64_t v = 0;
    if (s.empty()) return std::nullopt;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
    return v;
}

}  // namespace rv
