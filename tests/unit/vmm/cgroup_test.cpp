#include "vmm/cgroup.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

namespace rv::cgroup {
namespace {

// An in-memory cgroup tree with the kernel's rules that matter here: a
// directory is removable only without children and tasks; v1 cpuset
// directories start with empty cpus/mems and take no task until both are
// set; writing a thread id into tasks / cgroup.threads / cgroup.procs moves it.
class FakeFs final : public CgroupFs {
public:
    struct State {
        std::set<std::string> dirs;
        std::map<std::string, std::string> files;
        std::map<pid_t, std::map<std::string, std::string>> where;  // tid -> mount -> dir
        std::vector<std::pair<std::string, std::string>> writes;
        std::map<std::string, int> fail;  // path -> errno for writes
        std::vector<pid_t> threads{100, 101, 102};
        std::optional<pid_t> pit;
        std::vector<std::string> mounts;
        std::set<std::string> cpuset_mounts;  // v1 cpuset hierarchies
        // v2 mounts whose io controller has io.weight (blk-iocost): a
        // cgroup gets the file once its parent enables "+io"; and v1 blkio
        // mounts with blkio.weight (CFQ) in every cgroup.
        // (io.max comes with io.weight here; blkio_throttle_mounts: v1
        // mounts with blkio.throttle.* files, blk-throttle.)
        std::set<std::string> io_weight_mounts, blkio_weight_mounts, blkio_throttle_mounts;
        std::set<std::string> io_enabled;  // dirs whose subtree_control has +io
    };
    explicit FakeFs(State& s) : m_s(s) {}

    Result<void> make_dir(const std::string& path) override {
        if (m_s.dirs.contains(path)) return {};
        if (!m_s.dirs.contains(up(path))) return errno_error("mkdir " + path, ENOENT);
        m_s.dirs.insert(path);
        if (m_s.cpuset_mounts.contains(mount_of(path))) {
            m_s.files[path + "/cpuset.cpus"] = "";
            m_s.files[path + "/cpuset.mems"] = "";
        }
        if (m_s.io_enabled.contains(up(path))) m_s.files[path + "/io.weight"] = "default 100\n";
        if (m_s.io_enabled.contains(up(path))) m_s.files[path + "/io.max"] = "";
        if (m_s.blkio_weight_mounts.contains(mount_of(path))) m_s.files[path + "/blkio.weight"] = "500\n";
        if (m_s.blkio_throttle_mounts.contains(mount_of(path)))
            for (const char* f : {"read_bps_device", "write_bps_device", "read_iops_device",
                                  "write_iops_device"})
                m_s.files[path + "/blkio.throttle." + f] = "";
        return {};
    }
    Result<void> remove_dir(const std::string& path) override {
        if (!m_s.dirs.contains(path)) return errno_error("rmdir " + path, ENOENT);
        for (const auto& d : m_s.dirs)
            if (d.starts_with(path + "/")) return errno_error("rmdir " + path, ENOTEMPTY);
        for (const auto& [tid, mounts] : m_s.where)
            for (const auto& [m, dir] : mounts)
                if (dir == path) return errno_error("rmdir " + path, EBUSY);
        m_s.dirs.erase(path);
        std::erase_if(m_s.files, [&](const auto& f) { return f.first.starts_with(path + "/"); });
        return {};
    }
    bool exists(const std::string& path) override {
        return m_s.dirs.contains(path) || m_s.files.contains(path);
    }
    std::vector<std::string> list_dirs(const std::string& path) override {
        std::vector<std::string> out;
        for (const auto& d : m_s.dirs)
            if (up(d) == path) out.push_back(d.substr(path.size() + 1));
        return out;
    }
    Result<std::string> read(const std::string& path) override {
        auto it = m_s.files.find(path);
        if (it == m_s.files.end()) return errno_error("open " + path, ENOENT);
        return it->second;
    }
    Result<void> write(const std::string& path, std::string_view text) override {
        if (auto f = m_s.fail.find(path); f != m_s.fail.end())
            return errno_error("write " + path, f->second);
        std::string dir = up(path), file = path.substr(dir.size() + 1);
        if (!m_s.dirs.contains(dir)) return errno_error("open " + path, ENOENT);
        m_s.writes.emplace_back(path, std::string(text));
        if (file == "cgroup.subtree_control" && text.find("+io") != std::string_view::npos &&
            m_s.io_weight_mounts.contains(mount_of(dir))) {
            m_s.io_enabled.insert(dir);
            for (const auto& d : m_s.dirs)
                if (up(d) == dir && !m_s.files.contains(d + "/io.weight")) {
                    m_s.files[d + "/io.weight"] = "default 100\n";
                    m_s.files[d + "/io.max"] = "";
                }
        }
        if (file == "tasks" || file == "cgroup.threads" || file == "cgroup.procs") {
            if (m_s.cpuset_mounts.contains(mount_of(dir)) &&
                (m_s.files[dir + "/cpuset.cpus"].empty() || m_s.files[dir + "/cpuset.mems"].empty()))
                return errno_error("write " + path, ENOSPC);
            pid_t tid = std::stoi(std::string(text));
            if (file == "cgroup.procs" && tid == ::getpid()) {
                for (pid_t t : m_s.threads) m_s.where[t][mount_of(dir)] = dir;
            } else {
                m_s.where[tid][mount_of(dir)] = dir;
            }
            return {};
        }
        if (file == "cpuset.cpus" && m_s.cpuset_mounts.contains(mount_of(dir))) {
            // v1: a cpuset is a subset of its parent's and a superset of its children's.
            auto want = cpus(text);
            auto parent = cpus(m_s.files[up(dir) + "/cpuset.cpus"]);
            if (!std::includes(parent.begin(), parent.end(), want.begin(), want.end()))
                return errno_error("write " + path, EINVAL);
            for (const auto& d : m_s.dirs) {
                if (up(d) != dir) continue;
                auto child = cpus(m_s.files[d + "/cpuset.cpus"]);
                if (!std::includes(want.begin(), want.end(), child.begin(), child.end()))
                    return errno_error("write " + path, EBUSY);
            }
        }
        m_s.files[path] = std::string(text);
        return {};
    }
    static std::set<int> cpus(std::string_view text) {
        std::set<int> out;
        std::string t(text);
        size_t pos = 0;
        while (pos < t.size() && t[pos] != '\n') {
            size_t end = t.find_first_of(",\n", pos);
            if (end == std::string::npos) end = t.size();
            std::string part = t.substr(pos, end - pos);
            auto dash = part.find('-');
            int a = std::stoi(part.substr(0, dash));
            int b = dash == std::string::npos ? a : std::stoi(part.substr(dash + 1));
            for (int i = a; i <= b; ++i) out.insert(i);
            pos = end + 1;
        }
        return out;
    }
    std::vector<pid_t> own_threads() override { return m_s.threads; }
    std::optional<pid_t> pit_thread() override { return m_s.pit; }

