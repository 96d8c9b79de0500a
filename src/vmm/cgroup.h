// Each VM's threads in a cgroup of their own, so Linux's scheduler shares the
// host CPU by policy (issue 14: use the kernel's scheduler, not a home-made
// one) and its usage is charged to the VM:
//
//   <mount>/<parent>/<name>/          cpu.weight / cpu.max / cpuset.cpus, io.weight (v2)
//                                     cpu.shares / cpu.cfs_* / cpuset.*, blkio.weight (v1)
//   <mount>/<parent>/<name>/vcpus/    the vCPU threads
//   <mount>/<parent>/<name>/vmm/      every other thread (event loop, API,
//                                     io_uring workers, KVM's kvm-pit thread)
//
// The controllers are found per host at start: cgroup v2 (one unified
// hierarchy; the two children are "threaded", the only way v2 lets one
// process's threads live in different cgroups) or v1 (cpu, cpuacct and
// cpuset each in their own hierarchy, the VM's tree made in each). A host may
// mix them (v1 cpu with a v2 mount that has no controllers, as systemd's
// "hybrid" layout).
//
// The io weight is the VM's as a whole, and io is a domain controller: on v2
// it is set on <name>/ itself (the threaded subtree's domain, which the I/O
// of every thread below is charged to), after "+io" is enabled in each
// cgroup above it (only once an io weight is asked for); on v1 the VM's tree
// is made in the blkio hierarchy too (also only then) and blkio.weight set.
//
// All file access goes through CgroupFs, so tests run over an in-memory tree.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "vmm/cpu_policy.h"

namespace rv {

namespace cgroup {

enum class Version { V1, V2 };

// Where one controller lives, as this process sees it.
struct Hierarchy {
    Version version{Version::V2};
    std::string mount;    // "/sys/fs/cgroup/cpu"
    std::string current;  // this process's cgroup in it: "/" or "/a/b"
    bool operator==(const Hierarchy&) const = default;
};

struct Host {
    std::optional<Hierarchy> cpu;      // weights and quotas
    std::optional<Hierarchy> cpuacct;  // v1 only (v2's cpu has cpu.stat)
    std::optional<Hierarchy> cpuset;
    std::optional<Hierarchy> io;  // v2 io, v1 blkio: io weights
};

// From /proc/self/mountinfo and /proc/self/cgroup; `read` fetches a v2
// mount's cgroup.controllers (a v2 mount offers only what it lists there).
Host detect(std::string_view mountinfo, std::string_view proc_cgroup,
            const std::function<std::string(const std::string&)>& read);
Host detect_host();  // the real files

// The file operations, so the logic is testable over a fake tree.
class CgroupFs {
public:
    virtual ~CgroupFs() = default;
    virtual Result<void> make_dir(const std::string& path) = 0;  // ok if it exists
    virtual Result<void> remove_dir(const std::string& path) = 0;
    virtual bool exists(const std::string& path) = 0;
    virtual std::vector<std::string> list_dirs(const std::string& path) = 0;  // names
    virtual Result<std::string> read(const std::string& path) = 0;
    virtual Result<void> write(const std::string& path, std::string_view text) = 0;
    // Our own threads' ids (/proc/self/task), and the id of the kernel's
    // kvm-pit/<pid> thread if there is one (/proc/*/comm).
    virtual std::vector<pid_t> own_threads() = 0;
    virtual std::optional<pid_t> pit_thread() = 0;
};
std::unique_ptr<CgroupFs> real_fs();

// CPU time the two groups used (ns), from cpuacct.usage (v1) or cpu.stat's
// usage_usec (v2); nullopt where the host has no CPU accounting.
struct Usage {
    uint64_t vcpus_ns{0};
    uint64_t vmm_ns{0};
    // The process's CPU before its threads entered the cgroup (start-up:
    // the VMM runs before its cgroup exists), which the cgroup never saw;
    // vcpus + vmm + before is the process's CPU (see note_cpu_before).
    uint64_t before_ns{0};
};

// The whole block device (MAJ:MIN, as io.max names it) that `path` lives on:
// the device itself for a block device node, else its file system's; a
// partition's disk. InvalidInput where there is none (tmpfs, 9p, overlay:
// major 0), naming the path.
Result<std::string> block_device_of(const std::string& path);

// The block devices the VM's drives live on, for io_max; `problem` names a
// drive that is on none (io_max is then refused, saying so).
struct IoDevices {
    std::vector<std::string> devices;  // MAJ:MIN, each once
    std::string problem;
};

class VmCgroup {
public:
    // Makes the VM's tree under `parent` (relative to each hierarchy's
    // mount, e.g. "ringvisor") in every cpu, cpuacct and cpuset hierarchy
    // the host has, applies `policy` and moves every thread of this process
    // into vmm/. A policy part the host cannot carry (a cpuset without a
    // cpuset controller, an io weight without io weights) is an InvalidInput
    // error; so is a name that is not a plain file name.
    static Result<std::unique_ptr<VmCgroup>> create(std::unique_ptr<CgroupFs> fs, const Host& host,
                                                    std::string parent, std::string name,
                                                    const CpuPolicy& policy, IoDevices io = {});
    // Moves every thread back to where it was and removes the tree.
    ~VmCgroup();
    VmCgroup(const VmCgroup&) = delete;
    VmCgroup& operator=(const VmCgroup&) = delete;

