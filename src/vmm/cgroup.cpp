#include "vmm/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <set>
#include <thread>

#include "base/fd.h"
#include "base/parse.h"
#include "base/log.h"

namespace rv {

namespace {

std::vector<std::string_view> split(std::string_view text, char sep) {
    std::vector<std::string_view> out;
    size_t pos = 0;
    while (pos <= text.size()) {
        size_t end = text.find(sep, pos);
        if (end == std::string_view::npos) end = text.size();
        out.push_back(text.substr(pos, end - pos));
        pos = end + 1;
    }
    return out;
}


std::string trim(std::string_view s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.remove_suffix(1);
    return std::string(s);
}

}  // namespace

namespace cgroup {

Host detect(std::string_view mountinfo, std::string_view proc_cgroup,
            const std::function<std::string(const std::string&)>& read) {
    // /proc/self/cgroup: "ID:CONTROLLERS:PATH" (v2: "0::PATH").
    std::optional<std::string> v2_path;
    std::vector<std::pair<std::vector<std::string_view>, std::string>> v1_paths;
    for (std::string_view line : split(proc_cgroup, '\n')) {
        auto a = line.find(':');
        if (a == std::string_view::npos) continue;
        auto b = line.find(':', a + 1);
        if (b == std::string_view::npos) continue;
        std::string_view ctl = line.substr(a + 1, b - a - 1);
        std::string path(line.substr(b + 1));
        if (line.substr(0, a) == "0" && ctl.empty())
            v2_path = path;
        else
            v1_paths.emplace_back(split(ctl, ','), path);
    }
    auto v1_current = [&](std::string_view controller) -> std::optional<std::string> {
        for (auto& [ctls, path] : v1_paths)
            if (std::find(ctls.begin(), ctls.end(), controller) != ctls.end()) return path;
        return std::nullopt;
    };
    // A path as seen inside a mount whose root is `root` (a container's
    // cgroup namespace or bind mount shows a subtree).
    auto relative = [](const std::string& path, std::string_view root) {
        if (root == "/" || root.empty()) return path;
        if (path.starts_with(root)) {
            std::string rest = path.substr(root.size());
            return rest.empty() ? std::string("/") : rest;
        }
        return path;
    };

    Host host;
    std::vector<std::pair<std::string, std::string>> v2_mounts;  // mount point, root
    for (std::string_view line : split(mountinfo, '\n')) {
        auto fields = split(line, ' ');
        auto dash = std::find(fields.begin(), fields.end(), std::string_view("-"));
        if (fields.size() < 5 || dash == fields.end() || fields.end() - dash < 4) continue;
        std::string_view root = fields[3], point = fields[4], fstype = dash[1], opts = dash[3];
        if (fstype == "cgroup2") {
            v2_mounts.emplace_back(std::string(point), std::string(root));
        } else if (fstype == "cgroup") {
            auto o = split(opts, ',');
            for (std::string_view c : {"cpu", "cpuacct", "cpuset", "blkio"}) {
                if (std::find(o.begin(), o.end(), c) == o.end()) continue;
                auto current = v1_current(c);
                if (!current) continue;
                Hierarchy h{Version::V1, std::string(point), relative(*current, root)};
                if (c == "cpu" && !host.cpu) host.cpu = h;
                if (c == "cpuacct" && !host.cpuacct) host.cpuacct = h;
                if (c == "cpuset" && !host.cpuset) host.cpuset = h;
                if (c == "blkio" && !host.io) host.io = h;
            }
        }
    }
    if (v2_path) {
        for (auto& [point, root] : v2_mounts) {
            const std::string listed = trim(read(point + "/cgroup.controllers"));
            auto ctls = split(listed, ' ');
            auto has = [&](std::string_view c) {
                return std::find(ctls.begin(), ctls.end(), c) != ctls.end();
            };
            Hierarchy h{Version::V2, point, relative(*v2_path, root)};
            if (!host.cpu && has("cpu")) host.cpu = h;
            if (!host.cpuset && has("cpuset")) host.cpuset = h;
            if (!host.io && has("io")) host.io = h;
        }
    }
    return host;
}

Host detect_host() {
    auto mountinfo = read_file("/proc/self/mountinfo");
    auto cg = read_file("/proc/self/cgroup");
    if (!mountinfo || !cg) return {};
    return detect(*mountinfo, *cg, [](const std::string& path) {
        auto text = read_file(path);
        return text ? *text : std::string();
    });
}

namespace {

class RealFs final : public CgroupFs {
public:
    Result<void> make_dir(const std::string& path) override {
        if (::mkdir(path.c_str(), 0755) < 0 && errno != EEXIST) return errno_error("mkdir " + path);
        return {};
    }
    Result<void> remove_dir(const std::string& path) override {
        if (::rmdir(path.c_str()) < 0) return errno_error("rmdir " + path);
        return {};
    }
    bool exists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }
    std::vector<std::string> list_dirs(const std::string& path) override {
        std::vector<std::string> names;
        if (DIR* d = ::opendir(path.c_str())) {
            while (dirent* e = ::readdir(d)) {
                std::string n = e->d_name;
                if (e->d_type == DT_DIR && n != "." && n != "..") names.push_back(n);
            }
            ::closedir(d);
        }
        return names;
    }
    Result<std::string> read(const std::string& path) override { return read_file(path); }
    Result<void> write(const std::string& path, std::string_view text) override {
        auto fd = RV_TRY(Fd::open(path, O_WRONLY | O_CLOEXEC));
        // cgroup files take one value per write(2).
        if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()))
            return errno_error(fmt::format("writing {:?} to {}", text, path));
        return {};
    }
    std::vector<pid_t> own_threads() override {
        std::vector<pid_t> tids;
        if (DIR* d = ::opendir("/proc/self/task")) {
            while (dirent* e = ::readdir(d))
                if (auto tid = parse_u64(e->d_name)) tids.push_back(static_cast<pid_t>(*tid));
            ::closedir(d);
        }
        return tids;
    }
    std::optional<pid_t> pit_thread() override {
        const std::string want = fmt::format("kvm-pit/{}", ::getpid());
        std::optional<pid_t> found;
        if (DIR* d = ::opendir("/proc")) {
            while (dirent* e = ::readdir(d)) {
                auto pid = parse_u64(e->d_name);
                if (!pid) continue;
                auto comm = read_file(fmt::format("/proc/{}/comm", *pid));
                if (comm && trim(*comm) == want) {
                    found = static_cast<pid_t>(*pid);
                    break;
                }
            }
            ::closedir(d);
        }
        return found;
    }
};

