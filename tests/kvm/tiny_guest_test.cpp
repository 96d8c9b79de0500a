// Tiny hand-written guests on /dev/kvm: exits reach the right bus device,
// HLT, resets and triple faults stop the VM with the right reason.
#include <vector>

#include "devices/legacy/acpi_pm.h"
#include "devices/legacy/i8042.h"
#include "kvm/tiny_guest.h"
#include "vmm/kvm_probe.h"

namespace rv::test {
namespace {

class Recorder : public BusDevice {
public:
    explicit Recorder(uint8_t read_value) : m_read_value(read_value) {}
    std::string_view name() const override { return "recorder"; }
    void read(uint64_t offset, std::span<uint8_t> data) override {
        reads.push_back(offset);
        for (auto& b : data) b = m_read_value;
    }
    void write(uint64_t offset, std::span<const uint8_t> data) override {
        writes.push_back({offset, std::vector<uint8_t>(data.begin(), data.end())});
    }
    struct Write {
        uint64_t offset;
        std::vector<uint8_t> data;
    };
    std::vector<uint64_t> reads;
    std::vector<Write> writes;

private:
    uint8_t m_read_value;
};

TEST(TinyGuest, PortIoReachesTheRightDevice) {
    RV_REQUIRE_KVM();
    const uint8_t code[] = {
        0xB0, 0x5A,  // mov al, 0x5a
        0xE6, 0x10,  // out 0x10, al      -> dev_a offset 0
        0xE4, 0x21,  // in al, 0x21       -> dev_b offset 1 returns 0xb7
        0xE6, 0x12,  // out 0x12, al      -> dev_a offset 2 gets 0xb7
        0xF4,        // hlt
    };
    auto g = TinyGuest::create(code);
    ASSERT_TRUE(g);
    auto a = std::make_shared<Recorder>(0xa1);
    auto b = std::make_shared<Recorder>(0xb7);
    ASSERT_TRUE(g->pio.insert(a, PioAddress(0x10), 4));
    ASSERT_TRUE(g->pio.insert(b, PioAddress(0x20), 4));
    g->run();
    ASSERT_EQ(a->writes.size(), 2u);
    EXPECT_EQ(a->writes[0].offset, 0u);
    EXPECT_EQ(a->writes[0].data, std::vector<uint8_t>{0x5a});
    EXPECT_EQ(a->writes[1].offset, 2u);
    EXPECT_EQ(a->writes[1].data, std::vector<uint8_t>{0xb7});
    EXPECT_EQ(b->reads, std::vector<uint64_t>{1});
    EXPECT_TRUE(a->reads.empty());
    EXPECT_EQ(g->control.reason, VmExitReason::PowerOff);  // HLT without irqchip
    EXPECT_EQ(g->vcpu->stats().pio_exits.load(), 3u);
}

TEST(TinyGuest, StringPortIoDeliversEveryElement) {
    RV_REQUIRE_KVM();
    const uint8_t code[] = {
        0xBE, 0x00, 0x12,  // mov si, 0x1200
        0xB9, 0x04, 0x00,  // mov cx, 4
        0xBA, 0x30, 0x00,  // mov dx, 0x30
        0xF3, 0x6E,        // rep outsb
        0xF4,              // hlt
    };
    auto g = TinyGuest::create(code);
    ASSERT_TRUE(g);
    const uint8_t text[] = {'r', 'i', 'n', 'g'};
    ASSERT_TRUE(g->memory.write(GuestAddress(0x1200), text));
    auto dev = std::make_shared<Recorder>(0);
    ASSERT_TRUE(g->pio.insert(dev, PioAddress(0x30), 1));
    g->run();
    std::vector<uint8_t> got;
    for (auto& w : dev->writes) got.insert(got.end(), w.data.begin(), w.data.end());
    EXPECT_EQ(got, std::vector<uint8_t>(text, text + 4));
}

TEST(TinyGuest, MmioReachesTheRightDevice) {
    RV_REQUIRE_KVM();
    const uint8_t code[] = {
        0xBB, 0x00, 0xD0,              // mov bx, 0xd000
        0x8E, 0xDB,                    // mov ds, bx      (segment base 0xd0000)
        0xC6, 0x06, 0x10, 0x00, 0x77,  // mov byte [0x10], 0x77  -> 0xd0010
        0xA0, 0x20, 0x00,              // mov al, [0x20]         <- 0xd0020
        0xE6, 0x12,                    // out 0x12, al
        0xF4,                          // hlt
    };
    auto g = TinyGuest::create(code);
    ASSERT_TRUE(g);
    auto mmio = std::make_shared<Recorder>(0x3c);
    auto port = std::make_shared<Recorder>(0);
    ASSERT_TRUE(g->mmio.insert(mmio, MmioAddress(0xd0000), 0x1000));
    ASSERT_TRUE(g->pio.insert(port, PioAddress(0x12), 1));
    g->run();
    ASSERT_EQ(mmio->writes.size(), 1u);
    EXPECT_EQ(mmio->writes[0].offset, 0x10u);
    EXPECT_EQ(mmio->writes[0].data, std::vector<uint8_t>{0x77});
    EXPECT_EQ(mmio->reads, std::vector<uint64_t>{0x20});
    ASSERT_EQ(port->writes.size(), 1u);
    EXPECT_EQ(port->writes[0].data, std::vector<uint8_t>{0x3c});
    EXPECT_EQ(g->vcpu->stats().mmio_exits.load(), 2u);
}

// Writes to a coalesced zone do not exit; they reach the device, in order,
// before the exit that follows them is served.
TEST(TinyGuest, PostedMmioWritesLandBeforeTheNextExit) {
    RV_REQUIRE_KVM();
    const uint8_t code[] = {
        0xBB, 0x00, 0xD0,              // mov bx, 0xd000
        0x8E, 0xDB,                    // mov ds, bx      (segment base 0xd0000)
        0xC6, 0x06, 0x18, 0x00, 0x01,  // mov byte [0x18], 1   posted
        0xC6, 0x06, 0x18, 0x00, 0x02,  // mov byte [0x18], 2   posted
        0xC6, 0x06, 0x40, 0x00, 0x03,  // mov byte [0x40], 3   outside the zone: exits
        0xC6, 0x06, 0x18, 0x00, 0x04,  // mov byte [0x18], 4   posted
        0xB0, 0x05,                    // mov al, 5
        0xE6, 0x12,                    // out 0x12, al
        0xF4,                          // hlt
    };
    auto g = TinyGuest::create(code, /*posted=*/true);
    ASSERT_TRUE(g);
    ASSERT_TRUE(g->vm->register_coalesced_mmio(0xd0018, 4));
    std::vector<std::pair<char, uint8_t>> order;  // (device, value) as served
    class Logger : public BusDevice {
    public:
        Logger(char tag, std::vector<std::pair<char, uint8_t>>& log) : m_tag(tag), m_log(log) {}
        std::string_view name() const override { return "logger"; }
        void read(uint64_t, std::span<uint8_t> data) override {
            std::fill(data.begin(), data.end(), 0);
        }
        void write(uint64_t, std::span<const uint8_t> data) override {
            m_log.emplace_back(m_tag, data[0]);
        }

    private:
        char m_tag;
        std::vector<std::pair<char, uint8_t>>& m_log;
    };
    ASSERT_TRUE(g->mmio.insert(std::make_shared<Logger>('m', order), MmioAddress(0xd0000), 0x1000));
    ASSERT_TRUE(g->pio.insert(std::make_shared<Logger>('p', order), PioAddress(0x12), 1));
    g->run();
    const std::vector<std::pair<char, uint8_t>> want{{'m', 1}, {'m', 2}, {'m', 3}, {'m', 4}, {'p', 5}};
    EXPECT_EQ(order, want);
    EXPECT_EQ(g->vcpu->stats().mmio_exits.load(), 1u);  // only the write outside the zone
    EXPECT_EQ(g->ring->drained(), 3u);
    // A zone can be taken away again (a BAR moving).
    EXPECT_TRUE(g->vm->unregister_coalesced_mmio(0xd0018, 4));
}

TEST(TinyGuest, UnclaimedPortReadsZero) {
    RV_REQUIRE_KVM();
    const uint8_t code[] = {
        0xB0, 0xFF,  // mov al, 0xff
        0xE4, 0x99,  // in al, 0x99 (nobody there)
        0xE6, 0x12,  // out 0x12, al
        0xF4,
    };
    auto g = TinyGuest::create(code);
    ASSERT_TRUE(g);
    auto port = std::make_shared<Recorder>(0);
    ASSERT_TRUE(g->pio.insert(port, PioAddress(0x12), 1));
    g->run();
    ASSERT_EQ(port->writes.size(), 1u);
    EXPECT_EQ(port->writes[0].data, std::vector<uint8_t>{0});
}

TEST(TinyGuest, I8042ResetCommandResetsTheVm) {
    RV_REQUIRE_KVM();
    const uint8_t code[] = {
        0xB0, 0xFE,  // mov al, 0xfe   (pulse the CPU reset line)
        0xE6, 0x64,  // out 0x64, al
        0xEB, 0xFE,  // jmp $           (never reached: the VM stops first)
    };
    auto g = TinyGuest::create(code);
    ASSERT_TRUE(g);
    auto i8042 = I8042::create(nullptr,  // no irqchip; the guest never reads a key
                               [&] { g->control.request_exit(VmExitReason::Reset, "i8042"); });
    ASSERT_TRUE(g->pio.insert(i8042->data_port(), PioAddress(I8042::kDataPort), 1));
    ASSERT_TRUE(g->pio.insert(i8042->command_port(), PioAddress(I8042::kCommandPort), 1));
    g->run();
    EXPECT_EQ(g->control.reason, VmExitReason::Reset);
}

TEST(TinyGuest, AcpiSleepS5PowersOff) {
    RV_REQUIRE_KVM();
    const uint8_t code[] = {
        0xB8, 0x00, 0x34,  // mov ax, 0x3400  (SLP_EN | SLP_TYP 5)
        0xBA, 0x04, 0x06,  // mov dx, 0x604   (PM1a_CNT)
        0xEF,              // out dx, ax
        0xEB, 0xFE,        // jmp $
    };
    auto g = TinyGuest::create(code);
    ASSERT_TRUE(g);
    auto pm = std::make_shared<AcpiPmDevice>(
        [&] { g->control.request_exit(VmExitReason::PowerOff, "S5"); });
    ASSERT_TRUE(g->pio.insert(pm, PioAddress(AcpiPmDevice::kDefaultBase), AcpiPmDevice::kLength));
    g->run();
    EXPECT_EQ(g->control.reason, VmExitReason::PowerOff);
    EXPECT_EQ(g->control.message, "S5");
}

TEST(TinyGuest, TripleFaultIsACrash) {
    RV_REQUIRE_KVM();
    // The software-assisted KVM of our development machines emulates ring 0 and
    // spins forever on a fault loop inside KVM_RUN (signals do not interrupt
    // it), so this case only runs where ring-0 code runs natively.
    auto probe = probe_kvm("/dev/kvm", 20000);
    ASSERT_TRUE(probe);
    if (!probe->ring0_native) GTEST_SKIP() << "ring-0 code is emulated by this KVM";
    const uint8_t code[] = {
        0x0F, 0x01, 0x1E, 0x00, 0x11,  // lidt [0x1100]  (limit 0: every vector faults)
        0xCC,                          // int3 -> #GP -> #DF -> triple fault
        0xF4,
    };
    auto g = TinyGuest::create(code);
    ASSERT_TRUE(g);
    g->run();
    // Not a reset the guest asked for: the VMM reports a crash (exit status 4).
    EXPECT_EQ(g->control.reason, VmExitReason::Crash);
    EXPECT_NE(g->control.message.find("vCPU 0: triple fault"), std::string::npos);
}

TEST(KvmProbe, TimesARing0Loop) {
    RV_REQUIRE_KVM();
    auto probe = probe_kvm("/dev/kvm", 20000);
    ASSERT_TRUE(probe) << probe.error().message();
    EXPECT_GT(probe->ns_per_iteration, 0.0);
    EXPECT_GE(probe->max_vcpus, 1u);
    EXPECT_EQ(probe->ring0_native, probe->ns_per_iteration < kEmulatedThresholdNs);
}

TEST(KvmProbe, ReportsMissingDevice) {
    auto probe = probe_kvm("/nonexistent/kvm", 10);
    ASSERT_FALSE(probe);
    EXPECT_NE(probe.error().message().find("does not exist"), std::string::npos);
}

}  // namespace
}  // namespace rv::test
