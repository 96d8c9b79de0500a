// A VmmApi for the API's tests: keeps what it is given and answers as the
// real VMM does in each state (pre-boot calls are NotAllowed once started,
// pause only while running, resume only while paused), with seams to make
// the next call fail (any ErrorKind) or to make every call slow (a VMM whose
// event loop is busy). Thread-safe, as VmmApi requires: the server calls it
// on its thread while the test reads it on its own.
#pragma once

#include <unistd.h>

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "vmm/vmm_api.h"

namespace rv::test {

class FakeVmmApi final : public VmmApi {
  public:
    static constexpr const char* kVersion = "0.4.0-test";

    FakeVmmApi() {
        m_config.kernel_path = "/boot/vmlinuz";
        m_config.cpus = 2;
        m_config.memory_bytes = 256ull << 20;
    }

    // --- test controls ---
    void set_state(VmState state) {
        std::lock_guard lock(m_lock);
        m_state = state;
    }
    // The next call that returns a Result fails with `error` (once).
    void fail_next(Error error) {
        std::lock_guard lock(m_lock);
        m_fail_next = std::move(error);
    }
    // Every call waits this long first, as if the event loop were busy.
    void set_delay(std::chrono::milliseconds delay) {
        std::lock_guard lock(m_lock);
        m_delay = delay;
    }
    // The calls made so far, by name ("put_drive rootfs", "action InstanceStart").
    std::vector<std::string> calls() const {
        std::lock_guard lock(m_lock);
        return m_calls;
    }
    VmState state() const {
        std::lock_guard lock(m_lock);
        return m_state;
    }
    VmConfig config() const {
        std::lock_guard lock(m_lock);
        return m_config;
    }
    std::optional<BootSourceConfig> boot() const { return get(m_boot); }
    std::optional<MachineConfigUpdate> machine_patch() const { return get(m_machine_patch); }
    std::optional<DriveUpdate> drive_update() const { return get(m_drive_update); }
    std::optional<NetUpdate> net_update() const { return get(m_net_update); }
    std::optional<LoggerConfig> logger() const { return get(m_logger); }
    std::optional<MetricsConfig> metrics() const { return get(m_metrics); }

