// Little-endian encoding of device and VM state for snapshots.
//
// A device's State struct writes its fields in order with a Writer and reads
// them back with a Reader. A snapshot file is hostile input like guest memory:
// the Reader never reads past its span; a short read sets a sticky error and
// yields zeros, and finish() reports it (and any bytes left over), so decode
// functions read every field first and check once. Range checks on the
// values themselves (a FIFO count within its FIFO, ...) belong to the
// device's restore().
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace rv::snapshot {

class Writer {
  public:
    void u8(uint8_t v) { m_out.push_back(v); }
    void boolean(bool v) { u8(v ? 1 : 0); }
    void u16(uint16_t v) { put(v, 2); }
    void u32(uint32_t v) { put(v, 4); }
    void u64(uint64_t v) { put(v, 8); }
    void i64(int64_t v) { put(static_cast<uint64_t>(v), 8); }
    // Fixed-size bytes, no length (the reader knows the size).
    void raw(std::span<const uint8_t> bytes) { m_out.insert(m_out.end(), bytes.begin(), bytes.end()); }
    // A u32 length, then the bytes.
    void blob(std::span<const uint8_t> bytes);
    void str(std::string_view s);

    const std::vector<uint8_t>& bytes() const { return m_out; }
    std::vector<uint8_t> take() { return std::move(m_out); }

  private:
    void put(uint64_t v, unsigned n) {
        for (unsigned i = 0; i < n; ++i) m_out.push_back(static_cast<uint8_t>(v >> (8 * i)));
    }
    std::vector<uint8_t> m_out;
};

class Reader {
  public:
    // `what` names the state being read, for error messages.
    Reader(std::span<const uint8_t> in, std::string_view what) : m_in(in), m_what(what) {}

    uint8_t u8() { return static_cast<uint8_t>(get(1)); }
    // Any value other than 0 or 1 is an error.
    bool boolean();
    uint16_t u16() { return static_cast<uint16_t>(get(2)); }
    uint32_t u32() { return static_cast<uint32_t>(get(4)); }
    uint64_t u64() { return get(8); }
    int64_t i64() { return static_cast<int64_t>(get(8)); }
    void raw(std::span<uint8_t> out);
    template <size_t N>
    std::array<uint8_t, N> array() {
        std::array<uint8_t, N> a{};
        raw(a);
        return a;
    }
    // A length-prefixed blob of at most max_len bytes.
    std::vector<uint8_t> blob(size_t max_len);
    std::string str(size_t max_len);

    // Marks the state invalid (e.g. a field out of range), keeping the first error.
    void fail(std::string message);
    bool ok() const { return m_error.empty(); }
    size_t remaining() const { return m_in.size() - m_pos; }
    // The first error, or one for bytes left unread; an InvalidInput error.
    Result<void> finish() const;

  private:
    uint64_t get(unsigned n);
    bool take(size_t n, std::string_view field);

    std::span<const uint8_t> m_in;
    std::string m_what;
    size_t m_pos{0};
    std::string m_error;
};

// A State struct S has `void encode(Writer&) const` and `static S
// decode(Reader&)`; these wrap them for whole byte buffers.
template <typename S>
std::vector<uint8_t> encode(const S& state) {
    Writer w;
    state.encode(w);
    return w.take();
}

template <typename S>
Result<S> decode(std::span<const uint8_t> bytes, std::string_view what) {
    Reader r(bytes, what);
    S state = S::decode(r);
    RV_TRY_VOID(r.finish());
    return state;
}

}  // namespace rv::snapshot
