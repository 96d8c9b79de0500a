// The VMM process's one VM, before and after it starts: the configuration
// being built (by the CLI, --config-file or the API), then the running Vm.
// Owns the event loop; run() serves it until the VM ends. Implements VmmApi
// for the REST API: every call from another thread is run on the loop (posted,
// then waited for), so the VM and its devices see one thread of control.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/fd.h"
#include "vmm/event_loop.h"
#include "vmm/vm.h"
#include "vmm/vm_snapshot_config.h"
#include "vmm/vmm_api.h"

namespace rv {

class MetricsWriter;
namespace cgroup {
class VmCgroup;
}
namespace accounting {
class Ledger;
struct Sample;
}

class Vmm final : public VmmApi {
public:
    struct Options {
        std::string instance_id{"ringvisor"};
        Vm::ConsoleSink console;  // guest console output
    };
    static Result<std::unique_ptr<Vmm>> create(VmConfig config, Options options);
    ~Vmm() override;

    EventLoop& loop() { return *m_loop; }

    // InstanceStart: checks the configuration, builds the VM and starts its
    // vCPUs. From any thread.
    Result<void> start();
    // Serves the loop until the VM ends or quit(); the VM's outcome (Quit
    // when it never started). Then tears the VM down (stats, crash report).
    VmOutcome run();
    // Ends the VM, or the wait for one (any thread; signals, Ctrl-A x).
    void quit(std::string why);
    // Where console input goes; null until the VM exists. Loop thread only.
    ConsoleInput* console_input();
    // Adds the API's request counts to the metrics (a JSON object).
    void set_api_metrics(std::function<nlohmann::json()> provider);
    // Where guest console output goes, and who is told (on the loop) once
    // the VM exists. Set both before start().
    void set_console(Vm::ConsoleSink sink) { m_options.console = std::move(sink); }
    void set_start_hook(std::function<void()> hook) { m_start_hook = std::move(hook); }

    // VmmApi
    InstanceInfo instance_info() override;
    std::string version() override;
    Result<void> set_boot_source(const BootSourceConfig& boot) override;
    Result<void> put_machine_config(unsigned vcpu_count, uint64_t mem_size_mib, bool smt,
                                    bool track_dirty_pages, const CpuPolicy& cpu) override;
    Result<void> patch_machine_config(const MachineConfigUpdate& update) override;
    Result<void> put_drive(const DiskConfig& drive) override;
    Result<void> put_network_interface(const NetConfig& net) override;
    Result<void> put_entropy(const EntropyConfig& entropy) override;
    Result<void> put_rate_limit_group(const RateLimitGroupConfig& group) override;
    Result<void> put_logger(const LoggerConfig& logger) override;
    Result<void> put_metrics(const MetricsConfig& metrics) override;
    Result<void> patch_drive(const DriveUpdate& update) override;
    Result<void> patch_network_interface(const NetUpdate& update) override;
    Result<void> action(VmAction action) override;
    Result<void> pause() override;
    Result<void> resume() override;
    Result<void> create_snapshot(const SnapshotCreateParams& params) override;
    Result<void> load_snapshot(const SnapshotLoadParams& params) override;
    Result<void> start_migration(const MigrationParams& params) override;
    MigrationStatus migration_status() override;
    Result<void> cancel_migration() override;
    // The destination of a live migration (`run --incoming`): listens on
    // `address`, takes one source's VM and runs it. Blocks: call it on a
    // thread of its own while run() serves the loop. Errors leave no VM.
    Result<void> receive_migration(const std::string& address, const SnapshotOverrides& overrides);
    // Ends the wait with an error (exit status 1), from any thread.
    void fail(std::string why);
    VmConfig machine_config() override;
    VmConfig full_config() override;
    Result<nlohmann::json> accounting() override;

private:
    Vmm(VmConfig config, Options options, std::unique_ptr<EventLoop> loop);
    // Runs fn on the loop thread and returns its result; at once when
    // called there. Fails (Internal) once the loop has finished.
    Result<void> on_loop(std::function<Result<void>()> fn);
    Result<void> pre_boot(std::string_view what) const;  // NotAllowed once started
    Result<void> start_on_loop();
    // Makes the VM with `build` and starts it (parked if `paused`), with its
    // cgroup and ledger: InstanceStart and snapshot load alike.
    using VmBuilder = std::function<Result<std::unique_ptr<Vm>>(const VmConfig&)>;
    Result<void> launch(const VmConfig& config, const VmBuilder& build, bool paused);
    Result<void> make_cgroup(const VmConfig& config);
    void place_vcpu_threads();
    accounting::Sample sample() const;
    void on_vm_exit();
    void migrate_out(Fd fd);  // the source's thread (vmm_migration.cpp)
    Result<uint64_t> send_dirty(int fd, const std::vector<std::vector<uint64_t>>& dirty);
    void join_migration();    // before the VM goes
    std::optional<std::string> migration_stopped();

    VmConfig m_config;
    Options m_options;
    std::unique_ptr<EventLoop> m_loop;
    // Declared before m_vm: removed after the VM's threads are gone.
    std::unique_ptr<cgroup::VmCgroup> m_cgroup;
    std::unique_ptr<Vm> m_vm;
    std::unique_ptr<accounting::Ledger> m_ledger;  // samples m_vm: goes first
    std::unique_ptr<MetricsWriter> m_metrics;
    std::function<nlohmann::json()> m_api_metrics;
    std::function<void()> m_start_hook;
    std::thread::id m_loop_thread;
    mutable std::mutex m_lock;  // guards the three below (read by any thread)
    VmState m_state{VmState::NotStarted};
    bool m_finished{false};
    std::optional<VmOutcome> m_quit;

    // Live migration out (vmm_migration.cpp).
    mutable std::mutex m_migration_lock;  // guards m_migration
    MigrationStatus m_migration;
    MigrationParams m_migration_params;   // set before the thread starts
    std::chrono::steady_clock::time_point m_migration_started;
    std::atomic<bool> m_migration_cancel{false};
    std::atomic<int> m_migration_sock{-1};  // shut down to unblock the thread
    std::atomic<bool> m_migration_done{true};  // the thread has nothing left to ask the loop
    std::atomic<bool> m_migration_reported{false};  // GET /migrate has shown Completed
    std::thread m_migration_thread;
};

// The version ringvisor reports (GET /version, GET /).
std::string_view ringvisor_version();

}  // namespace rv