    // --- VmmApi ---
    InstanceInfo instance_info() override {
        auto lock = enter("instance_info");
        return InstanceInfo{
            .id = "test-vm", .state = m_state, .vmm_version = kVersion, .app_name = "ringvisor"};
    }
    std::string version() override {
        auto lock = enter("version");
        return kVersion;
    }
    Result<void> set_boot_source(const BootSourceConfig& boot) override {
        auto lock = enter("set_boot_source");
        RV_TRY_VOID(common("boot-source", true));
        m_boot = boot;
        m_config.kernel_path = boot.kernel_image_path;
        return {};
    }
    Result<void> put_machine_config(unsigned vcpu_count, uint64_t mem_size_mib, bool smt,
                                    bool track_dirty_pages, const CpuPolicy& cpu) override {
        auto lock = enter("put_machine_config");
        RV_TRY_VOID(common("machine-config", true));
        m_config.cpus = vcpu_count;
        m_config.memory_bytes = mem_size_mib << 20;
        m_config.smt = smt;
        m_config.track_dirty_pages = track_dirty_pages;
        m_config.cpu_policy = cpu;
        return {};
    }
    Result<nlohmann::json> accounting() override {
        auto lock = enter("accounting");
        RV_TRY_VOID(common("accounting", false));
        if (m_state == VmState::NotStarted) return not_allowed_error("accounting: not started");
        // A record in vmm/accounting.cpp's shape whose counters grow with
        // time as a busy VM's do (ringvisor top shows steady rates from it):
        // 75 % guest CPU, 5 % overhead, 2 % steal, 12,000 exits/s, disk
        // 2000 KB/s read and 500 KB/s written, 1 MB/s in and 300 KB/s out.
        const auto now = std::chrono::system_clock::now();
        const uint64_t t = static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::milliseconds>(now - m_created).count());
        const uint64_t utc_ms = static_cast<uint64_t>(
            std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count());
        using nlohmann::json;
        return json{
            {"vm", "test-vm"},
            {"pid", static_cast<int64_t>(::getpid())},
            {"kind", "current"},
            {"utc_ms", utc_ms},
            {"rss_bytes", 128u << 20},
            {"total",
             {{"guest_cpu_ms", t * 3 / 4},
              {"steal_ms", t / 50},
              {"vmm_overhead_cpu_ms", t / 20},
              {"process_cpu_ms", t * 4 / 5},
              {"vcpus", json::array({{{"id", 0}, {"guest_ms", t * 3 / 8}, {"steal_ms", t / 100}},
                                     {{"id", 1}, {"guest_ms", t * 3 / 8}, {"steal_ms", t / 100}}})},
              {"exits", {{"exits", t * 12}, {"io_exits", t * 8}, {"mmio_exits", t * 4}}},
              {"block", {{"rootfs", {{"read_bytes", t * 2000}, {"write_bytes", t * 500}}}}},
              {"net", {{"eth0", {{"rx_bytes", t * 1000}, {"tx_bytes", t * 300}}}}}}}};
    }
    Result<void> patch_machine_config(const MachineConfigUpdate& update) override {
        auto lock = enter("patch_machine_config");
        RV_TRY_VOID(common("machine-config", true));
        m_machine_patch = update;
        if (update.vcpu_count) m_config.cpus = *update.vcpu_count;
        if (update.mem_size_mib) m_config.memory_bytes = *update.mem_size_mib << 20;
        return {};
    }
    Result<void> put_drive(const DiskConfig& drive) override {
        auto lock = enter("put_drive " + drive.id);
        RV_TRY_VOID(common("drives", true));
        std::erase_if(m_config.disks, [&](const DiskConfig& d) { return d.id == drive.id; });
        m_config.disks.push_back(drive);
        return {};
    }
    Result<void> put_network_interface(const NetConfig& net) override {
        auto lock = enter("put_network_interface " + net.id);
        RV_TRY_VOID(common("network-interfaces", true));
        std::erase_if(m_config.nets, [&](const NetConfig& n) { return n.id == net.id; });
        m_config.nets.push_back(net);
        return {};
    }
    Result<void> put_entropy(const EntropyConfig& entropy) override {
        auto lock = enter("put_entropy");
        RV_TRY_VOID(common("entropy", true));
        m_config.entropy = entropy;
        return {};
    }
    Result<void> put_rate_limit_group(const RateLimitGroupConfig& group) override {
        auto lock = enter("put_rate_limit_group " + group.id);
        RV_TRY_VOID(common("rate-limit-groups", true));
        std::erase_if(m_config.rate_limit_groups,
                      [&](const RateLimitGroupConfig& g) { return g.id == group.id; });
        m_config.rate_limit_groups.push_back(group);
        return {};
    }
    Result<void> put_logger(const LoggerConfig& logger) override {
        auto lock = enter("put_logger");
        RV_TRY_VOID(common("logger", false));
        m_logger = logger;
        return {};
    }
    Result<void> put_metrics(const MetricsConfig& metrics) override {
        auto lock = enter("put_metrics");
        RV_TRY_VOID(common("metrics", false));
        m_metrics = metrics;
        return {};
    }
    Result<void> patch_drive(const DriveUpdate& update) override {
        auto lock = enter("patch_drive " + update.id);
        RV_TRY_VOID(common("drives", false));
        if (!m_config.find_disk(update.id))
            return input_error("drive '{}' does not exist", update.id);
        m_drive_update = update;
        return {};
    }
    Result<void> patch_network_interface(const NetUpdate& update) override {
        auto lock = enter("patch_network_interface " + update.id);
        RV_TRY_VOID(common("network-interfaces", false));
        if (!m_config.find_net(update.id))
            return input_error("network interface '{}' does not exist", update.id);
        m_net_update = update;
        return {};
    }
    Result<void> action(VmAction action) override {
        static constexpr const char* kNames[] = {"InstanceStart", "SendCtrlAltDel", "FlushMetrics"};
        auto lock = enter(std::string("action ") + kNames[static_cast<int>(action)]);
        RV_TRY_VOID(common("actions", false));
        switch (action) {
            case VmAction::InstanceStart:
                if (m_state != VmState::NotStarted)
                    return not_allowed_error("InstanceStart: the VM has already started");
                m_state = VmState::Running;
                return {};
            case VmAction::SendCtrlAltDel:
                if (m_state == VmState::NotStarted)
                    return not_allowed_error("SendCtrlAltDel: the VM has not started");
                return {};
            case VmAction::FlushMetrics:
                return {};
        }
        return {};
    }
    Result<void> pause() override {
        auto lock = enter("pause");
        RV_TRY_VOID(common("vm", false));
        if (m_state != VmState::Running) return not_allowed_error("pause: the VM is not running");
        m_state = VmState::Paused;
        return {};
    }
    Result<void> resume() override {
        auto lock = enter("resume");
        RV_TRY_VOID(common("vm", false));
        if (m_state != VmState::Paused) return not_allowed_error("resume: the VM is not paused");
        m_state = VmState::Running;
        return {};
    }
    Result<void> create_snapshot(const SnapshotCreateParams& params) override {
        auto lock = enter("create_snapshot " + params.snapshot_path);
        RV_TRY_VOID(common("snapshot", false));
        if (m_state != VmState::Paused) return not_allowed_error("the VM must be paused");
        last_snapshot_create = params;
        return {};
    }
    Result<void> load_snapshot(const SnapshotLoadParams& params) override {
        auto lock = enter("load_snapshot " + params.snapshot_path);
        RV_TRY_VOID(common("snapshot", false));
        if (m_state != VmState::NotStarted) return not_allowed_error("a VM exists");
        last_snapshot_load = params;
        m_state = params.resume_vm ? VmState::Running : VmState::Paused;
        return {};
    }
    Result<void> start_migration(const MigrationParams& params) override {
        auto lock = enter("start_migration " + params.destination);
        RV_TRY_VOID(common("migrate", false));
        if (m_state != VmState::Running) return not_allowed_error("only a running VM can migrate");
        last_migration = params;
        migration.phase = MigrationStatus::Phase::Active;
        return {};
    }
    MigrationStatus migration_status() override {
        auto lock = enter("migration_status");
        return migration;
    }
    Result<void> cancel_migration() override {
        auto lock = enter("cancel_migration");
        if (migration.phase != MigrationStatus::Phase::Active)
            return not_allowed_error("no migration is under way");
        migration.phase = MigrationStatus::Phase::Cancelled;
        return {};
    }
    std::optional<MigrationParams> last_migration;
    MigrationStatus migration;
    std::optional<SnapshotCreateParams> last_snapshot_create;
    std::optional<SnapshotLoadParams> last_snapshot_load;
    VmConfig machine_config() override {
        auto lock = enter("machine_config");
        return m_config;
    }
    VmConfig full_config() override {
        auto lock = enter("full_config");
        return m_config;
    }

