// The few pieces of AML (ACPI 6, chapter 20) and resource descriptors (6.4)
// our DSDT needs, encoded by hand: names, packages, integers, buffers.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

namespace rv::x86::aml {

inline constexpr uint8_t kNameOp = 0x08;
inline constexpr uint8_t kZeroOp = 0x00;
inline constexpr uint8_t kOneOp = 0x01;
inline constexpr uint8_t kBytePrefix = 0x0A;
inline constexpr uint8_t kWordPrefix = 0x0B;
inline constexpr uint8_t kDWordPrefix = 0x0C;
inline constexpr uint8_t kScopeOp = 0x10;
inline constexpr uint8_t kBufferOp = 0x11;
inline constexpr uint8_t kPackageOp = 0x12;
inline constexpr uint8_t kExtOpPrefix = 0x5B;
inline constexpr uint8_t kDeviceOp = 0x82;

// Little-endian bytes of an integer.
template <typename T>
void put_le(std::vector<uint8_t>& out, T v) {
    for (size_t i = 0; i < sizeof(T); ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// PkgLength (20.2.4): the length counts its own encoding bytes. Up to 63 it
// is one byte; otherwise the lead byte holds the count of following bytes in
// bits 7..6 and the low nibble, the rest follows LSB first.
inline void pkg_length(std::vector<uint8_t>& out, size_t body) {
    for (size_t n = 1; n <= 4; ++n) {
        size_t total = body + n;
        if (n == 1 && total <= 0x3F) {
            out.push_back(static_cast<uint8_t>(total));
            return;
        }
        if (n > 1 && total < (size_t{1} << (4 + 8 * (n - 1)))) {
            out.push_back(static_cast<uint8_t>(((n - 1) << 6) | (total & 0xF)));
            for (size_t i = 1; i < n; ++i)
                out.push_back(static_cast<uint8_t>(total >> (4 + 8 * (i - 1))));
            return;
        }
    }
}

// <opcode bytes> PkgLength <body>
inline void package(std::vector<uint8_t>& out, std::initializer_list<uint8_t> opcode,
                    const std::vector<uint8_t>& body) {
    out.insert(out.end(), opcode);
    pkg_length(out, body.size());
    out.insert(out.end(), body.begin(), body.end());
}

// Pushed byte by byte: GCC 12 reports a false -Warray-bounds for a ranged insert here.
inline void name_seg(std::vector<uint8_t>& out, const char* seg) {
    for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(seg[i]));
}

// An Integer in its shortest encoding.
inline void integer(std::vector<uint8_t>& out, uint32_t v) {
    if (v <= 1) {
        out.push_back(v ? kOneOp : kZeroOp);
    } else if (v <= 0xFF) {
        out.push_back(kBytePrefix);
        out.push_back(static_cast<uint8_t>(v));
    } else if (v <= 0xFFFF) {
        out.push_back(kWordPrefix);
        put_le(out, static_cast<uint16_t>(v));
    } else {
        out.push_back(kDWordPrefix);
        put_le(out, v);
    }
}

// Name (NAME, <object bytes>)
inline void name(std::vector<uint8_t>& out, const char* seg, const std::vector<uint8_t>& object) {
    out.push_back(kNameOp);
    name_seg(out, seg);
    out.insert(out.end(), object.begin(), object.end());
}

// Buffer (<size>) { bytes }
inline std::vector<uint8_t> buffer(const std::vector<uint8_t>& bytes) {
    std::vector<uint8_t> body;
    integer(body, static_cast<uint32_t>(bytes.size()));
    body.insert(body.end(), bytes.begin(), bytes.end());
    std::vector<uint8_t> out;
    package(out, {kBufferOp}, body);
    return out;
}

}  // namespace rv::x86::aml
