// What the user asked for: everything needed to build and boot one VM. Plain
// data, filled by three front ends (the CLI flags, --config-file and the API,
// both in Firecracker's JSON shape: vmm/config_json.h) and checked by one
// validate(). Defaults that are derived (a NIC's MAC, a disk's serial, a
// device's id) are resolved into the config by resolve_defaults(), so what
// GET /vm/config returns builds the same VM again.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "backends/block/block_backend.h"
#include "base/error.h"
#include "devices/rate_limiter_config.h"
#include "vmm/cpu_policy.h"

namespace rv {

struct DiskConfig {
    // Virtio: a virtio-blk PCI device each. Ide: an ATA disk on the PIIX IDE
    // controller (primary master, primary slave, secondary master, slave).
    enum class Interface { Virtio, Ide };
    // Writeback: the host page cache, flushes reach the disk (Firecracker's
    // "Writeback"). Unsafe: the page cache, flushes are not passed on
    // (Firecracker's "Unsafe"). None: O_DIRECT (ringvisor's extension).
    enum class Cache { None, Writeback, Unsafe };
    static constexpr size_t kMaxIdeDisks = 4;
    std::string id;  // stable: "drive0".. when not given
    std::string path;
    bool read_only{false};
    bool is_root_device{false};
    Interface iface{Interface::Virtio};
    Cache cache{Cache::Writeback};
    BlockOptions::Engine engine{BlockOptions::Engine::IoUring};
    std::optional<RateLimiterConfig> rate_limiter;
    // ringvisor's extension: the id of a rate limit group (VmConfig's
    // rate_limit_groups) whose buckets the drive draws from too, shared with
    // the group's other drives, in this VM and in other VMs on the host.
    std::optional<std::string> rate_limit_group;
    std::string serial;  // resolved: "ringvisor-<id>" (virtio) / "RV-HD<n>" (IDE)
    // Virtio only: request queues (VIRTIO_BLK_F_MQ when > 1), 1..kMaxQueues.
    // Left out: queue_count() decides when the VM is built, one per vCPU
    // (as QEMU; not resolved into the config, which the machine config may
    // still change). An IDE disk has none (must stay unset).
    static constexpr unsigned kMaxQueues = 64;
    std::optional<unsigned> num_queues;
    // `num_queues`, or one per vCPU capped at kMaxQueues.
    unsigned queue_count(unsigned cpus) const;
    bool operator==(const DiskConfig&) const = default;
};

struct NetConfig {
    std::string id;   // stable: "net0".. when not given
    std::string tap;  // host_dev_name
    std::optional<std::array<uint8_t, 6>> mac;  // resolved: 02:72:76 + a hash of the TAP name
    enum class Model { Virtio, E1000 } model{Model::Virtio};
    // virtio-net queue pairs (multiqueue: one tap queue each; CLI queues=,
    // JSON "queues", ringvisor's extension). 1 is the single-queue device
    // on a plain tap. Left out: queue_pairs() decides when the VM is built,
    // from the vCPU count then (not resolved into the config, which the
    // machine config may still change).
    static constexpr unsigned kMaxQueues = 16;
    std::optional<unsigned> queues;
    // `queues`, or one per vCPU (as QEMU with a multi-queue tap) capped at
    // kMaxQueues; 1 for the e1000, which has one.
    unsigned queue_pairs(unsigned cpus) const;
    std::optional<RateLimiterConfig> rx_rate_limiter;
    std::optional<RateLimiterConfig> tx_rate_limiter;
    bool operator==(const NetConfig&) const = default;
};

struct EntropyConfig {
    std::optional<RateLimiterConfig> rate_limiter;
    bool operator==(const EntropyConfig&) const = default;
};

struct LoggerConfig {
    std::optional<std::string> log_path;
    enum class Level { Error, Warning, Info, Debug, Trace, Off } level{Level::Warning};
    bool show_level{false};
    bool show_log_origin{false};
    bool operator==(const LoggerConfig&) const = default;
};

struct MetricsConfig {
    std::string metrics_path;  // a file or a FIFO
    bool operator==(const MetricsConfig&) const = default;
};

enum class ConsoleKind { Serial, Virtio };

// What a triple fault the guest did not ask for means: a crash (exit status
// 4, the default) or, for users who want the old behaviour, a reset (treated
// as the guest's own reboot: status 0).
enum class TripleFaultAction { Crash, Reset };

// What holds guest RAM: anonymous memory (the default: transparent huge
// pages wherever the host has them) or a memfd (GuestMemory::create_memfd).
// A process setting: a snapshot or migration takes the restoring process's.
enum class MemoryBackend { Anonymous, Memfd };

struct VmConfig {
    // boot-source
    std::string kernel_path;  // bzImage or ELF vmlinux
    std::optional<std::string> initrd_path;
    std::string cmdline{"console=ttyS0"};
    // machine-config
    uint64_t memory_bytes{512ull << 20};
    unsigned cpus{1};
    bool smt{false};                // refused: one thread per core
    bool track_dirty_pages{false};  // kept for snapshots
    // ringvisor's extension: cpu_weight, cpu_max, cpuset, io_weight (the VM's cgroup)
    CpuPolicy cpu_policy;
    // devices
    std::vector<DiskConfig> disks;
    // ringvisor's extension: the rate limit groups the drives name (ids
    // unique; each limits something). Shared with every VM on the host
    // that defines a group of the same id, with the same limits.
    std::vector<RateLimitGroupConfig> rate_limit_groups;
    std::vector<NetConfig> nets;
    std::optional<EntropyConfig> entropy;  // virtio-rng
    ConsoleKind console{ConsoleKind::Serial};  // where console input goes (the UART always exists)
    // observability
    std::optional<LoggerConfig> logger;
    std::optional<MetricsConfig> metrics;
    std::optional<std::string> stats_path;  // JSON counters written at exit
    // the process
    std::string kvm_path{"/dev/kvm"};
    // Where decompressed kernels are cached (vmm/kernel_cache.h); nullopt
    // boots the bzImage as is and lets the guest decompress it.
    std::optional<std::string> kernel_cache_dir;
    TripleFaultAction on_triple_fault{TripleFaultAction::Crash};
    MemoryBackend memory_backend{MemoryBackend::Anonymous};
    // The VM's cgroup (vmm/cgroup.h) is made under this parent in each of the
    // host's cpu/cpuacct/cpuset hierarchies; nullopt: none (--no-cgroup).
    std::optional<std::string> cgroup_parent{"ringvisor"};
    // The run directory ($RINGVISOR_RUN_DIR): rate limit groups' files live
    // in <run_dir>/rate-limit-groups (devices/rate_limit_group_file.h).
    std::string run_dir{"/run/ringvisor"};
    // The accounting ledger (vmm/accounting.h): a JSON line per interval and
    // a final one at exit; nullopt: none.
    std::optional<std::string> ledger_path;
    unsigned ledger_interval_s{10};
    int console_in{0};   // guest console input (stdin); -1 for none
    int console_out{1};  // guest console output (stdout)