bool plain_name(std::string_view s) {
    return !s.empty() && s != "." && s != ".." && s.find('/') == std::string_view::npos &&
           s.find('\n') == std::string_view::npos;
}

std::string join(std::string_view a, std::string_view b) {
    std::string out(a);
    while (!out.empty() && out.back() == '/') out.pop_back();
    if (!b.starts_with('/')) out += '/';
    out += b;
    return out;
}

}  // namespace

std::unique_ptr<CgroupFs> real_fs() { return std::make_unique<RealFs>(); }

Result<std::unique_ptr<VmCgroup>> VmCgroup::create(std::unique_ptr<CgroupFs> fs, const Host& host,
                                                   std::string parent, std::string name,
                                                   const CpuPolicy& policy, IoDevices io) {
    RV_TRY_VOID(check_policy(policy));
    if (!plain_name(name)) return input_error("cgroup name {:?} is not a plain name", name);
    for (std::string_view part : split(parent, '/'))
        if (!part.empty() && !plain_name(part))
            return input_error("cgroup parent {:?} has a bad component", parent);
    if ((policy.weight || policy.max) && !host.cpu)
        return input_error("cpu_weight/cpu_max: this host has no cpu cgroup controller");
    if (policy.cpuset && !host.cpuset)
        return input_error("cpuset: this host has no cpuset cgroup controller");
    if ((policy.io_weight || policy.io_max) && !host.io)
        return input_error("io_weight/io_max: this host has no io cgroup controller (cgroup v2 io or v1 "
                           "blkio)");
    if (!host.cpu && !host.cpuset) return make_error("no cpu or cpuset cgroup controller on this host");

    std::unique_ptr<VmCgroup> cg(new VmCgroup(std::move(fs)));
    cg->m_io_devices = std::move(io);
    cg->m_cpu = host.cpu;
    cg->m_cpuacct = host.cpuacct;
    cg->m_cpuset = host.cpuset;
    cg->m_io = host.io;
    cg->m_parent = parent;
    cg->m_name = name;
    std::set<std::string> done;
    for (const auto* h : {&host.cpu, &host.cpuacct, &host.cpuset}) {
        if (!*h || done.contains((*h)->mount)) continue;
        done.insert((*h)->mount);
        const bool cpuset = host.cpuset && host.cpuset->mount == (*h)->mount;
        if (auto made = cg->make_tree(**h, parent, name, cpuset); !made) {
            (void)cg->remove();
            return std::unexpected(made.error().context("creating the VM's cgroup"));
        }
    }
    cg->m_path = cg->m_trees.front().dir;
    if (auto applied = cg->apply(policy); !applied) {
        (void)cg->remove();
        return std::unexpected(applied.error());
    }
    return cg;
}

