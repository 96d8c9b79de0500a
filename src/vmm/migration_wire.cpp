#include "vmm/migration_wire.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <charconv>
#include <cstring>

#include "snapshot/state_codec.h"

namespace rv::migration {

namespace {

constexpr uint64_t kPage = GuestMemory::kDirtyPageSize;
constexpr size_t kPagesHeader = 4 + 8 + 4;

// A peer that hung up is an error here, not a SIGPIPE (MSG_NOSIGNAL).
Result<void> write_all(int fd, std::span<iovec> iov) {
    size_t i = 0;
    while (i < iov.size()) {
        msghdr msg{};
        msg.msg_iov = iov.data() + i;
        msg.msg_iovlen = std::min<size_t>(iov.size() - i, 64);
        ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno_error("migration: send");
        auto left = static_cast<size_t>(n);
        while (i < iov.size() && left >= iov[i].iov_len) left -= iov[i++].iov_len;
        if (i < iov.size()) {
            iov[i].iov_base = static_cast<uint8_t*>(iov[i].iov_base) + left;
            iov[i].iov_len -= left;
        }
    }
    return {};
}

Result<void> read_all(int fd, std::span<uint8_t> out) {
    size_t done = 0;
    while (done < out.size()) {
        ssize_t n = ::read(fd, out.data() + done, out.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno_error("migration: receive");
        if (n == 0) return make_error("migration: the peer closed the connection");
        done += static_cast<size_t>(n);
    }
    return {};
}

std::array<uint8_t, 9> header_bytes(Msg type, uint64_t length) {
    std::array<uint8_t, 9> h{};
    h[0] = static_cast<uint8_t>(type);
    for (int i = 0; i < 8; ++i) h[1 + i] = static_cast<uint8_t>(length >> (8 * i));
    return h;
}

}  // namespace

Result<Address> parse_address(std::string_view text) {
    Address a;
    if (text.starts_with("tcp:")) {
        auto rest = text.substr(4);
        auto colon = rest.rfind(':');
        if (colon == std::string_view::npos || colon == 0)
            return input_error("migration address '{}': expected tcp:HOST:PORT", text);
        unsigned port = 0;
        auto digits = rest.substr(colon + 1);
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
        if (ec != std::errc{} || end != digits.data() + digits.size() || port == 0 || port > 65535)
            return input_error("migration address '{}': bad port", text);
        a.tcp = true;
        a.host = std::string(rest.substr(0, colon));
        a.port = static_cast<uint16_t>(port);
        return a;
    }
    if (text.starts_with("unix:")) text = text.substr(5);
    if (text.empty() || text.size() >= sizeof(sockaddr_un::sun_path))
        return input_error("migration address '{}': expected unix:PATH or tcp:HOST:PORT", text);
    a.path = std::string(text);
    return a;
}

namespace {

Result<Fd> tcp_socket(const Address& a, bool listen) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = listen ? AI_PASSIVE : 0;
    addrinfo* res = nullptr;
    auto port = std::to_string(a.port);
    if (int rc = ::getaddrinfo(a.host.c_str(), port.c_str(), &hints, &res); rc != 0)
        return input_error("migration: {}: {}", a.host, ::gai_strerror(rc));
    std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> guard(res, ::freeaddrinfo);
    int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno_error("migration: socket");
    Fd sock(fd);
    int one = 1;
    (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (listen) {
        (void)::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (::bind(fd, res->ai_addr, res->ai_addrlen) < 0 || ::listen(fd, 1) < 0)
            return errno_error(fmt::format("migration: listen on {}:{}", a.host, a.port));
    } else if (::connect(fd, res->ai_addr, res->ai_addrlen) < 0) {
        return errno_error(fmt::format("migration: connect to {}:{}", a.host, a.port));
    }
    return sock;
}

Result<Fd> unix_socket(const Address& a, bool listen) {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno_error("migration: socket");
    Fd sock(fd);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, a.path.c_str(), a.path.size() + 1);
    auto* sa = reinterpret_cast<sockaddr*>(&addr);
    if (listen) {
        ::unlink(a.path.c_str());
        if (::bind(fd, sa, sizeof(addr)) < 0 || ::listen(fd, 1) < 0)
            return errno_error(fmt::format("migration: listen on {}", a.path));
    } else if (::connect(fd, sa, sizeof(addr)) < 0) {
        return errno_error(fmt::format("migration: connect to {}", a.path));
    }
    return sock;
}

}  // namespace

Result<Fd> connect_to(const Address& address) {
    return address.tcp ? tcp_socket(address, false) : unix_socket(address, false);
}

Result<Fd> listen_on(const Address& address) {
    return address.tcp ? tcp_socket(address, true) : unix_socket(address, true);
}

Result<Fd> accept_one(const Fd& listener) {
    for (;;) {
        int fd = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
        if (fd >= 0) return Fd(fd);
        if (errno != EINTR) return errno_error("migration: accept");
    }
}

Result<void> send_blob(int fd, Msg type, std::span<const uint8_t> payload) {
    auto h = header_bytes(type, payload.size());
    std::array<iovec, 2> iov{iovec{h.data(), h.size()},
                             iovec{const_cast<uint8_t*>(payload.data()), payload.size()}};
    return write_all(fd, iov);
}

Result<void> send_hello(int fd, const Hello& hello) {
    snapshot::Writer w;
    for (uint8_t b : kMagic) w.u8(b);  // (raw() of a constant trips GCC 12's -Wstringop-overflow)
    w.u32(kVersion);
    w.blob(hello.config);
    w.u32(static_cast<uint32_t>(hello.regions.size()));
    for (const auto& r : hello.regions) {
        w.u64(r.start.value);
        w.u64(r.size);
    }
    return send_blob(fd, Msg::Hello, w.bytes());
}

Result<void> send_pages(int fd, const GuestMemory& memory, uint32_t region, uint64_t first,
                        uint32_t count) {
    const GuestRegion& r = memory.regions().at(region);
    snapshot::Writer w;
    w.u32(region);
    w.u64(first);
    w.u32(count);
    const uint64_t len = uint64_t{count} * kPage;
    auto h = header_bytes(Msg::Pages, kPagesHeader + len);
    std::array<iovec, 3> iov{iovec{h.data(), h.size()},
                             iovec{const_cast<uint8_t*>(w.bytes().data()), w.bytes().size()},
                             iovec{r.host + first * kPage, len}};
    return write_all(fd, iov);
}

Result<void> send_zeros(int fd, uint32_t region, uint64_t first, uint32_t count) {
    snapshot::Writer w;
    w.u32(region);
    w.u64(first);
    w.u32(count);
    return send_blob(fd, Msg::Zeros, w.bytes());
}

Result<void> send_ack(int fd, bool ok, std::string_view message) {
    snapshot::Writer w;
    w.boolean(ok);
    w.str(message);
    return send_blob(fd, Msg::Ack, w.bytes());
}

Result<FrameHeader> read_header(int fd) {
    std::array<uint8_t, 9> h{};
    RV_TRY_VOID(read_all(fd, h));
    if (h[0] < static_cast<uint8_t>(Msg::Hello) || h[0] > static_cast<uint8_t>(Msg::Zeros))
        return input_error("migration: unknown frame type {}", h[0]);
    uint64_t length = 0;
    for (int i = 0; i < 8; ++i) length |= uint64_t{h[1 + i]} << (8 * i);
    return FrameHeader{static_cast<Msg>(h[0]), length};
}

Result<std::vector<uint8_t>> read_payload(int fd, const FrameHeader& header, uint64_t max) {
    if (header.length > max)
        return input_error("migration: a {}-byte frame (at most {})", header.length, max);
    std::vector<uint8_t> out(header.length);
    RV_TRY_VOID(read_all(fd, out));
    return out;
}

Result<Hello> parse_hello(std::span<const uint8_t> payload) {
    snapshot::Reader r(payload, "migration hello");
    auto magic = r.array<8>();
    uint32_t version = r.u32();
    Hello h;
    h.config = r.blob(kMaxControlFrame);
    uint32_t n = r.u32();
    if (n > 16) r.fail(fmt::format("{} memory regions", n));
    for (uint32_t i = 0; i < n && r.ok(); ++i) {
        GuestAddress start{r.u64()};
        h.regions.push_back({start, r.u64()});
    }
    RV_TRY_VOID(r.finish());
    if (magic != kMagic) return input_error("migration: the peer is not a ringvisor");
    if (version != kVersion)
        return input_error("migration: protocol version {}, this ringvisor speaks {}", version,
                           kVersion);
    return h;
}

namespace {

struct PageRange {
    uint32_t region;
    uint64_t first;
    uint32_t count;
};

// A Pages or Zeros frame's range, which must lie in `memory` (Pages: at most
// kMaxPagesPerFrame, and the frame holds exactly their bytes after it).
Result<PageRange> read_range(int fd, const FrameHeader& header, const GuestMemory& memory) {
    const bool pages = header.type == Msg::Pages;
    std::array<uint8_t, kPagesHeader> raw{};
    if (header.length < kPagesHeader) return input_error("migration: a short pages frame");
    RV_TRY_VOID(read_all(fd, raw));
    snapshot::Reader r(raw, "migration pages");
    PageRange p{r.u32(), r.u64(), r.u32()};
    RV_TRY_VOID(r.finish());
    const auto& regions = memory.regions();
    const uint64_t data = pages ? uint64_t{p.count} * kPage : 0;
    if (p.region >= regions.size() || p.count == 0 || (pages && p.count > kMaxPagesPerFrame) ||
        p.first > regions[p.region].size / kPage ||
        p.count > regions[p.region].size / kPage - p.first || header.length != kPagesHeader + data)
        return input_error("migration: pages {}+{} of region {} are not this VM's", p.first,
                           p.count, p.region);
    return p;
}

}  // namespace

Result<uint64_t> receive_pages(int fd, const FrameHeader& header, const GuestMemory& memory) {
    auto p = RV_TRY(read_range(fd, header, memory));
    uint8_t* at = memory.regions()[p.region].host + p.first * kPage;
    RV_TRY_VOID(read_all(fd, std::span(at, p.count * kPage)));
    return uint64_t{p.count} * kPage;
}

Result<uint64_t> receive_zeros(int fd, const FrameHeader& header, const GuestMemory& memory) {
    auto p = RV_TRY(read_range(fd, header, memory));
    std::memset(memory.regions()[p.region].host + p.first * kPage, 0, p.count * kPage);
    return uint64_t{p.count} * kPage;
}

Result<Ack> parse_ack(std::span<const uint8_t> payload) {
    snapshot::Reader r(payload, "migration ack");
    Ack a;
    a.ok = r.boolean();
    a.message = r.str(4096);
    RV_TRY_VOID(r.finish());
    return a;
}

}  // namespace rv::migration