    // While running (PATCH /machine-config): only the parts given change.
    Result<void> apply(const CpuPolicy& policy);
    Result<void> add_vcpu_thread(pid_t tid);
    // KVM's kvm-pit/<pid> kernel thread, which would stay in the root
    // cgroup (Firecracker's docs say so too); nullopt if there is none.
    Result<std::optional<pid_t>> adopt_pit_thread();
    std::optional<Usage> usage();
    // The process's CPU time when its threads moved in (the owner reads it
    // right after create()), reported as Usage::before_ns.
    void note_cpu_before(uint64_t process_cpu_ns) { m_cpu_before_ns = process_cpu_ns; }
    // "<mount>/<parent>/<name>" of the cpu hierarchy (or the first one).
    const std::string& path() const { return m_path; }
    // Removes the tree now; the destructor does the same, logging failures.
    Result<void> remove();

    // Trees under `parent` named "rv-<pid>" whose process is gone (a VMM that
    // was SIGKILLed cannot clean up): removed. Returns how many.
    static size_t sweep_stale(CgroupFs& fs, const Host& host, const std::string& parent,
                              const std::function<bool(pid_t)>& alive);

private:
    struct Tree {
        Hierarchy h;
        std::string dir;  // <mount>/<parent>/<name>
        std::vector<std::string> made;  // directories we created, outermost first
    };
    VmCgroup(std::unique_ptr<CgroupFs> fs) : m_fs(std::move(fs)) {}
    Result<void> make_tree(const Hierarchy& h, const std::string& parent, const std::string& name,
                           bool cpuset);
    Result<const Tree*> io_tree();
    Result<void> apply_io_weight(uint32_t weight);
    Result<void> apply_io_max(const CpuPolicy::IoMax& max);
    Result<void> move_thread(const Tree& tree, const std::string& child, pid_t tid);
    Result<void> move_back(const Tree& tree);
    const Tree* tree_for(const std::optional<Hierarchy>& h) const;

    std::unique_ptr<CgroupFs> m_fs;
    std::vector<Tree> m_trees;
    std::optional<Hierarchy> m_cpu, m_cpuacct, m_cpuset, m_io;
    std::string m_parent, m_name;
    bool m_io_enabled{false};
    IoDevices m_io_devices;  // v2: "+io" written above the VM's cgroup
    std::string m_path;
    std::optional<pid_t> m_pit;
    bool m_removed{false};
    uint64_t m_cpu_before_ns{0};
};

}  // namespace cgroup
}  // namespace rv