Result<void> VmCgroup::make_tree(const Hierarchy& h, const std::string& parent,
                                 const std::string& name, bool cpuset) {
    Tree tree{h, {}, {}};
    const bool v2 = h.version == Version::V2;
    // v2: the threaded controllers this mount carries (none in a mount made
    // for io weights alone).
    std::string enable;
    if (m_cpu && m_cpu->mount == h.mount) enable = "+cpu";
    if (cpuset) enable += enable.empty() ? "+cpuset" : " +cpuset";
    // v1 cpuset: a new cgroup starts with no CPUs and no memory nodes, and
    // takes no task until it has both: copy them from the parent.
    auto inherit_cpuset = [&](const std::string& dir) -> Result<void> {
        if (v2 || !cpuset) return {};
        std::string up = dir.substr(0, dir.rfind('/'));
        for (const char* f : {"cpuset.cpus", "cpuset.mems"}) {
            auto mine = m_fs->read(join(dir, f));
            if (mine && !trim(*mine).empty()) continue;
            auto theirs = RV_TRY(m_fs->read(join(up, f)));
            RV_TRY_VOID(m_fs->write(join(dir, f), trim(theirs)));
        }
        return {};
    };
    std::string dir = h.mount;
    auto descend = [&](const std::string& part) -> Result<void> {
        // v2: a child gets a controller only if its parent enables it.
        if (v2 && !enable.empty())
            RV_TRY_VOID(m_fs->write(join(dir, "cgroup.subtree_control"), enable));
        dir = join(dir, part);
        if (!m_fs->exists(dir)) {
            RV_TRY_VOID(m_fs->make_dir(dir));
            tree.made.push_back(dir);
        }
        return inherit_cpuset(dir);
    };
    auto keep = [&] { m_trees.push_back(tree); };
    for (std::string_view part : split(parent, '/')) {
        if (part.empty()) continue;
        if (auto r = descend(std::string(part)); !r) return keep(), r;
    }
    if (m_fs->exists(join(dir, name))) {
        keep();
        return make_error("{} exists already (another VMM with this pid?)", join(dir, name));
    }
    if (auto r = descend(name); !r) return keep(), r;
    tree.dir = dir;
    for (const char* child : {"vcpus", "vmm"}) {
        std::string c = join(dir, child);
        if (auto r = m_fs->make_dir(c); !r) return keep(), r;
        tree.made.push_back(c);
        if (v2) {
            if (auto r = m_fs->write(join(c, "cgroup.type"), "threaded"); !r) return keep(), r;
        } else if (auto r = inherit_cpuset(c); !r) {
            return keep(), r;
        }
    }
    keep();
    const Tree& t = m_trees.back();
    if (v2) {
        if (!enable.empty()) RV_TRY_VOID(m_fs->write(join(dir, "cgroup.subtree_control"), enable));
        RV_TRY_VOID(m_fs->write(join(dir, "cgroup.procs"), std::to_string(::getpid())));
    }
    for (pid_t tid : m_fs->own_threads()) {
        auto moved = move_thread(t, "vmm", tid);
        // A thread may end while we move it.
        if (!moved && moved.error().os_errno() != ESRCH) return moved;
    }
    return {};
}

Result<void> VmCgroup::move_thread(const Tree& tree, const std::string& child, pid_t tid) {
    const char* file = tree.h.version == Version::V2 ? "cgroup.threads" : "tasks";
    return m_fs->write(join(join(tree.dir, child), file), std::to_string(tid));
}

const VmCgroup::Tree* VmCgroup::tree_for(const std::optional<Hierarchy>& h) const {
    if (!h) return nullptr;
    for (const Tree& t : m_trees)
        if (t.h.mount == h->mount && !t.dir.empty()) return &t;
    return nullptr;
}

