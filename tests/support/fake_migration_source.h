// A fake live-migration source that sends the start of a migration and
// hangs up at a chosen step, and the check that the destination
// (Vmm::receive_migration) refuses it and leaves no VM: shared by
// tests/unit/vmm/migration_test.cpp (the steps before the destination
// builds the machine) and tests/kvm/migration_receive_test.cpp (every step;
// the destination builds the machine on the source's Hello, which needs KVM).
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "vmm/migration_wire.h"
#include "vmm/vm_snapshot_config.h"
#include "vmm/vmm.h"

namespace rv::migration::test {

inline VmConfig machine() {
    VmConfig c;
    c.kernel_path = "/k/vmlinuz";
    c.memory_bytes = 64ull << 20;
    c.resolve_defaults();
    return c;
}

enum class StopAfter { Connect, BadMagic, Hello, HalfAPage, Pages, State, BadState };

// A source that sends the start of a migration and hangs up.
inline void fake_source(const std::string& path, StopAfter stop) {
    auto address = *parse_address(path);
    Result<Fd> fd = make_error("not yet");
    for (int i = 0; i < 500 && !fd; ++i) {
        fd = connect_to(address);
        if (!fd) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(fd) << fd.error().message();
    if (stop == StopAfter::Connect) return;
    if (stop == StopAfter::BadMagic) {
        std::vector<uint8_t> hello(40, 0);
        (void)send_blob(fd->get(), Msg::Hello, hello);
        return;
    }
    auto memory = GuestMemory::create(std::array<GuestMemory::RegionSpec, 1>{{{GuestAddress{0}, 64ull << 20}}});
    ASSERT_TRUE(memory);
    Hello hello{.config = encode_snapshot_config(machine()),
                .regions = {{GuestAddress{0}, 64ull << 20}}};
    ASSERT_TRUE(send_hello(fd->get(), hello));
    if (stop == StopAfter::Hello) return;
    if (stop == StopAfter::HalfAPage) {
        std::vector<uint8_t> head(16 + 2048, 0);
        head[12] = 1;  // one page announced, half of it sent
        std::array<uint8_t, 9> h{static_cast<uint8_t>(Msg::Pages)};
        uint64_t len = 16 + 4096;
        for (int i = 0; i < 8; ++i) h[1 + i] = static_cast<uint8_t>(len >> (8 * i));
        (void)::write(fd->get(), h.data(), h.size());
        (void)::write(fd->get(), head.data(), head.size());
        return;
    }
    ASSERT_TRUE(send_pages(fd->get(), *memory, 0, 0, 64));
    if (stop == StopAfter::Pages) return;
    if (stop == StopAfter::BadState) {
        ASSERT_TRUE(send_blob(fd->get(), Msg::State, std::vector<uint8_t>(64, 7)));
        ASSERT_TRUE(send_blob(fd->get(), Msg::Done, {}));
        // The destination says why it cannot run the VM.
        auto h = read_header(fd->get());
        ASSERT_TRUE(h);
        ASSERT_EQ(h->type, Msg::Ack);
        auto ack = parse_ack(*read_payload(fd->get(), *h, kMaxControlFrame));
        ASSERT_TRUE(ack);
        EXPECT_FALSE(ack->ok);
        EXPECT_FALSE(ack->message.empty());
        return;
    }
    ASSERT_TRUE(send_blob(fd->get(), Msg::State, std::vector<uint8_t>(64, 7)));
}

// Runs a destination against fake_source(stop); it must refuse and leave
// no VM.
inline void expect_refused_without_vm(StopAfter stop) {
    const std::string path =
        fmt::format("/tmp/rv-mig-test-{}-{}.sock", ::getpid(), static_cast<int>(stop));
    auto vmm = Vmm::create(VmConfig{}, Vmm::Options{});
    ASSERT_TRUE(vmm);
    Result<void> received;
    std::thread source(fake_source, "unix:" + path, stop);
    std::thread destination([&, v = vmm->get()] {
        received = v->receive_migration("unix:" + path, {});
        v->fail("done");
    });
    (*vmm)->run();
    destination.join();
    source.join();
    EXPECT_FALSE(received);
    if (!received) std::printf("refused: %s\n", received.error().message().c_str());
    EXPECT_EQ((*vmm)->instance_info().state, VmState::NotStarted);
    ::unlink(path.c_str());
}

}  // namespace rv::migration::test
