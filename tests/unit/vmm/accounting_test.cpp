#include "vmm/accounting.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "devices/legacy/ide/ata.h"
#include "support/fake_msi_router.h"
#include "support/recording_irq_line.h"
#include "unit/backends/block_test_util.h"
#include "vmm/device_manager.h"

namespace rv::accounting {
namespace {

// A vCPU thread's stat line: the name holds a space and a ')'; guest_time
// (field 43) is 250 ticks.
std::string stat_line(uint64_t utime, uint64_t stime, uint64_t guest) {
    std::ostringstream s;
    s << "4242 (vcpu 0) x) R";
    for (int field = 4; field <= 52; ++field) {
        uint64_t v = field == 14 ? utime : field == 15 ? stime : field == 43 ? guest : 7;
        s << ' ' << v;
    }
    s << '\n';
    return s.str();
}

TEST(ThreadTimes, ParsesStatAndSchedstat) {
    auto t = parse_thread_times(stat_line(300, 20, 250), "3200000000 150000000 981\n", 10'000'000);
    ASSERT_TRUE(t);
    EXPECT_EQ(t->cpu_ns, 3'200'000'000u);
    EXPECT_EQ(t->guest_ns, 2'500'000'000u);
    EXPECT_EQ(t->run_delay_ns, 150'000'000u);
    auto p = parse_process_cpu_ns(stat_line(300, 20, 250), 10'000'000);
    ASSERT_TRUE(p);
    EXPECT_EQ(*p, 3'200'000'000u);
    EXPECT_FALSE(parse_thread_times("4242 (short) R 1 2 3\n", "1 2 3\n", 1));
    EXPECT_FALSE(parse_thread_times(stat_line(1, 1, 1), "garbage", 1));
    EXPECT_FALSE(parse_thread_times("no parenthesis", "1 2 3", 1));
}

TEST(ThreadTimes, ThisThreadFromProc) {
    volatile uint64_t x = 0;
    for (int i = 0; i < 20'000'000; ++i) x = x + i;
    auto t = thread_times(::gettid());
    ASSERT_TRUE(t);
    EXPECT_GT(t->cpu_ns, 1'000'000u);  // it ran
    EXPECT_EQ(t->guest_ns, 0u);         // never in a guest
    EXPECT_FALSE(thread_times(0));
    EXPECT_FALSE(thread_times(999'999'999));
    auto p = process_cpu_ns();
    ASSERT_TRUE(p);
    EXPECT_GE(*p + 20'000'000, t->cpu_ns);  // ticks vs ns: within two ticks
}

Sample sample(uint64_t guest0, uint64_t guest1, uint64_t delay, uint64_t process, uint64_t reads,
              uint64_t exits) {
    Sample s;
    s.utc_ms = 1000;
    s.vcpus.push_back({0, ThreadTimes{guest0 + 5, guest0, delay}, {{"exits", exits}, {"io_exits", exits / 2}}});
    s.vcpus.push_back({1, ThreadTimes{guest1 + 5, guest1, delay * 2}, {{"exits", exits}}});
    s.process_cpu_ns = process;
    s.rss_bytes = 64 << 20;
    s.disks["data"] = {{"read_bytes", reads}, {"reads", reads / 65536}, {"requests", reads / 4096}};
    s.disks["legacy"] = {{"write_bytes", exits * 512}, {"writes", exits}};  // an IDE disk
    s.nics["eth0"] = {{"rx_bytes", 1500 * exits}, {"tx_packets", exits}};
    s.cgroup = cgroup::Usage{guest0 + guest1, process - guest0 - guest1 - 300'000'000, 300'000'000};
    return s;
}

TEST(Record, TotalsAndIntervalAddUp) {
    Sample a = sample(1'000'000'000, 2'000'000'000, 100'000'000, 4'000'000'000, 1 << 20, 100);
    Sample b = sample(1'500'000'000, 2'100'000'000, 300'000'000, 5'000'000'000, 3 << 20, 250);
    b.at = a.at + std::chrono::seconds(10);
    auto j = record(b, &a, "interval", "vm1");
    EXPECT_EQ(j["vm"], "vm1");
    EXPECT_EQ(j["kind"], "interval");
    EXPECT_EQ(j["rss_bytes"], 64 << 20);
    const auto& t = j["total"];
    EXPECT_EQ(t["guest_cpu_ms"], 3600);
    EXPECT_EQ(t["process_cpu_ms"], 5000);
    EXPECT_EQ(t["vmm_overhead_cpu_ms"], 1400);  // process - guest
    EXPECT_EQ(t["steal_ms"], 900);             // 300 + 600
    EXPECT_EQ(t["vcpus"][1]["steal_ms"], 600);
    EXPECT_EQ(t["exits"]["exits"], 500);
    EXPECT_EQ(t["block"]["data"]["read_bytes"], 3 << 20);
    EXPECT_EQ(t["net"]["eth0"]["tx_packets"], 250);
    EXPECT_EQ(t["cgroup_cpu_ms"]["vmm"], 1100);
    EXPECT_EQ(t["cgroup_cpu_ms"]["before_cgroup"], 300);
    const auto& i = j["interval"];
    EXPECT_DOUBLE_EQ(i["seconds"].get<double>(), 10.0);
    EXPECT_EQ(i["guest_cpu_ms"], 600);            // 500 + 100
    EXPECT_EQ(i["process_cpu_ms"], 1000);
    EXPECT_EQ(i["vmm_overhead_cpu_ms"], 400);     // 1400 - 1000
    EXPECT_EQ(i["vcpus"][0]["guest_ms"], 500);
    EXPECT_EQ(i["vcpus"][0]["steal_ms"], 200);
    EXPECT_EQ(i["exits"]["io_exits"], 75);
    EXPECT_EQ(i["block"]["data"]["read_bytes"], 2 << 20);
    EXPECT_EQ(i["block"]["data"]["requests"], 512);
    EXPECT_EQ(i["block"]["data"]["reads"], 32);
    EXPECT_EQ(t["block"]["legacy"]["writes"], 250);
    EXPECT_EQ(i["block"]["legacy"]["write_bytes"], 150 * 512);
    EXPECT_EQ(i["net"]["eth0"]["rx_bytes"], 1500 * 150);
    EXPECT_FALSE(record(b, nullptr, "current", "vm1").contains("interval"));
}

TEST(Record, CountersThatGoBackDoNotWrap) {
    // A device reset or a new drive: a counter smaller than before is 0 for
    // the interval, never 2^64 - something.
    Sample a = sample(1'000'000'000, 0, 0, 2'000'000'000, 8 << 20, 100);
    Sample b = sample(1'000'000'000, 0, 0, 2'000'000'000, 1 << 20, 100);
    b.disks["new"] = {{"read_bytes", 4096}};
    auto i = record(b, &a, "interval", "vm")["interval"];
    EXPECT_EQ(i["block"]["data"]["read_bytes"], 0);
    EXPECT_EQ(i["block"]["new"]["read_bytes"], 4096);
    EXPECT_EQ(i["guest_cpu_ms"], 0);
}

// Every model's billed counters, by device id; the rest (the IDE
// controller's own entry, virtio-rng, --stats-only counters) stay out.
TEST(DeviceCounters, DrivesAndNicsOfEveryModel) {
    const std::vector<DeviceInfo> devices{
        {"root",
         "virtio-blk",
         {{"requests", 9},
          {"reads", 5},
          {"writes", 3},
          {"read_bytes", 5 << 12},
          {"write_bytes", 3 << 12},
          {"flushes", 1},
          {"errors", 0},
          {"interrupts", 8}}},
        {"ide-controller", "ide", {{"drive0_reads", 2}, {"drive0_read_bytes", 1024}, {"throttled", 0}}},
        {"legacy",
         "ide-disk",
         {{"requests", 4},
          {"reads", 2},
          {"writes", 1},
          {"read_bytes", 1024},
          {"write_bytes", 512},
          {"throttled", 0}}},
        {"eth0",
         "virtio-net",
         {{"rx_packets", 3},
          {"rx_bytes", 300},
          {"tx_packets", 2},
          {"tx_bytes", 200},
          {"rx_dropped", 1}}},
        {"eth1",
         "e1000",
         {{"rx_packets", 4},
          {"rx_bytes", 400},
          {"tx_packets", 5},
          {"tx_bytes", 500},
          {"rdh", 7},
          {"irq_level", 1}}},
        {"virtio-rng", "virtio-rng", {{"bytes", 64}}},
    };
    Sample s;
    add_device_counters(devices, s);
    using Counters = std::map<std::string, uint64_t>;
    ASSERT_EQ(s.disks.size(), 2u);
    EXPECT_EQ(s.disks["root"], (Counters{{"requests", 9},
                                         {"reads", 5},
                                         {"writes", 3},
                                         {"read_bytes", 5 << 12},
                                         {"write_bytes", 3 << 12}}));
    EXPECT_EQ(s.disks["legacy"], (Counters{{"requests", 4},
                                           {"reads", 2},
                                           {"writes", 1},
                                           {"read_bytes", 1024},
                                           {"write_bytes", 512}}));
    ASSERT_EQ(s.nics.size(), 2u);
    EXPECT_EQ(
        s.nics["eth0"],
        (Counters{{"rx_packets", 3}, {"rx_bytes", 300}, {"tx_packets", 2}, {"tx_bytes", 200}}));
    EXPECT_EQ(
        s.nics["eth1"],
        (Counters{{"rx_packets", 4}, {"rx_bytes", 400}, {"tx_packets", 5}, {"tx_bytes", 500}}));
    auto t = record(s, nullptr, "current", "vm")["total"];
    EXPECT_EQ(t["block"]["legacy"]["read_bytes"], 1024);
    EXPECT_EQ(t["net"]["eth1"]["tx_bytes"], 500);
    EXPECT_FALSE(t["block"].contains("ide-controller"));
}

class NoVmControl final : public VmControl {
  public:
    void request_exit(VmExitReason, std::string) override {}
    bool exiting() const override { return false; }
};

// The device manager lists each IDE disk under its drive id, so a read
// through the legacy ports is billed to that drive (the event loop on its
// own thread completes the backend I/O, as in a running VM).
TEST(DeviceCounters, IdeDiskReadThroughTheDeviceManagerIsBilledToItsDrive) {
    GuestMemory::RegionSpec spec{GuestAddress(0), 16 << 20};
    auto memory = GuestMemory::create(std::span(&spec, 1));
    ASSERT_TRUE(memory);
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop);
    PioBus pio;
    MmioBus mmio;
    test::FakeMsiRouter msi;
    NoVmControl control;
    test::TempImage root_image(1 << 20), ide0(1 << 20), ide1(1 << 20);
    VmConfig config;
    for (auto [id, path, iface] :
         {std::tuple{"root", root_image.path(), DiskConfig::Interface::Virtio},
          std::tuple{"old0", ide0.path(), DiskConfig::Interface::Ide},
          std::tuple{"ide", ide1.path(), DiskConfig::Interface::Ide}})
        config.disks.push_back(DiskConfig{
            .id = id, .path = path, .iface = iface, .engine = BlockOptions::Engine::Sync});
    config.resolve_defaults();
    auto dm = DeviceManager::create(
        config,
        DeviceContext{.memory = *memory,
                      .pio = pio,
                      .mmio = mmio,
                      .loop = **loop,
                      .msi = msi,
                      .control = control,
                      .irq = [](uint32_t) { return std::make_shared<test::RecordingIrqLine>(); },
                      .console_output = [](std::span<const uint8_t>) {},
                      .flush_posted_writes = [] {},
                      .bar_observer = {}});
    ASSERT_TRUE(dm) << dm.error().message();
    std::vector<std::pair<std::string, std::string>> listed;
    for (const auto& d : (*dm)->devices()) listed.emplace_back(d.id, d.kind);
    EXPECT_EQ(
        listed,
        (std::vector<std::pair<std::string, std::string>>{
            {"root", "virtio-blk"}, {"ide-controller", "ide"}, {"old0", "ide-disk"}, {"ide", "ide-disk"}}));

    // READ SECTORS, 2 sectors at LBA 4, from the primary slave ("ide", which is not the controller).
    std::thread loop_thread([&] { (void)(*loop)->run(); });
    auto out8 = [&](uint16_t port, uint8_t v) { pio.write(PioAddress(port), std::span(&v, 1)); };
    auto in8 = [&](uint16_t port) {
        uint8_t v = 0;
        pio.read(PioAddress(port), std::span(&v, 1));
        return v;
    };
    out8(0x1F6, 0xE0 | 0x10);  // LBA, slave
    out8(0x1F2, 2);
    out8(0x1F3, 4);
    out8(0x1F4, 0);
    out8(0x1F5, 0);
    out8(0x1F7, ata::cmd::kReadSectors);
    for (int sector = 0; sector < 2; ++sector) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while ((in8(0x3F6) & ata::kStatusBsy) && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        ASSERT_EQ(in8(0x1F7) & (ata::kStatusDrq | ata::kStatusErr), ata::kStatusDrq);
        std::array<uint8_t, 2> word{};
        for (int i = 0; i < 256; ++i) pio.read(PioAddress(0x1F0), word);
    }
    (*loop)->stop();
    loop_thread.join();

    Sample s;
    add_device_counters((*dm)->devices(), s);
    EXPECT_EQ(s.disks["ide"]["reads"], 1u);
    EXPECT_EQ(s.disks["ide"]["read_bytes"], 1024u);
    EXPECT_EQ(s.disks["old0"]["reads"], 0u);
    EXPECT_EQ(s.disks["root"]["reads"], 0u);
    EXPECT_FALSE(s.disks.contains("ide-controller"));
}

TEST(Ledger, AppendsSyncedRecordsAndRefusesBadPaths) {
    auto loop = EventLoop::create();
    ASSERT_TRUE(loop);
    char path[] = "/tmp/rv-ledger-XXXXXX";
    int fd = ::mkstemp(path);
    ASSERT_GE(fd, 0);
    ::close(fd);
    uint64_t guest = 0;
    auto sampler = [&] {
        Sample s = sample(guest, 0, 0, guest * 2, 0, 0);
        guest += 1'000'000'000;
        return s;
    };
    {
        auto ledger = Ledger::open(path, std::chrono::seconds(10), **loop, "vm7", sampler);
        ASSERT_TRUE(ledger) << ledger.error().message();
        ASSERT_TRUE((*ledger)->write("interval"));
        ASSERT_TRUE((*ledger)->write("final"));
        EXPECT_EQ((*ledger)->records(), 2u);
    }
    std::ifstream in(path);
    std::string line;
    std::vector<nlohmann::json> lines;
    while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
    ASSERT_EQ(lines.size(), 2u);
    EXPECT_EQ(lines[0]["kind"], "interval");
    EXPECT_EQ(lines[1]["kind"], "final");
    EXPECT_EQ(lines[0]["interval"]["guest_cpu_ms"], 1000);  // since open's sample
    EXPECT_EQ(lines[1]["interval"]["guest_cpu_ms"], 1000);
    EXPECT_EQ(lines[1]["total"]["guest_cpu_ms"], 2000);
    ::unlink(path);

    auto bad = Ledger::open("/nonexistent/dir/ledger", std::chrono::seconds(10), **loop, "vm", sampler);
    ASSERT_FALSE(bad);
    EXPECT_TRUE(bad.error().is_input());
    EXPECT_FALSE(Ledger::open(path, std::chrono::seconds(0), **loop, "vm", sampler));
}

}  // namespace
}  // namespace rv::accounting
