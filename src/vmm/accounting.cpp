#include "vmm/accounting.h"

#include <fcntl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>

#include "base/log.h"
#include "base/parse.h"
#include "vmm/vm.h"

namespace rv::accounting {

namespace {

// Drives (virtio-blk, and each IDE disk under its own id): the same names,
// so a record does not say which model a drive is. reads / writes are the
// requests or commands that moved data and completed OK.
constexpr std::array kDiskCounters{"read_bytes", "write_bytes", "reads", "writes", "requests"};
// NICs (virtio-net, e1000): frames as they cross the TAP, without FCS.
constexpr std::array kNicCounters{"rx_bytes", "tx_bytes", "rx_packets", "tx_packets"};

uint64_t since(uint64_t now, uint64_t before) { return now >= before ? now - before : 0; }
uint64_t ms(uint64_t ns) { return ns / 1'000'000; }

uint64_t guest_ns(const Sample& s) {
    uint64_t sum = 0;
    for (const auto& v : s.vcpus) sum += v.times.guest_ns;
    return sum;
}

// What happened between `before` (an empty sample: since the start) and `now`.
nlohmann::json section(const Sample& now, const Sample& before) {
    nlohmann::json j;
    auto find_vcpu = [&](unsigned id) -> const Sample::Vcpu* {
        for (const auto& v : before.vcpus)
            if (v.id == id) return &v;
        return nullptr;
    };
    uint64_t guest = 0, steal = 0;
    std::map<std::string, uint64_t> exits;
    j["vcpus"] = nlohmann::json::array();
    for (const auto& v : now.vcpus) {
        const Sample::Vcpu* b = find_vcpu(v.id);
        const ThreadTimes zero{};
        const ThreadTimes& t0 = b ? b->times : zero;
        uint64_t g = since(v.times.guest_ns, t0.guest_ns), st = since(v.times.run_delay_ns, t0.run_delay_ns);
        guest += g;
        steal += st;
        j["vcpus"].push_back({{"id", v.id}, {"guest_ms", ms(g)}, {"steal_ms", ms(st)},
                              {"thread_cpu_ms", ms(since(v.times.cpu_ns, t0.cpu_ns))}});
        for (const auto& [name, value] : v.exits) {
            uint64_t was = 0;
            if (b)
                if (auto it = b->exits.find(name); it != b->exits.end()) was = it->second;
            exits[name] += since(value, was);
        }
    }
    j["guest_cpu_ms"] = ms(guest);
    j["steal_ms"] = ms(steal);
    // Overhead: what the process used beyond its guests' time.
    const uint64_t over_now = since(now.process_cpu_ns, guest_ns(now));
    const uint64_t over_before = since(before.process_cpu_ns, guest_ns(before));
    j["vmm_overhead_cpu_ms"] = ms(since(over_now, over_before));
    j["process_cpu_ms"] = ms(since(now.process_cpu_ns, before.process_cpu_ns));
    j["exits"] = exits;
    auto devices = [](const auto& a, const auto& b) {
        nlohmann::json out = nlohmann::json::object();
        for (const auto& [id, counters] : a) {
            auto old = b.find(id);
            for (const auto& [name, value] : counters) {
                uint64_t was = 0;
                if (old != b.end())
                    if (auto it = old->second.find(name); it != old->second.end()) was = it->second;
                out[id][name] = since(value, was);
            }
        }
        return out;
    };
    j["block"] = devices(now.disks, before.disks);
    j["net"] = devices(now.nics, before.nics);
    if (now.cgroup) {
        const cgroup::Usage zero{};
        const cgroup::Usage& c0 = before.cgroup ? *before.cgroup : zero;
        j["cgroup_cpu_ms"] = {{"vcpus", ms(since(now.cgroup->vcpus_ns, c0.vcpus_ns))},
                              {"vmm", ms(since(now.cgroup->vmm_ns, c0.vmm_ns))},
                              {"before_cgroup", ms(since(now.cgroup->before_ns, c0.before_ns))}};
    }
    return j;
}

}  // namespace

Sample take_sample(const Vm& vm, cgroup::VmCgroup* cg, const std::map<unsigned, ThreadTimes>& vcpu_times) {
    Sample s;
    s.utc_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count());
    s.at = std::chrono::steady_clock::now();
    for (const auto& vcpu : vm.vcpus()) {
        Sample::Vcpu v;
        v.id = vcpu->fd().id();
        if (auto t = thread_times(vcpu->tid()))
            v.times = *t;
        else if (auto it = vcpu_times.find(v.id); it != vcpu_times.end())
            v.times = it->second;
        if (auto stats = vcpu->fd().stats())
            for (const auto& [name, value] : *stats)
                if (name.ends_with("exits")) v.exits[name] = value;
        s.vcpus.push_back(std::move(v));
    }
    s.process_cpu_ns = process_cpu_ns().value_or(0);
    if (auto statm = read_file("/proc/self/statm")) {
        auto sp = statm->find(' ');
        auto sp2 = statm->find(' ', sp + 1);
        if (sp != std::string::npos)
            if (auto pages = parse_u64(std::string_view(*statm).substr(sp + 1, sp2 - sp - 1)))
                s.rss_bytes = *pages * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    }
    add_device_counters(vm.devices().devices(), s);
    if (cg) s.cgroup = cg->usage();
    return s;
}

