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

// Device (NAME) { body }
inline void device(std::vector<uint8_t>& out, const char* seg, const std::vector<uint8_t>& body) {
    std::vector<uint8_t> dev;
    name_seg(dev, seg);
    dev.insert(dev.end(), body.begin(), body.end());
    package(out, {kExtOpPrefix, kDeviceOp}, dev);
}

// EisaId ("PNPxxxx") as the DWord the ASL compiler makes of it: three
// letters in 5 bits each (A = 1) and four hex digits, stored big-endian.
constexpr uint32_t eisa_id(const char (&id)[8]) {
    auto hex = [](char c) -> uint32_t {
        return c <= '9' ? uint32_t(c - '0') : uint32_t((c | 0x20) - 'a' + 10);
    };
    const uint32_t be = (uint32_t(id[0] - '@') << 26) | (uint32_t(id[1] - '@') << 21) |
                        (uint32_t(id[2] - '@') << 16) | (hex(id[3]) << 12) | (hex(id[4]) << 8) |
                        (hex(id[5]) << 4) | hex(id[6]);
    return ((be & 0xFF) << 24) | ((be & 0xFF00) << 8) | ((be >> 8) & 0xFF00) | (be >> 24);
}
static_assert(eisa_id("PNP0A03") == 0x030AD041);

// Name (_HID, EisaId ("PNPxxxx"))
inline void hid(std::vector<uint8_t>& out, const char (&id)[8]) {
    std::vector<uint8_t> value{kDWordPrefix};
    put_le(value, eisa_id(id));
    name(out, "_HID", value);
}

// Small resource descriptors (ACPI 6.4.2) for a ResourceTemplate.
// IO (Decode16, port, port, 1, length): a fixed range of 16-bit decoded ports.
inline void io_port(std::vector<uint8_t>& out, uint16_t port, uint8_t length) {
    out.push_back(0x47);  // I/O Port Descriptor, 7 bytes follow
    out.push_back(0x01);  // decodes 16 address lines
    put_le(out, port);    // minimum
    put_le(out, port);    // maximum
    out.push_back(0x01);  // alignment
    out.push_back(length);
}

// IRQNoFlags () { irq }: an ISA interrupt, edge-triggered, active high.
inline void irq_no_flags(std::vector<uint8_t>& out, unsigned irq) {
    out.push_back(0x22);  // IRQ Descriptor, 2 bytes follow (no flags byte)
    put_le(out, static_cast<uint16_t>(1u << irq));
}

// The End Tag closing a ResourceTemplate; checksum 0: "treat as correct".
inline void end_tag(std::vector<uint8_t>& out) {
    out.push_back(0x79);
    out.push_back(0x00);
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
