// The live-migration stream (vmm/migration_wire.h) and the destination's
// side of the protocol (Vmm::receive_migration) against a fake source that
// stops at each step: every truncated or malformed migration is refused and
// leaves no VM behind. (The source's side needs a running guest: the e2e
// cases migrate one, and kill its destination half-way.)
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <thread>

#include "support/fake_migration_source.h"
#include "vmm/migration_wire.h"
#include "vmm/vm_snapshot_config.h"
#include "vmm/vmm.h"

namespace rv::migration {
namespace {

std::pair<Fd, Fd> socket_pair() {
    std::array<int, 2> fds{};
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds.data()), 0);
    return {Fd(fds[0]), Fd(fds[1])};
}

const std::array<GuestMemory::RegionSpec, 2> kSpecs{
    {{GuestAddress{0}, 256 << 10}, {GuestAddress{1 << 20}, 64 << 10}}};

TEST(MigrationWire, Addresses) {
    auto u = parse_address("unix:/run/x.sock");
    ASSERT_TRUE(u);
    EXPECT_FALSE(u->tcp);
    EXPECT_EQ(u->path, "/run/x.sock");
    EXPECT_EQ(parse_address("/run/y.sock")->path, "/run/y.sock");
    auto t = parse_address("tcp:10.0.0.2:4444");
    ASSERT_TRUE(t);
    EXPECT_TRUE(t->tcp);
    EXPECT_EQ(t->host, "10.0.0.2");
    EXPECT_EQ(t->port, 4444);
    for (const char* bad : {"tcp:host", "tcp::1", "tcp:h:0", "tcp:h:70000", "tcp:h:1x", "unix:", ""})
        EXPECT_FALSE(parse_address(bad)) << bad;
    EXPECT_FALSE(parse_address("unix:/" + std::string(200, 'a')));
}

TEST(MigrationWire, HelloPagesAndAckRoundTrip) {
    auto [a, b] = socket_pair();
    Hello hello{.config = {1, 2, 3}, .regions = {kSpecs.begin(), kSpecs.end()}};
    std::thread writer([&, fd = a.get()] {
        auto from = GuestMemory::create(kSpecs);
        ASSERT_TRUE(from);
        std::vector<uint8_t> page(4096, 0x5A);
        ASSERT_TRUE(from->write(GuestAddress{(1 << 20) + 8192}, page));
        ASSERT_TRUE(send_hello(fd, hello));
        ASSERT_TRUE(send_pages(fd, *from, 1, 2, 3));
        ASSERT_TRUE(send_ack(fd, false, "no room"));
    });
    auto h = read_header(b.get());
    ASSERT_TRUE(h);
    ASSERT_EQ(h->type, Msg::Hello);
    auto payload = read_payload(b.get(), *h, kMaxControlFrame);
    ASSERT_TRUE(payload);
    auto got = parse_hello(*payload);
    ASSERT_TRUE(got) << got.error().message();
    EXPECT_EQ(got->config, hello.config);
    ASSERT_EQ(got->regions.size(), 2u);
    EXPECT_EQ(got->regions[1].start, kSpecs[1].start);
    EXPECT_EQ(got->regions[1].size, kSpecs[1].size);

    auto to = GuestMemory::create(kSpecs);
    ASSERT_TRUE(to);
    h = read_header(b.get());
    ASSERT_TRUE(h);
    ASSERT_EQ(h->type, Msg::Pages);
    auto n = receive_pages(b.get(), *h, *to);
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(*n, 3u * 4096);
    std::vector<uint8_t> page(4096);
    ASSERT_TRUE(to->read(GuestAddress{(1 << 20) + 8192}, page));
    EXPECT_EQ(page, std::vector<uint8_t>(4096, 0x5A));

    h = read_header(b.get());
    ASSERT_TRUE(h);
    ASSERT_EQ(h->type, Msg::Ack);
    auto ack = parse_ack(*read_payload(b.get(), *h, kMaxControlFrame));
    ASSERT_TRUE(ack);
    EXPECT_FALSE(ack->ok);
    EXPECT_EQ(ack->message, "no room");
    writer.join();
    a = Fd();
    EXPECT_FALSE(read_header(b.get())) << "the peer closed";
}