void add_device_counters(const std::vector<DeviceInfo>& devices, Sample& into) {
    for (const auto& d : devices) {
        auto pick = [&](const auto& names, auto& table) {
            for (const auto& [name, value] : d.counters)
                if (std::find(names.begin(), names.end(), name) != names.end())
                    table[d.id][name] = value;
        };
        if (d.kind == "virtio-blk" || d.kind == "ide-disk") pick(kDiskCounters, into.disks);
        if (d.kind == "virtio-net" || d.kind == "e1000") pick(kNicCounters, into.nics);
    }
}

nlohmann::json record(const Sample& now, const Sample* prev, std::string_view kind,
                      std::string_view vm_id) {
    nlohmann::json j;
    j["vm"] = vm_id;
    j["pid"] = ::getpid();
    j["kind"] = kind;
    j["utc_ms"] = now.utc_ms;
    j["rss_bytes"] = now.rss_bytes;
    j["total"] = section(now, Sample{});
    if (prev) {
        j["interval"] = section(now, *prev);
        j["interval"]["seconds"] =
            std::chrono::duration<double>(now.at - prev->at).count();
    }
    return j;
}

Result<std::unique_ptr<Ledger>> Ledger::open(const std::string& path, std::chrono::seconds interval,
                                             EventLoop& loop, std::string vm_id, Sampler sampler) {
    if (path.empty()) return input_error("--ledger: the path is empty");
    if (interval.count() < 1) return input_error("--ledger-interval: at least 1 s");
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return std::unexpected(
            Error::from_errno(fmt::format("--ledger {}", path)).with_kind(ErrorKind::InvalidInput));
    Fd file(fd);
    int t = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (t < 0) return errno_error("timerfd_create");
    Fd timer(t);
    itimerspec every{};
    every.it_interval.tv_sec = every.it_value.tv_sec = interval.count();
    if (::timerfd_settime(timer.get(), 0, &every, nullptr) < 0) return errno_error("timerfd_settime");
    std::unique_ptr<Ledger> l(
        new Ledger(std::move(file), std::move(timer), loop, std::move(vm_id), std::move(sampler)));
    l->m_prev = l->m_sampler();  // the start: the first interval is measured from here
    auto* raw = l.get();
    RV_TRY_VOID(loop.add(raw->m_timer.get(), EPOLLIN, [raw](uint32_t) {
        uint64_t expirations;
        (void)!::read(raw->m_timer.get(), &expirations, sizeof expirations);
        if (auto r = raw->write("interval"); !r) log::warn("ledger: {}", r.error().message());
    }));
    return l;
}

Ledger::~Ledger() { m_loop.remove(m_timer.get()); }

Result<void> Ledger::write(std::string_view kind) {
    Sample now = m_sampler();
    std::string line = record(now, m_prev ? &*m_prev : nullptr, kind, m_vm_id).dump() + "\n";
    size_t done = 0;
    while (done < line.size()) {
        ssize_t n = ::write(m_file.get(), line.data() + done, line.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno_error("writing the ledger");
        done += static_cast<size_t>(n);
    }
    if (::fdatasync(m_file.get()) < 0) return errno_error("fdatasync of the ledger");
    m_prev = std::move(now);
    ++m_records;
    return {};
}

}  // namespace rv::accounting
