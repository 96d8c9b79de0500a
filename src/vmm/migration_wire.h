// The live-migration stream between two ringvisor processes (vmm/migration.h):
// frames of u8 type, u64 payload length, payload, little-endian, over a
// Unix or TCP stream socket. The stream is hostile input to the receiver:
// lengths are bounded, pages must fall inside the announced RAM layout.
//
//   source -> destination
//     Hello   magic "RVMIGRAT", u32 version, blob config (vm_snapshot_config),
//             u32 region count, per region u64 start and size
//     Pages   u32 region, u64 first page, u32 page count, then the pages
//     Zeros   u32 region, u64 first page, u32 page count: pages of zeros
//             (dirtied again since sent, now all zeros: not sent whole)
//     State   the snapshot file's bytes (all but memory), once, paused
//     Done    nothing more follows
//   destination -> source
//     Ack     u8 ok, string message: the destination runs the VM (ok) or
//             could not (the source resumes)
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fd.h"
#include "memory/guest_memory.h"

namespace rv::migration {

enum class Msg : uint8_t { Hello = 1, Pages = 2, State = 3, Done = 4, Ack = 5, Zeros = 6 };

inline constexpr std::array<uint8_t, 8> kMagic{'R', 'V', 'M', 'I', 'G', 'R', 'A', 'T'};
inline constexpr uint32_t kVersion = 2;  // 2: Zeros
inline constexpr uint64_t kMaxControlFrame = 64ull << 20;  // Hello, State, Ack
inline constexpr uint32_t kMaxPagesPerFrame = 256;          // 1 MiB of pages

struct Hello {
    std::vector<uint8_t> config;
    std::vector<GuestMemory::RegionSpec> regions;
};

// "unix:/path" or "tcp:host:port" (a bare path means unix:).
struct Address {
    bool tcp{false};
    std::string path;  // unix
    std::string host;  // tcp
    uint16_t port{0};
};
Result<Address> parse_address(std::string_view text);
// The source connects; the destination listens and accepts one peer.
Result<Fd> connect_to(const Address& address);
Result<Fd> listen_on(const Address& address);
Result<Fd> accept_one(const Fd& listener);

Result<void> send_hello(int fd, const Hello& hello);
// Pages [first, first + count) of region `region`, straight from guest RAM.
Result<void> send_pages(int fd, const GuestMemory& memory, uint32_t region, uint64_t first,
                        uint32_t count);
// Pages [first, first + count) of region `region` are zeros.
Result<void> send_zeros(int fd, uint32_t region, uint64_t first, uint32_t count);
Result<void> send_blob(int fd, Msg type, std::span<const uint8_t> payload);
Result<void> send_ack(int fd, bool ok, std::string_view message);

// One frame's header; then the caller reads the payload (read_payload,
// or receive_pages for Pages, which lands them in `memory`).
struct FrameHeader {
    Msg type;
    uint64_t length;
};
Result<FrameHeader> read_header(int fd);
Result<std::vector<uint8_t>> read_payload(int fd, const FrameHeader& header, uint64_t max);
Result<Hello> parse_hello(std::span<const uint8_t> payload);
// A Pages frame's payload, checked against `memory`'s regions.
Result<uint64_t> receive_pages(int fd, const FrameHeader& header, const GuestMemory& memory);
// A Zeros frame's payload, checked the same way; the pages are zeroed.
Result<uint64_t> receive_zeros(int fd, const FrameHeader& header, const GuestMemory& memory);
struct Ack {
    bool ok{false};
    std::string message;
};
Result<Ack> parse_ack(std::span<const uint8_t> payload);

}  // namespace rv::migration