Result<void> VmCgroup::apply(const CpuPolicy& policy) {
    RV_TRY_VOID(check_policy(policy));
    const Tree* cpu = tree_for(m_cpu);
    if ((policy.weight || policy.max) && !cpu)
        return input_error("cpu_weight/cpu_max: this host has no cpu cgroup controller");
    if (policy.weight) {
        if (cpu->h.version == Version::V2) {
            RV_TRY_VOID(m_fs->write(join(cpu->dir, "cpu.weight"), std::to_string(*policy.weight)));
        } else {
            // systemd's mapping: weight 100 (the default) is 1024 shares.
            uint64_t shares = std::max<uint64_t>(2, uint64_t{*policy.weight} * 1024 / 100);
            RV_TRY_VOID(m_fs->write(join(cpu->dir, "cpu.shares"), std::to_string(shares)));
        }
    }
    if (policy.max) {
        if (cpu->h.version == Version::V2) {
            RV_TRY_VOID(m_fs->write(join(cpu->dir, "cpu.max"),
                                    fmt::format("{} {}", policy.max->quota_us, policy.max->period_us)));
        } else {
            // The quota first: a period that shrinks below the old quota is fine either way.
            RV_TRY_VOID(m_fs->write(join(cpu->dir, "cpu.cfs_quota_us"), "-1"));
            RV_TRY_VOID(m_fs->write(join(cpu->dir, "cpu.cfs_period_us"),
                                    std::to_string(policy.max->period_us)));
            RV_TRY_VOID(m_fs->write(join(cpu->dir, "cpu.cfs_quota_us"),
                                    std::to_string(policy.max->quota_us)));
        }
    }
    if (policy.cpuset) {
        const Tree* cs = tree_for(m_cpuset);
        if (!cs) return input_error("cpuset: this host has no cpuset cgroup controller");
        if (cs->h.version == Version::V2) {
            RV_TRY_VOID(m_fs->write(join(cs->dir, "cpuset.cpus"), *policy.cpuset));
        } else {
            // v1 keeps every child a subset of its parent: widen the parent
            // first, narrow the children first.
            auto file = [&](const char* child) {
                return join(child ? join(cs->dir, child) : cs->dir, "cpuset.cpus");
            };
            if (m_fs->write(file(nullptr), *policy.cpuset)) {
                RV_TRY_VOID(m_fs->write(file("vcpus"), *policy.cpuset));
                RV_TRY_VOID(m_fs->write(file("vmm"), *policy.cpuset));
            } else {
                RV_TRY_VOID(m_fs->write(file("vcpus"), *policy.cpuset));
                RV_TRY_VOID(m_fs->write(file("vmm"), *policy.cpuset));
                RV_TRY_VOID(m_fs->write(file(nullptr), *policy.cpuset));
            }
        }
    }
    if (policy.io_weight) RV_TRY_VOID(apply_io_weight(*policy.io_weight));
    if (policy.io_max) RV_TRY_VOID(apply_io_max(*policy.io_max));
    return {};
}

// The tree whose top carries the io weight, made ready on first use: v2
// enables "+io" in each cgroup above the VM's (the mount's root down to the
// parent; never in the VM's own subtree_control, whose children are
// threaded); v1 makes the VM's tree in the blkio hierarchy, threads moved in.
Result<const VmCgroup::Tree*> VmCgroup::io_tree() {
    if (!m_io)
        return input_error("io_weight/io_max: this host has no io cgroup controller (cgroup v2 io or v1 "
                           "blkio)");
    if (!tree_for(m_io)) {
        const bool cpuset = m_cpuset && m_cpuset->mount == m_io->mount;
        RV_TRY_VOID(make_tree(*m_io, m_parent, m_name, cpuset));
    }
    const Tree* tree = tree_for(m_io);
    if (!tree) return make_error("io_weight: the VM's cgroup in {} is missing", m_io->mount);
    if (tree->h.version == Version::V2 && !m_io_enabled) {
        std::string dir = tree->h.mount;
        for (std::string_view part : split(m_parent, '/')) {
            if (part.empty()) continue;
            RV_TRY_VOID(m_fs->write(join(dir, "cgroup.subtree_control"), "+io"));
            dir = join(dir, part);
        }
        RV_TRY_VOID(m_fs->write(join(dir, "cgroup.subtree_control"), "+io"));
        m_io_enabled = true;
    }
    return tree;
}

