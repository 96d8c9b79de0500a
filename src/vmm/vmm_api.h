// What the control plane can ask of the VMM: the operations behind
// Firecracker's REST API (api/), on plain config structs. Implemented by
// vmm::Vmm (the process's one VM, before and after it starts) and by a fake in
// the API's tests. Every call is thread-safe: the API thread calls in, the
// VMM runs it on its event loop and returns the result.
// Errors: ErrorKind::InvalidInput (a bad value: HTTP 400), NotAllowed (not in
// this state, e.g. PUT /boot-source after start: 400 with the reason),
// Internal (500).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "base/error.h"
#include "vmm/vm_config.h"

namespace rv {

enum class VmState { NotStarted, Running, Paused };

struct InstanceInfo {
    std::string id;           // the instance id (--id, default "ringvisor")
    VmState state{VmState::NotStarted};
    std::string vmm_version;  // e.g. "0.4.0"
    std::string app_name{"ringvisor"};
};

struct BootSourceConfig {
    std::string kernel_image_path;
    std::optional<std::string> initrd_path;
    std::optional<std::string> boot_args;
};

struct MachineConfigUpdate {  // PATCH /machine-config: only what is given
    std::optional<unsigned> vcpu_count;
    std::optional<uint64_t> mem_size_mib;
    std::optional<bool> smt;
    std::optional<bool> track_dirty_pages;
    CpuPolicy cpu;  // ringvisor's extension (and io_weight); the only part PATCH may change after start
};

struct DriveUpdate {  // PATCH /drives/{id}, after start
    std::string id;
    std::optional<std::string> path_on_host;         // the guest sees a media change
    std::optional<RateLimiterConfig> rate_limiter;   // replaces the limiter
};

struct NetUpdate {  // PATCH /network-interfaces/{id}
    std::string id;
    std::optional<RateLimiterConfig> rx_rate_limiter;
    std::optional<RateLimiterConfig> tx_rate_limiter;
};

enum class VmAction { InstanceStart, SendCtrlAltDel, FlushMetrics };

struct SnapshotCreateParams {  // PUT /snapshot/create
    enum class Type { Full, Diff } type{Type::Full};
    std::string snapshot_path;
    std::string mem_file_path;
};

struct MigrationParams {  // PUT /migrate (ringvisor's extension)
    std::string destination;       // unix:PATH or tcp:HOST:PORT (run --incoming there)
    uint32_t downtime_ms{300};     // stop iterating once what is left fits this
    uint64_t bandwidth_mib_s{0};   // cap on the memory stream; 0: none
    uint32_t timeout_s{0};         // cancel (the source runs on) after this; 0: none
    uint32_t max_iterations{30};   // then stop and copy whatever is left
};

struct MigrationStatus {  // GET /migrate
    enum class Phase { None, Active, Completed, Failed, Cancelled } phase{Phase::None};
    unsigned iteration{0};
    uint64_t ram_bytes{0};
    uint64_t bytes_sent{0};       // memory sent so far (pages sent again count again)
    uint64_t remaining_bytes{0};  // dirty at the last look
    double dirty_rate_mib_s{0};
    double bandwidth_mib_s{0};
    uint64_t expected_downtime_ms{0};
    uint64_t downtime_ms{0};  // paused until the destination said it runs (when Completed)
    double total_s{0};
    std::string message;  // why it failed or was cancelled
};

struct SnapshotLoadParams {  // PUT /snapshot/load
    std::string snapshot_path;
    std::string mem_file_path;  // mem_backend File's backend_path (or mem_file_path)
    bool track_dirty_pages{false};
    bool resume_vm{false};
    // The guest's clock advanced by the time since the snapshot on resume
    // (else it goes on where it stopped).
    bool clock_realtime{false};
    // Clones: NIC id -> TAP (network_overrides); drive id -> image path
    // (ringvisor's drive_overrides).
    std::map<std::string, std::string> network_overrides;
    std::map<std::string, std::string> drive_overrides;
};

class VmmApi {
public:
    virtual ~VmmApi() = default;

    virtual InstanceInfo instance_info() = 0;
    virtual std::string version() = 0;

    // Pre-boot only: NotAllowed after InstanceStart.
    virtual Result<void> set_boot_source(const BootSourceConfig& boot) = 0;
    virtual Result<void> put_machine_config(unsigned vcpu_count, uint64_t mem_size_mib, bool smt,
                                            bool track_dirty_pages, const CpuPolicy& cpu) = 0;
    // Pre-boot: any field. After start only the CPU policy (the VM's cgroup).
    virtual Result<void> patch_machine_config(const MachineConfigUpdate& update) = 0;
    // Creates or (pre-boot) replaces the drive with config.id.
    virtual Result<void> put_drive(const DiskConfig& drive) = 0;
    virtual Result<void> put_network_interface(const NetConfig& net) = 0;
    virtual Result<void> put_entropy(const EntropyConfig& entropy) = 0;
    // ringvisor's extension: creates or replaces the rate limit group with
    // group.id (drives name it in their rate_limit_group).
    virtual Result<void> put_rate_limit_group(const RateLimitGroupConfig& group) = 0;

    // Any time.
    virtual Result<void> put_logger(const LoggerConfig& logger) = 0;
    virtual Result<void> put_metrics(const MetricsConfig& metrics) = 0;
    // Pre-boot: like PUT for the fields given. After start: path and rate limiter.
    virtual Result<void> patch_drive(const DriveUpdate& update) = 0;
    virtual Result<void> patch_network_interface(const NetUpdate& update) = 0;

    virtual Result<void> action(VmAction action) = 0;
    virtual Result<void> pause() = 0;   // NotAllowed unless Running
    virtual Result<void> resume() = 0;  // NotAllowed unless Paused
    // A snapshot of the paused VM (NotAllowed unless Paused); Diff needs
    // track_dirty_pages (InvalidInput without).
    virtual Result<void> create_snapshot(const SnapshotCreateParams& params) = 0;
    // Instead of InstanceStart, in a fresh process: the VM of a snapshot,
    // paused unless resume_vm (NotAllowed once a VM exists).
    virtual Result<void> load_snapshot(const SnapshotLoadParams& params) = 0;
    // Live migration (ringvisor's extension): pre-copy to a destination
    // started with `run --incoming`, in the background; NotAllowed unless
    // Running and no migration is active. The source ends (exit 0) once the
    // destination runs the VM; a failure or cancel leaves it running.
    virtual Result<void> start_migration(const MigrationParams& params) = 0;
    virtual MigrationStatus migration_status() = 0;
    virtual Result<void> cancel_migration() = 0;  // NotAllowed unless one is active

    virtual VmConfig machine_config() = 0;  // GET /machine-config reads cpus, memory, smt, dirty pages
    virtual VmConfig full_config() = 0;     // GET /vm/config
    // GET /accounting (ringvisor's extension): the VM's totals since it
    // started, as a ledger record (vmm/accounting.h); NotAllowed before start.
    virtual Result<nlohmann::json> accounting() = 0;
};

}  // namespace rv