  private:
    template <typename T>
    std::optional<T> get(const std::optional<T>& field) const {
        std::lock_guard lock(m_lock);
        return field;
    }

    // Records the call and sleeps the delay (outside the lock, so a slow
    // call does not hold the test's readers).
    std::unique_lock<std::mutex> enter(std::string call) {
        std::unique_lock lock(m_lock);
        m_calls.push_back(std::move(call));
        auto delay = m_delay;
        lock.unlock();
        if (delay.count() > 0) std::this_thread::sleep_for(delay);
        lock.lock();
        return lock;
    }

    // The injected failure, then the state rule: what the real VMM refuses
    // after InstanceStart.
    Result<void> common(std::string_view resource, bool pre_boot_only) {
        if (m_fail_next) {
            Error error = std::move(*m_fail_next);
            m_fail_next.reset();
            return std::unexpected(std::move(error));
        }
        if (pre_boot_only && m_state != VmState::NotStarted)
            return not_allowed_error("{}: cannot be changed after the VM has started", resource);
        return {};
    }

    mutable std::mutex m_lock;
    const std::chrono::system_clock::time_point m_created{std::chrono::system_clock::now()};
    std::chrono::milliseconds m_delay{0};
    std::optional<Error> m_fail_next;
    std::vector<std::string> m_calls;
    VmState m_state{VmState::NotStarted};
    VmConfig m_config;
    std::optional<BootSourceConfig> m_boot;
    std::optional<MachineConfigUpdate> m_machine_patch;
    std::optional<DriveUpdate> m_drive_update;
    std::optional<NetUpdate> m_net_update;
    std::optional<LoggerConfig> m_logger;
    std::optional<MetricsConfig> m_metrics;
};

}  // namespace rv::test