    const DiskConfig* find_disk(std::string_view id) const;
    const NetConfig* find_net(std::string_view id) const;
    const RateLimitGroupConfig* find_rate_limit_group(std::string_view id) const;

    // Fills ids, serials and MACs that were left empty (stable: derived from
    // the position or the TAP name, so re-resolving changes nothing).
    void resolve_defaults();
    // The command line the kernel gets: `cmdline`, plus, as Firecracker
    // does, "root=/dev/vda ro|rw" (/dev/sda for an IDE root) when a drive
    // is the root device and `cmdline` names no root= itself.
    std::string kernel_cmdline() const;

    // Everything that can be checked without KVM or the files: vCPU and
    // memory bounds (max_cpus: the host's limit), unique ids, at most one
    // root device, at most four IDE disks, MACs, rate limiter buckets, rate
    // limit groups (each limits something; drives name defined ones), a
    // kernel named. Errors are ErrorKind::InvalidInput and name the field.
    // Empty ids pass (resolve_defaults fills them); given ones must be
    // letters, digits and '_' (at most 64), Firecracker's rule for ids that
    // become API paths. No two NICs may share a TAP.
    Result<void> validate(unsigned max_cpus) const;

    bool operator==(const VmConfig&) const = default;
};

inline constexpr uint64_t kMinMemoryBytes = 32ull << 20;
inline constexpr unsigned kMaxCpus = 254;

using MacAddress = std::array<uint8_t, 6>;

// "52:54:00:12:34:56": six two-digit hex bytes; a multicast address is
// refused (a NIC's own address must be unicast). Shared by the CLI's --net
// and the JSON's guest_mac.
Result<MacAddress> parse_mac(std::string_view text);
std::string format_mac(const MacAddress& mac);  // lowercase, "xx:xx:xx:xx:xx:xx"
// The MAC of a NIC that was given none: 02:72:76 ("rv", locally
// administered) followed by a hash of the TAP's name, so it stays the same
// across restarts of the same configuration.
MacAddress default_mac(std::string_view tap);

}  // namespace rv