Result<void> VmCgroup::apply_io_weight(uint32_t weight) {
    const Tree* tree = RV_TRY(io_tree());
    if (tree->h.version == Version::V2) {
        // io.weight comes with blk-iocost (BFQ's io.bfq.weight is another file).
        const std::string file = join(tree->dir, "io.weight");
        if (!m_fs->exists(file))
            return input_error("io_weight: {} does not exist: this kernel's io controller has no "
                               "weights",
                               file);
        return m_fs->write(file, fmt::format("default {}", weight));
    }
    // v1: CFQ's blkio.weight, 10..1000 with 500 the default: N * 5 (systemd's mapping).
    const std::string file = join(tree->dir, "blkio.weight");
    if (!m_fs->exists(file))
        return input_error("io_weight: {} does not exist: no proportional blkio weights on this "
                           "kernel's I/O schedulers",
                           file);
    return m_fs->write(file, std::to_string(std::clamp<uint64_t>(uint64_t{weight} * 5, 10, 1000)));
}

// Every cap for every device the drives are on; a cap not given is lifted
// (v2 "max", v1 0), so a PATCH replaces the whole set.
Result<void> VmCgroup::apply_io_max(const CpuPolicy::IoMax& max) {
    if (!m_io_devices.problem.empty()) return input_error("io_max: {}", m_io_devices.problem);
    if (m_io_devices.devices.empty())
        return input_error("io_max: the VM has no drive, so there is no device to cap");
    const Tree* tree = RV_TRY(io_tree());
    auto value = [](const std::optional<uint64_t>& v, const char* none) {
        return v ? std::to_string(*v) : std::string(none);
    };
    for (const std::string& dev : m_io_devices.devices) {
        if (tree->h.version == Version::V2) {
            const std::string file = join(tree->dir, "io.max");
            if (!m_fs->exists(file))
                return input_error("io_max: {} does not exist: this kernel has no I/O throttling "
                                   "(CONFIG_BLK_DEV_THROTTLING)",
                                   file);
            RV_TRY_VOID(m_fs->write(
                file, fmt::format("{} rbps={} wbps={} riops={} wiops={}", dev, value(max.rbps, "max"),
                                  value(max.wbps, "max"), value(max.riops, "max"),
                                  value(max.wiops, "max"))));
            continue;
        }
        const std::pair<const char*, const std::optional<uint64_t>*> files[] = {
            {"blkio.throttle.read_bps_device", &max.rbps},
            {"blkio.throttle.write_bps_device", &max.wbps},
            {"blkio.throttle.read_iops_device", &max.riops},
            {"blkio.throttle.write_iops_device", &max.wiops}};
        for (const auto& [name, v] : files) {
            const std::string file = join(tree->dir, name);
            if (!m_fs->exists(file))
                return input_error("io_max: {} does not exist: this kernel has no I/O throttling "
                                   "(CONFIG_BLK_DEV_THROTTLING)",
                                   file);
            RV_TRY_VOID(m_fs->write(file, fmt::format("{} {}", dev, value(*v, "0"))));
        }
    }
    return {};
}

Result<std::string> block_device_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return errno_error(path);
    const dev_t dev = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
    if (major(dev) == 0)
        return input_error("{} is on device {}:{}, which is no block device (tmpfs, 9p, overlay, "
                           "NFS ...): the io controller cannot cap it; the drive's rate_limiter can",
                           path, major(dev), minor(dev));
    const std::string sys = fmt::format("/sys/dev/block/{}:{}", major(dev), minor(dev));
    // A partition: io.max takes only whole disks (its parent in sysfs).
    if (::access((sys + "/partition").c_str(), F_OK) == 0) {
        auto disk = read_file(sys + "/../dev");
        if (!disk) return make_error("{}: the disk of partition {}:{}: {}", path, major(dev),
                                     minor(dev), disk.error().message());
        return trim(*disk);
    }
    return fmt::format("{}:{}", major(dev), minor(dev));
}

Result<void> VmCgroup::add_vcpu_thread(pid_t tid) {
    for (const Tree& t : m_trees) RV_TRY_VOID(move_thread(t, "vcpus", tid));
    return {};
}

Result<std::optional<pid_t>> VmCgroup::adopt_pit_thread() {
    auto pit = m_fs->pit_thread();
    if (!pit) return std::optional<pid_t>{};
    for (const Tree& t : m_trees) {
        // v2: another process's thread cannot join our threaded children;
        // it goes into the VM's own (domain) cgroup.
        std::string file = t.h.version == Version::V2 ? join(t.dir, "cgroup.procs")
                                                      : join(join(t.dir, "vmm"), "tasks");
        RV_TRY_VOID(m_fs->write(file, std::to_string(*pit)));
    }
    m_pit = pit;
    return pit;
}

