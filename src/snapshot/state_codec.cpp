#include "snapshot/state_codec.h"

#include <algorithm>

namespace rv::snapshot {

void Writer::blob(std::span<const uint8_t> bytes) {
    u32(static_cast<uint32_t>(bytes.size()));
    raw(bytes);
}

void Writer::str(std::string_view s) {
    blob(std::span(reinterpret_cast<const uint8_t*>(s.data()), s.size()));
}

bool Reader::take(size_t n, std::string_view field) {
    if (!ok()) return false;
    if (n > remaining()) {
        fail(fmt::format("truncated: {} needs {} bytes at offset {}, {} left", field, n, m_pos, remaining()));
        return false;
    }
    return true;
}

uint64_t Reader::get(unsigned n) {
    if (!take(n, fmt::format("a {}-byte field", n))) return 0;
    uint64_t v = 0;
    for (unsigned i = 0; i < n; ++i) v |= uint64_t{m_in[m_pos + i]} << (8 * i);
    m_pos += n;
    return v;
}

bool Reader::boolean() {
    const uint8_t v = u8();
    if (v > 1) fail(fmt::format("a boolean at offset {} is {}", m_pos - 1, v));
    return v == 1;
}

void Reader::raw(std::span<uint8_t> out) {
    if (!take(out.size(), fmt::format("a {}-byte array", out.size()))) {
        std::ranges::fill(out, 0);
        return;
    }
    std::copy_n(m_in.begin() + static_cast<ptrdiff_t>(m_pos), out.size(), out.begin());
    m_pos += out.size();
}

std::vector<uint8_t> Reader::blob(size_t max_len) {
    const uint32_t len = u32();
    if (len > max_len) {
        fail(fmt::format("a blob of {} bytes at offset {} (at most {})", len, m_pos - 4, max_len));
        return {};
    }
    if (!take(len, fmt::format("a blob of {} bytes", len))) return {};
    std::vector<uint8_t> out(len);
    raw(out);
    return out;
}

std::string Reader::str(size_t max_len) {
    const auto bytes = blob(max_len);
    return std::string(bytes.begin(), bytes.end());
}

void Reader::fail(std::string message) {
    if (m_error.empty()) m_error = std::move(message);
}

Result<void> Reader::finish() const {
    if (!ok()) return std::unexpected(Error(fmt::format("{} state: {}", m_what, m_error), 0, ErrorKind::InvalidInput));
    if (remaining() != 0)
        return std::unexpected(
            Error(fmt::format("{} state: {} bytes left over after the last field", m_what, remaining()), 0,
                  ErrorKind::InvalidInput));
    return {};
}

}  // namespace rv::snapshot