// A Zeros frame clears exactly its pages, whatever they held; one outside
// the layout, or with a payload it should not have, is refused untouched.
TEST(MigrationWire, ZerosClearTheirPagesOnly) {
    auto to = GuestMemory::create(kSpecs);
    ASSERT_TRUE(to);
    std::vector<uint8_t> ones(5 * 4096, 0xFF);
    ASSERT_TRUE(to->write(GuestAddress{1 << 20}, ones));
    auto [a, b] = socket_pair();
    ASSERT_TRUE(send_zeros(a.get(), 1, 1, 3));
    auto h = read_header(b.get());
    ASSERT_TRUE(h);
    ASSERT_EQ(h->type, Msg::Zeros);
    auto n = receive_zeros(b.get(), *h, *to);
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(*n, 3u * 4096);
    std::vector<uint8_t> got(5 * 4096);
    ASSERT_TRUE(to->read(GuestAddress{1 << 20}, got));
    for (size_t page = 0; page < 5; ++page) {
        const uint8_t want = page >= 1 && page <= 3 ? 0x00 : 0xFF;
        EXPECT_EQ(std::count(got.begin() + page * 4096, got.begin() + (page + 1) * 4096, want), 4096)
            << "page " << page;
    }
    // Region 1 has 16 pages: 14+3 runs past its end; region 2 does not exist.
    for (auto [region, first, count] : {std::tuple{1u, 14ull, 3u}, std::tuple{2u, 0ull, 1u},
                                        std::tuple{0u, 0ull, 0u}}) {
        auto [c, d] = socket_pair();
        ASSERT_TRUE(send_zeros(c.get(), region, first, count));
        h = read_header(d.get());
        ASSERT_TRUE(h);
        EXPECT_FALSE(receive_zeros(d.get(), *h, *to)) << region << " " << first << " " << count;
    }
    // A Zeros frame that carries data is not one.
    auto [e, f] = socket_pair();
    std::vector<uint8_t> body(16 + 4096, 0);
    body[12] = 1;
    ASSERT_TRUE(send_blob(e.get(), Msg::Zeros, body));
    h = read_header(f.get());
    ASSERT_TRUE(h);
    EXPECT_FALSE(receive_zeros(f.get(), *h, *to));
    std::vector<uint8_t> after(4096);
    ASSERT_TRUE(to->read(GuestAddress{0}, after));
    EXPECT_EQ(after, std::vector<uint8_t>(4096, 0));
}

// Pages outside the layout the receiver announced are refused before a
// byte lands in guest memory.
TEST(MigrationWire, PagesOutsideTheLayoutAreRefused) {
    auto from = GuestMemory::create(kSpecs);
    auto small = std::array<GuestMemory::RegionSpec, 1>{{{GuestAddress{0}, 64 << 10}}};
    auto to = GuestMemory::create(small);
    ASSERT_TRUE(from && to);
    for (auto [region, first, count] : {std::tuple{1u, 0ull, 1u}, std::tuple{0u, 15ull, 2u},
                                        std::tuple{0u, 16ull, 1u}}) {
        auto [a, b] = socket_pair();
        ASSERT_TRUE(send_pages(a.get(), *from, region, first, count));
        auto h = read_header(b.get());
        ASSERT_TRUE(h);
        auto r = receive_pages(b.get(), *h, *to);
        ASSERT_FALSE(r) << region << " " << first << " " << count;
        EXPECT_EQ(r.error().kind(), ErrorKind::InvalidInput);
    }
    // A frame whose length disagrees with its page count.
    auto [a, b] = socket_pair();
    std::vector<uint8_t> lie(16 + 4096, 0);
    lie[12] = 2;  // count 2, one page of data
    ASSERT_TRUE(send_blob(a.get(), Msg::Pages, lie));
    auto h = read_header(b.get());
    ASSERT_TRUE(h);
    EXPECT_FALSE(receive_pages(b.get(), *h, *to));
    // (A refused frame ends the migration: the rest of the stream is not read.)
    // Oversized control frames and unknown types.
    auto [c, d] = socket_pair();
    ASSERT_TRUE(send_blob(c.get(), Msg::State, std::vector<uint8_t>(100)));
    h = read_header(d.get());
    ASSERT_TRUE(h);
    EXPECT_FALSE(read_payload(d.get(), *h, 99));
    auto [e, f] = socket_pair();
    std::array<uint8_t, 9> junk{42};
    ASSERT_EQ(::write(e.get(), junk.data(), junk.size()), 9);
    EXPECT_FALSE(read_header(f.get()));
}

// ---- the destination against a fake source ----------------------------------
// (tests/support/fake_migration_source.h; the steps after Hello, once the
// destination has built the machine, are in tests/kvm/migration_receive_test.cpp)

class ReceiveMigration : public ::testing::TestWithParam<test::StopAfter> {};

TEST_P(ReceiveMigration, AMigrationThatStopsShortLeavesNoVm) {
    test::expect_refused_without_vm(GetParam());
}

INSTANTIATE_TEST_SUITE_P(BeforeTheMachine, ReceiveMigration,
                         ::testing::Values(test::StopAfter::Connect, test::StopAfter::BadMagic));

}  // namespace
}  // namespace rv::migration