    static std::string up(const std::string& p) { return p.substr(0, p.rfind('/')); }
    std::string mount_of(const std::string& p) const {
        for (const auto& m : m_s.mounts)
            if (p == m || p.starts_with(m + "/")) return m;
        return "";
    }

private:
    State& m_s;
};

// This machine's layout: v1 cpu, cpuacct and cpuset, a v2 mount without controllers.
constexpr std::string_view kHybridMountinfo =
    "22 1 0:20 / /sys rw - sysfs sysfs rw\n"
    "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "34 30 0:31 /process_api/d5 /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
constexpr std::string_view kHybridCgroup =
    "9:name=systemd:/\n4:memory:/process_api/d5\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";

std::string nothing(const std::string&) { return ""; }

TEST(CgroupDetect, HybridV1Controllers) {
    Host h = detect(kHybridMountinfo, kHybridCgroup, nothing);
    ASSERT_TRUE(h.cpu && h.cpuacct && h.cpuset);
    EXPECT_EQ(*h.cpu, (Hierarchy{Version::V1, "/sys/fs/cgroup/cpu", "/"}));
    EXPECT_EQ(*h.cpuacct, (Hierarchy{Version::V1, "/sys/fs/cgroup/cpuacct", "/"}));
    EXPECT_EQ(*h.cpuset, (Hierarchy{Version::V1, "/sys/fs/cgroup/cpuset", "/"}));
}

TEST(CgroupDetect, UnifiedV2OffersWhatItLists) {
    std::string mi = "25 1 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
    std::string cg = "0::/system.slice/vm.service\n";
    auto read = [](const std::string& p) {
        return p == "/sys/fs/cgroup/cgroup.controllers" ? std::string("cpuset cpu io memory pids\n")
                                                         : std::string();
    };
    Host h = detect(mi, cg, read);
    ASSERT_TRUE(h.cpu && h.cpuset);
    EXPECT_FALSE(h.cpuacct);
    EXPECT_EQ(*h.cpu, (Hierarchy{Version::V2, "/sys/fs/cgroup", "/system.slice/vm.service"}));
    // Without cpu in cgroup.controllers (it is bound to v1), v2 offers nothing.
    Host none = detect(mi, cg, nothing);
    EXPECT_FALSE(none.cpu || none.cpuset);
}

TEST(CgroupDetect, IoWeightsFromV2IoOrV1Blkio) {
    std::string mi = "25 1 0:22 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
    auto read = [](const std::string&) { return std::string("cpuset cpu io memory pids\n"); };
    Host v2 = detect(mi, "0::/\n", read);
    ASSERT_TRUE(v2.io);
    EXPECT_EQ(*v2.io, (Hierarchy{Version::V2, "/sys/fs/cgroup", "/"}));
    Host v1 = detect(std::string(kHybridMountinfo) +
                         "35 30 0:32 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio\n",
                     std::string("5:blkio:/\n") + std::string(kHybridCgroup), nothing);
    ASSERT_TRUE(v1.io);
    EXPECT_EQ(*v1.io, (Hierarchy{Version::V1, "/sys/fs/cgroup/blkio", "/"}));
    EXPECT_FALSE(detect(kHybridMountinfo, kHybridCgroup, nothing).io);
}

TEST(CgroupDetect, CoMountedAndNamespacedPaths) {
    std::string mi =
        "31 30 0:28 /docker/abc /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
    std::string cg = "2:cpu,cpuacct:/docker/abc/inner\n";
    Host h = detect(mi, cg, nothing);
    ASSERT_TRUE(h.cpu && h.cpuacct);
    EXPECT_EQ(h.cpu->mount, h.cpuacct->mount);
    EXPECT_EQ(h.cpu->current, "/inner");  // inside the mount, not the host's path
    EXPECT_FALSE(h.cpuset);
}

TEST(CpuPolicyParse, CpuMaxAndCpuList) {
    auto m = parse_cpu_max("25000/100000");
    ASSERT_TRUE(m);
    EXPECT_EQ(m->quota_us, 25000u);
    EXPECT_EQ(m->period_us, 100000u);
    EXPECT_EQ(format_cpu_max(*m), "25000/100000");
    for (const char* bad : {"", "25000", "25000/", "/100000", "x/100000", "25000/100", "500/100000",
                            "25000/2000000", "-1/100000"}) {
        auto r = parse_cpu_max(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_TRUE(r.error().is_input());
    }
    for (const char* ok : {"0", "0-3", "0-3,6", "1,3,5-7"}) EXPECT_TRUE(check_cpu_list(ok)) << ok;
    for (const char* bad : {"", "a", "3-1", "0,,1", "0-", "1-2-3", "99999"})
        EXPECT_FALSE(check_cpu_list(bad)) << bad;
    EXPECT_FALSE(check_policy(CpuPolicy{.weight = 0}));
    EXPECT_FALSE(check_policy(CpuPolicy{.weight = 10001}));
    EXPECT_TRUE(check_policy(CpuPolicy{.weight = 1}));
    EXPECT_TRUE(check_policy(CpuPolicy{.weight = 10000}));
}

struct V1Fixture : ::testing::Test {
    FakeFs::State s;
    Host host;
    void SetUp() override {
        host = detect(kHybridMountinfo, kHybridCgroup, nothing);
        for (const char* m : {"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/cpuset"}) {
            s.mounts.push_back(m);
            s.dirs.insert(m);
            for (pid_t t : s.threads) s.where[t][m] = m;
        }
        s.cpuset_mounts.insert("/sys/fs/cgroup/cpuset");
        s.files["/sys/fs/cgroup/cpuset/cpuset.cpus"] = "0-1\n";
        s.files["/sys/fs/cgroup/cpuset/cpuset.mems"] = "0\n";
    }
    std::unique_ptr<CgroupFs> fs() { return std::make_unique<FakeFs>(s); }
    std::string file(const std::string& p) { return s.files.count(p) ? s.files[p] : "<none>"; }
};

TEST_F(V1Fixture, TreeInEveryHierarchyWithPolicyAndThreads) {
    CpuPolicy p{.weight = 200, .max = CpuPolicy::Max{25000, 100000}, .cpuset = "0"};
    auto cg = VmCgroup::create(fs(), host, "ringvisor", "rv-7", p);
    ASSERT_TRUE(cg) << cg.error().message();
    const std::string cpu = "/sys/fs/cgroup/cpu/ringvisor/rv-7";
    const std::string cs = "/sys/fs/cgroup/cpuset/ringvisor/rv-7";
    EXPECT_EQ((*cg)->path(), cpu);
    for (const char* m : {"cpu", "cpuacct", "cpuset"})
        for (const char* c : {"", "/vcpus", "/vmm"})
            EXPECT_TRUE(s.dirs.contains(fmt::format("/sys/fs/cgroup/{}/ringvisor/rv-7{}", m, c)));
    EXPECT_EQ(file(cpu + "/cpu.shares"), "2048");  // weight 200 of 100 = 2 x 1024
    EXPECT_EQ(file(cpu + "/cpu.cfs_period_us"), "100000");
    EXPECT_EQ(file(cpu + "/cpu.cfs_quota_us"), "25000");
    EXPECT_EQ(file(cs + "/cpuset.cpus"), "0");
    EXPECT_EQ(file(cs + "/vcpus/cpuset.cpus"), "0");
    EXPECT_EQ(file(cs + "/vmm/cpuset.mems"), "0");  // inherited, or no task could join
    for (pid_t t : s.threads) EXPECT_EQ(s.where[t]["/sys/fs/cgroup/cpuacct"], "/sys/fs/cgroup/cpuacct/ringvisor/rv-7/vmm");

    ASSERT_TRUE((*cg)->add_vcpu_thread(101));
    EXPECT_EQ(s.where[101]["/sys/fs/cgroup/cpu"], cpu + "/vcpus");
    EXPECT_EQ(s.where[101]["/sys/fs/cgroup/cpuset"], cs + "/vcpus");

    s.files["/sys/fs/cgroup/cpuacct/ringvisor/rv-7/vcpus/cpuacct.usage"] = "5000000\n";
    s.files["/sys/fs/cgroup/cpuacct/ringvisor/rv-7/vmm/cpuacct.usage"] = "1000\n";
    auto u = (*cg)->usage();
    ASSERT_TRUE(u);
    EXPECT_EQ(u->vcpus_ns, 5000000u);
    EXPECT_EQ(u->vmm_ns, 1000u);

    s.pit = 555;
    auto pit = (*cg)->adopt_pit_thread();
    ASSERT_TRUE(pit && *pit == 555);
    EXPECT_EQ(s.where[555]["/sys/fs/cgroup/cpu"], cpu + "/vmm");

    ASSERT_TRUE((*cg)->remove());
    for (const auto& d : s.dirs) EXPECT_EQ(d.find("ringvisor"), std::string::npos) << d;
    for (pid_t t : {100, 101, 102, 555})
        EXPECT_EQ(s.where[t]["/sys/fs/cgroup/cpu"], "/sys/fs/cgroup/cpu") << t;
}

TEST_F(V1Fixture, ChangingThePolicyWhileRunning) {
    auto cg = VmCgroup::create(fs(), host, "ringvisor", "rv-7", {});
    ASSERT_TRUE(cg);
    const std::string cpu = "/sys/fs/cgroup/cpu/ringvisor/rv-7";
    EXPECT_EQ(file(cpu + "/cpu.shares"), "<none>");  // nothing asked, nothing written
    ASSERT_TRUE((*cg)->apply({.weight = 50}));
    EXPECT_EQ(file(cpu + "/cpu.shares"), "512");
    ASSERT_TRUE((*cg)->apply({.weight = 1}));
    EXPECT_EQ(file(cpu + "/cpu.shares"), "10");
    // v1 keeps children inside their parent: narrowing must do the children
    // first, widening the parent first; both work.
    const std::string cs = "/sys/fs/cgroup/cpuset/ringvisor/rv-7";
    EXPECT_EQ(file(cs + "/vmm/cpuset.cpus"), "0-1");
    ASSERT_TRUE((*cg)->apply({.cpuset = "1"}));
    EXPECT_EQ(file(cs + "/cpuset.cpus"), "1");
    EXPECT_EQ(file(cs + "/vmm/cpuset.cpus"), "1");
    EXPECT_EQ(file(cs + "/vcpus/cpuset.cpus"), "1");
    ASSERT_TRUE((*cg)->apply({.cpuset = "0-1"}));
    EXPECT_EQ(file(cs + "/cpuset.cpus"), "0-1");
    EXPECT_EQ(file(cs + "/vcpus/cpuset.cpus"), "0-1");
    // CPUs the host does not have: the kernel's refusal comes back.
    EXPECT_FALSE((*cg)->apply({.cpuset = "5"}));
    auto bad = (*cg)->apply({.weight = 0});
    ASSERT_FALSE(bad);
    EXPECT_TRUE(bad.error().is_input());
}

TEST_F(V1Fixture, FailureHalfwayLeavesNothingBehind) {
    s.fail["/sys/fs/cgroup/cpu/ringvisor/rv-7/cpu.shares"] = EACCES;
    auto cg = VmCgroup::create(fs(), host, "ringvisor", "rv-7", {.weight = 300});
    ASSERT_FALSE(cg);
    EXPECT_NE(cg.error().message().find("cpu.shares"), std::string::npos) << cg.error().message();
    for (const auto& d : s.dirs) EXPECT_EQ(d.find("ringvisor"), std::string::npos) << d;
    for (pid_t t : s.threads) EXPECT_EQ(s.where[t]["/sys/fs/cgroup/cpu"], "/sys/fs/cgroup/cpu");
}

TEST_F(V1Fixture, RefusesWhatTheHostCannotCarryAndBadNames) {
    Host no_cpuset = host;
    no_cpuset.cpuset.reset();
    auto r = VmCgroup::create(fs(), no_cpuset, "ringvisor", "rv-7", {.cpuset = "0"});
    ASSERT_FALSE(r);
    EXPECT_TRUE(r.error().is_input());
    for (const char* name : {"", "a/b", "..", "."}) {
        auto n = VmCgroup::create(fs(), host, "ringvisor", name, {});
        ASSERT_FALSE(n) << name;
        EXPECT_TRUE(n.error().is_input());
    }
    EXPECT_FALSE(VmCgroup::create(fs(), host, "a/../b", "rv-1", {}));
    EXPECT_TRUE(s.dirs.size() == 3);
}

TEST_F(V1Fixture, AnotherVmKeepsTheSharedParent) {
    auto a = VmCgroup::create(fs(), host, "ringvisor", "rv-7", {});
    ASSERT_TRUE(a);
    // A second VMM (another process: its own threads) made its tree meanwhile.
    s.dirs.insert("/sys/fs/cgroup/cpu/ringvisor/rv-8");
    ASSERT_TRUE((*a)->remove());
    EXPECT_TRUE(s.dirs.contains("/sys/fs/cgroup/cpu/ringvisor/rv-8"));
    EXPECT_FALSE(s.dirs.contains("/sys/fs/cgroup/cpu/ringvisor/rv-7"));
    // The same name twice is refused, not shared.
    auto b = VmCgroup::create(fs(), host, "ringvisor", "rv-8", {});
    ASSERT_FALSE(b);
    EXPECT_TRUE(s.dirs.contains("/sys/fs/cgroup/cpu/ringvisor/rv-8"));
}

TEST_F(V1Fixture, SweepRemovesTreesOfDeadVmms) {
    for (const char* d : {"/sys/fs/cgroup/cpu/ringvisor", "/sys/fs/cgroup/cpu/ringvisor/rv-123",
                          "/sys/fs/cgroup/cpu/ringvisor/rv-123/vcpus",
                          "/sys/fs/cgroup/cpu/ringvisor/rv-123/vmm",
                          "/sys/fs/cgroup/cpu/ringvisor/rv-456", "/sys/fs/cgroup/cpu/ringvisor/other"})
        s.dirs.insert(d);
    FakeFs f(s);
    size_t n = VmCgroup::sweep_stale(f, host, "ringvisor", [](pid_t p) { return p == 456; });
    EXPECT_EQ(n, 1u);
    EXPECT_FALSE(s.dirs.contains("/sys/fs/cgroup/cpu/ringvisor/rv-123"));
    EXPECT_TRUE(s.dirs.contains("/sys/fs/cgroup/cpu/ringvisor/rv-456"));
    EXPECT_TRUE(s.dirs.contains("/sys/fs/cgroup/cpu/ringvisor/other"));
}

struct V2Fixture : ::testing::Test {
    FakeFs::State s;
    Host host;
    void SetUp() override {
        host.cpu = Hierarchy{Version::V2, "/cg", "/system.slice/x.service"};
        host.cpuset = host.cpu;
        s.mounts.push_back("/cg");
        for (const char* d : {"/cg", "/cg/system.slice", "/cg/system.slice/x.service"}) s.dirs.insert(d);
        for (pid_t t : s.threads) s.where[t]["/cg"] = "/cg/system.slice/x.service";
    }
};

TEST_F(V2Fixture, ThreadedChildrenAndV2Files) {
    auto cg = VmCgroup::create(std::make_unique<FakeFs>(s), host, "ringvisor", "rv-9",
                               {.weight = 400, .max = CpuPolicy::Max{50000, 100000}, .cpuset = "1"});
    ASSERT_TRUE(cg) << cg.error().message();
    const std::string vm = "/cg/ringvisor/rv-9";
    EXPECT_EQ(s.files["/cg/cgroup.subtree_control"], "+cpu +cpuset");
    EXPECT_EQ(s.files["/cg/ringvisor/cgroup.subtree_control"], "+cpu +cpuset");
    EXPECT_EQ(s.files[vm + "/cgroup.subtree_control"], "+cpu +cpuset");
    EXPECT_EQ(s.files[vm + "/vcpus/cgroup.type"], "threaded");
    EXPECT_EQ(s.files[vm + "/vmm/cgroup.type"], "threaded");
    EXPECT_EQ(s.files[vm + "/cpu.weight"], "400");
    EXPECT_EQ(s.files[vm + "/cpu.max"], "50000 100000");
    EXPECT_EQ(s.files[vm + "/cpuset.cpus"], "1");
    for (pid_t t : s.threads) EXPECT_EQ(s.where[t]["/cg"], vm + "/vmm");
    ASSERT_TRUE((*cg)->add_vcpu_thread(102));
    EXPECT_EQ(s.where[102]["/cg"], vm + "/vcpus");
    s.files[vm + "/vcpus/cpu.stat"] = "usage_usec 1500\nuser_usec 1000\n";
    s.files[vm + "/vmm/cpu.stat"] = "usage_usec 7\n";
    auto u = (*cg)->usage();
    ASSERT_TRUE(u);
    EXPECT_EQ(u->vcpus_ns, 1500000u);
    EXPECT_EQ(u->vmm_ns, 7000u);
    ASSERT_TRUE((*cg)->remove());
    for (pid_t t : s.threads) EXPECT_EQ(s.where[t]["/cg"], "/cg/system.slice/x.service");
    EXPECT_FALSE(s.dirs.contains("/cg/ringvisor"));
}

// io weights on v2: "+io" in every cgroup above the VM's, never in its own
// subtree_control (its children are threaded; io is a domain controller),
// and io.weight on the VM's cgroup.
TEST_F(V2Fixture, IoWeightOnTheVmsDomainCgroup) {
    host.io = host.cpu;
    s.io_weight_mounts.insert("/cg");
    auto cg = VmCgroup::create(std::make_unique<FakeFs>(s), host, "ringvisor", "rv-9",
                               {.weight = 200, .io_weight = 300});
    ASSERT_TRUE(cg) << cg.error().message();
    const std::string vm = "/cg/ringvisor/rv-9";
    EXPECT_EQ(s.files[vm + "/io.weight"], "default 300");
    EXPECT_EQ(s.files[vm + "/cpu.weight"], "200");
    auto io_writes = [&] {
        std::vector<std::string> dirs;
        for (const auto& [path, text] : s.writes)
            if (text.find("+io") != std::string::npos) dirs.push_back(path);
        return dirs;
    };
    EXPECT_EQ(io_writes(), (std::vector<std::string>{"/cg/cgroup.subtree_control",
                                                    "/cg/ringvisor/cgroup.subtree_control"}));
    EXPECT_EQ(s.files[vm + "/cgroup.subtree_control"], "+cpu +cpuset");
    EXPECT_FALSE(s.files.contains(vm + "/vcpus/io.weight"));
    // PATCH: the weight changes; the controller is enabled once.
    ASSERT_TRUE((*cg)->apply({.io_weight = 50}));
    EXPECT_EQ(s.files[vm + "/io.weight"], "default 50");
    EXPECT_EQ(io_writes().size(), 2u);
    ASSERT_TRUE((*cg)->remove());
    EXPECT_FALSE(s.dirs.contains(vm));
}

TEST_F(V2Fixture, IoWeightOnlyWhenAskedForAndOnlyWhereTheHostHasOne) {
    host.io = host.cpu;
    s.io_weight_mounts.insert("/cg");
    auto cg = VmCgroup::create(std::make_unique<FakeFs>(s), host, "ringvisor", "rv-9", {});
    ASSERT_TRUE(cg);
    for (const auto& [path, text] : s.writes) EXPECT_EQ(text.find("+io"), std::string::npos) << path;
    ASSERT_TRUE((*cg)->apply({.io_weight = 10000}));  // first asked for while running
    EXPECT_EQ(s.files["/cg/ringvisor/rv-9/io.weight"], "default 10000");
    ASSERT_TRUE((*cg)->remove());

    // An io controller without weights (no blk-iocost): the user's to know.
    s.io_weight_mounts.clear();
    s.io_enabled.clear();
    auto no_file = VmCgroup::create(std::make_unique<FakeFs>(s), host, "ringvisor", "rv-10",
                                    {.io_weight = 100});
    ASSERT_FALSE(no_file);
    EXPECT_TRUE(no_file.error().is_input());
    EXPECT_NE(no_file.error().message().find("io.weight does not exist"), std::string::npos)
        << no_file.error().message();
    EXPECT_FALSE(s.dirs.contains("/cg/ringvisor/rv-10"));

    // No io controller at all: refused at creation and while running.
    host.io.reset();
    auto none = VmCgroup::create(std::make_unique<FakeFs>(s), host, "ringvisor", "rv-11",
                                 {.io_weight = 100});
    ASSERT_FALSE(none);
    EXPECT_TRUE(none.error().is_input());
    EXPECT_NE(none.error().message().find("no io cgroup controller"), std::string::npos);
    auto running = VmCgroup::create(std::make_unique<FakeFs>(s), host, "ringvisor", "rv-12", {});
    ASSERT_TRUE(running);
    auto patched = (*running)->apply({.io_weight = 100});
    ASSERT_FALSE(patched);
    EXPECT_TRUE(patched.error().is_input());
}

// v1: the VM's tree in the blkio hierarchy (made when a weight is first
// asked for), blkio.weight = weight * 5 within 10..1000.
TEST_F(V1Fixture, IoWeightInTheBlkioHierarchy) {
    const std::string blkio = "/sys/fs/cgroup/blkio";
    s.mounts.push_back(blkio);
    s.dirs.insert(blkio);
    for (pid_t t : s.threads) s.where[t][blkio] = blkio;
    s.blkio_weight_mounts.insert(blkio);
    host.io = Hierarchy{Version::V1, blkio, "/"};
    auto cg = VmCgroup::create(fs(), host, "ringvisor", "rv-7", {.weight = 100});
    ASSERT_TRUE(cg);
    EXPECT_FALSE(s.dirs.contains(blkio + "/ringvisor"));  // nothing asked yet
    ASSERT_TRUE((*cg)->apply({.io_weight = 200}));
    const std::string vm = blkio + "/ringvisor/rv-7";
    EXPECT_EQ(file(vm + "/blkio.weight"), "1000");
    for (pid_t t : s.threads) EXPECT_EQ(s.where[t][blkio], vm + "/vmm");
    ASSERT_TRUE((*cg)->apply({.io_weight = 1}));
    EXPECT_EQ(file(vm + "/blkio.weight"), "10");
    ASSERT_TRUE((*cg)->apply({.io_weight = 100}));
    EXPECT_EQ(file(vm + "/blkio.weight"), "500");
    ASSERT_TRUE((*cg)->add_vcpu_thread(101));
    EXPECT_EQ(s.where[101][blkio], vm + "/vcpus");
    ASSERT_TRUE((*cg)->remove());
    EXPECT_FALSE(s.dirs.contains(vm));
    for (pid_t t : s.threads) EXPECT_EQ(s.where[t][blkio], blkio);

    // Without CFQ there is no blkio.weight: a clear refusal.
    s.blkio_weight_mounts.clear();
    auto cfq_less = VmCgroup::create(fs(), host, "ringvisor", "rv-8", {.io_weight = 100});
    ASSERT_FALSE(cfq_less);
    EXPECT_TRUE(cfq_less.error().is_input());
    EXPECT_NE(cfq_less.error().message().find("blkio.weight does not exist"), std::string::npos);
    for (const auto& d : s.dirs) EXPECT_EQ(d.find("rv-8"), std::string::npos) << d;
}

TEST(CpuPolicyParse, IoMax) {
    auto m = parse_io_max("rbps=1048576,wiops=100");
    ASSERT_TRUE(m) << m.error().message();
    EXPECT_EQ(m->rbps, 1048576u);
    EXPECT_EQ(m->wiops, 100u);
    EXPECT_FALSE(m->wbps);
    EXPECT_FALSE(m->riops);
    EXPECT_EQ(format_io_max(*m), "rbps=1048576,wiops=100");
    auto all = parse_io_max("wiops=4,riops=3,wbps=2,rbps=1");
    ASSERT_TRUE(all);
    EXPECT_EQ(format_io_max(*all), "rbps=1,wbps=2,riops=3,wiops=4");
    for (const char* bad : {"", "rbps", "rbps=", "rbps=0", "rbps=-1", "rbps=1x", "bps=1",
                            "rbps=1,rbps=2", "rbps=1,", "rbps=4611686018427387905"}) {
        auto r = parse_io_max(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_TRUE(r.error().is_input()) << bad;
        EXPECT_NE(r.error().message().find("io_max"), std::string::npos) << r.error().message();
    }
    EXPECT_FALSE(check_policy({.io_max = CpuPolicy::IoMax{.rbps = 0}}));
}

TEST(BlockDeviceOf, FilesOnNoBlockDeviceAndMissingFiles) {
    // /dev/shm is a tmpfs: device major 0, nothing io.max can name.
    const std::string path = "/dev/shm/rv-cgroup-test-" + std::to_string(::getpid());
    { std::ofstream(path) << "x"; }
    auto none = block_device_of(path);
    ::unlink(path.c_str());
    ASSERT_FALSE(none);
    EXPECT_TRUE(none.error().is_input());
    EXPECT_NE(none.error().message().find("no block device"), std::string::npos)
        << none.error().message();
    EXPECT_NE(none.error().message().find(path), std::string::npos);
    EXPECT_FALSE(block_device_of("/nonexistent/rv/disk.img"));
}

// io.max on v2: on the VM's domain cgroup, one line per device the drives
// are on, every cap written ("max" lifts one), so a PATCH replaces the set.
TEST_F(V2Fixture, IoMaxPerDeviceOnTheVmsCgroup) {
    host.io = host.cpu;
    s.io_weight_mounts.insert("/cg");
    auto cg = VmCgroup::create(std::make_unique<FakeFs>(s), host, "ringvisor", "rv-9",
                               {.io_max = CpuPolicy::IoMax{.rbps = 1048576, .wiops = 100}},
                               IoDevices{{"8:0", "253:1"}, ""});
    ASSERT_TRUE(cg) << cg.error().message();
    const std::string file = "/cg/ringvisor/rv-9/io.max";
    auto lines = [&] {
        std::vector<std::string> out;
        for (const auto& [path, text] : s.writes)
            if (path == file) out.push_back(text);
        return out;
    };
    EXPECT_EQ(lines(), (std::vector<std::string>{"8:0 rbps=1048576 wbps=max riops=max wiops=100",
                                                "253:1 rbps=1048576 wbps=max riops=max wiops=100"}));
    s.writes.clear();
    ASSERT_TRUE((*cg)->apply({.io_max = CpuPolicy::IoMax{.wbps = 5}}));
    EXPECT_EQ(lines(), (std::vector<std::string>{"8:0 rbps=max wbps=5 riops=max wiops=max",
                                                "253:1 rbps=max wbps=5 riops=max wiops=max"}));
    ASSERT_TRUE((*cg)->remove());
}

TEST_F(V2Fixture, IoMaxRefusedWithoutABlockDeviceOrDrives) {
    host.io = host.cpu;
    s.io_weight_mounts.insert("/cg");
    auto on_tmpfs = VmCgroup::create(std::make_unique<FakeFs>(s), host, "ringvisor", "rv-9",
                                     {.io_max = CpuPolicy::IoMax{.rbps = 1}},
                                     IoDevices{{"8:0"}, "drive 'data': /x is on device 0:42"});
    ASSERT_FALSE(on_tmpfs);
    EXPECT_TRUE(on_tmpfs.error().is_input());
    EXPECT_NE(on_tmpfs.error().message().find("drive 'data'"), std::string::npos)
        << on_tmpfs.error().message();
    EXPECT_FALSE(s.dirs.contains("/cg/ringvisor/rv-9"));
    auto driveless = VmCgroup::create(std::make_unique<FakeFs>(s), host, "ringvisor", "rv-10", {});
    ASSERT_TRUE(driveless);
    auto patched = (*driveless)->apply({.io_max = CpuPolicy::IoMax{.riops = 10}});
    ASSERT_FALSE(patched);
    EXPECT_TRUE(patched.error().is_input());
    EXPECT_NE(patched.error().message().find("no drive"), std::string::npos);
    // No io controller at all.
    host.io.reset();
    auto none = VmCgroup::create(std::make_unique<FakeFs>(s), host, "ringvisor", "rv-11",
                                 {.io_max = CpuPolicy::IoMax{.rbps = 1}}, IoDevices{{"8:0"}, ""});
    ASSERT_FALSE(none);
    EXPECT_NE(none.error().message().find("no io cgroup controller"), std::string::npos);
}

// v1: blkio.throttle.{read,write}_{bps,iops}_device, 0 lifting a cap; a
// kernel without blk-throttle has no such files: refused, saying so.
TEST_F(V1Fixture, IoMaxInTheBlkioHierarchy) {
    const std::string blkio = "/sys/fs/cgroup/blkio";
    s.mounts.push_back(blkio);
    s.dirs.insert(blkio);
    for (pid_t t : s.threads) s.where[t][blkio] = blkio;
    s.blkio_throttle_mounts.insert(blkio);
    host.io = Hierarchy{Version::V1, blkio, "/"};
    auto cg = VmCgroup::create(fs(), host, "ringvisor", "rv-7",
                               {.io_max = CpuPolicy::IoMax{.rbps = 2000, .riops = 30}},
                               IoDevices{{"7:0"}, ""});
    ASSERT_TRUE(cg) << cg.error().message();
    const std::string vm = blkio + "/ringvisor/rv-7/blkio.throttle.";
    EXPECT_EQ(file(vm + "read_bps_device"), "7:0 2000");
    EXPECT_EQ(file(vm + "write_bps_device"), "7:0 0");
    EXPECT_EQ(file(vm + "read_iops_device"), "7:0 30");
    EXPECT_EQ(file(vm + "write_iops_device"), "7:0 0");
    ASSERT_TRUE((*cg)->remove());

    s.blkio_throttle_mounts.clear();
    auto plain = VmCgroup::create(fs(), host, "ringvisor", "rv-8",
                                  {.io_max = CpuPolicy::IoMax{.rbps = 1}}, IoDevices{{"7:0"}, ""});
    ASSERT_FALSE(plain);
    EXPECT_NE(plain.error().message().find("no I/O throttling"), std::string::npos)
        << plain.error().message();
}

}  // namespace
}  // namespace rv::cgroup