std::optional<Usage> VmCgroup::usage() {
    auto read_ns = [&](const Tree& t, const char* child) -> std::optional<uint64_t> {
        std::string dir = join(t.dir, child);
        if (t.h.version == Version::V1) {
            auto text = m_fs->read(join(dir, "cpuacct.usage"));
            if (!text) return std::nullopt;
            return parse_u64(trim(*text));
        }
        auto text = m_fs->read(join(dir, "cpu.stat"));
        if (!text) return std::nullopt;
        for (std::string_view line : split(*text, '\n'))
            if (line.starts_with("usage_usec "))
                if (auto us = parse_u64(line.substr(11))) return *us * 1000;
        return std::nullopt;
    };
    const Tree* t = m_cpu && m_cpu->version == Version::V2 ? tree_for(m_cpu) : tree_for(m_cpuacct);
    if (!t) return std::nullopt;
    auto vcpus = read_ns(*t, "vcpus");
    auto vmm = read_ns(*t, "vmm");
    if (!vcpus || !vmm) return std::nullopt;
    return Usage{*vcpus, *vmm, m_cpu_before_ns};
}

Result<void> VmCgroup::move_back(const Tree& tree) {
    const std::string home = join(tree.h.mount, tree.h.current);
    if (tree.h.version == Version::V2) {
        if (!tree.dir.empty()) RV_TRY_VOID(m_fs->write(join(home, "cgroup.procs"), std::to_string(::getpid())));
        if (m_pit) (void)m_fs->write(join(tree.h.mount, "cgroup.procs"), std::to_string(*m_pit));
        return {};
    }
    for (pid_t tid : m_fs->own_threads()) {
        auto moved = m_fs->write(join(home, "tasks"), std::to_string(tid));
        if (!moved && moved.error().os_errno() != ESRCH) return moved;
    }
    if (m_pit) (void)m_fs->write(join(tree.h.mount, "tasks"), std::to_string(*m_pit));
    return {};
}

Result<void> VmCgroup::remove() {
    if (m_removed) return {};
    m_removed = true;
    std::optional<Error> first;
    for (auto it = m_trees.rbegin(); it != m_trees.rend(); ++it) {
        if (auto r = move_back(*it); !r && !first) first = r.error();
        // Innermost first. The VM's own directories must go; a parent we
        // made may hold another VM's tree by now, and then stays.
        for (auto d = it->made.rbegin(); d != it->made.rend(); ++d) {
            const bool ours = !it->dir.empty() && d->starts_with(it->dir);
            Result<void> r = m_fs->remove_dir(*d);
            // Threads that are exiting leave their cgroup a moment later.
            for (int i = 0; ours && !r && r.error().os_errno() == EBUSY && i < 100; ++i) {
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
                r = m_fs->remove_dir(*d);
            }
            if (!r && ours && !first) first = r.error();
        }
    }
    if (first) return std::unexpected(first->context("removing the VM's cgroup"));
    return {};
}

VmCgroup::~VmCgroup() {
    if (auto r = remove(); !r) log::warn("{}", r.error().message());
}

size_t VmCgroup::sweep_stale(CgroupFs& fs, const Host& host, const std::string& parent,
                             const std::function<bool(pid_t)>& alive) {
    size_t removed = 0;
    std::set<std::string> done;
    for (const auto* h : {&host.cpu, &host.cpuacct, &host.cpuset, &host.io}) {
        if (!*h || done.contains((*h)->mount)) continue;
        done.insert((*h)->mount);
        std::string base = parent.empty() ? (*h)->mount : join((*h)->mount, parent);
        for (const std::string& entry : fs.list_dirs(base)) {
            if (!entry.starts_with("rv-")) continue;
            auto pid = parse_u64(std::string_view(entry).substr(3));
            if (!pid || alive(static_cast<pid_t>(*pid))) continue;
            std::string dir = join(base, entry);
            (void)fs.remove_dir(join(dir, "vcpus"));
            (void)fs.remove_dir(join(dir, "vmm"));
            if (fs.remove_dir(dir)) ++removed;
        }
    }
    return removed;
}

}  // namespace cgroup
}  // namespace rv
