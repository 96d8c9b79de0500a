#include "vmm/vmm.h"
#include "vmm/vm_snapshot_config.h"

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <future>
#include <nlohmann/json.hpp>

#include "base/log.h"
#include "vmm/accounting.h"
#include "vmm/cgroup.h"
#include "vmm/thread_times.h"
#include "vmm/logger.h"
#include "vmm/metrics.h"

namespace rv {

std::string_view ringvisor_version() { return "0.5.0"; }

Result<std::unique_ptr<Vmm>> Vmm::create(VmConfig config, Options options) {
    auto loop = RV_TRY(EventLoop::create());
    return std::unique_ptr<Vmm>(new Vmm(std::move(config), std::move(options), std::move(loop)));
}

Vmm::Vmm(VmConfig config, Options options, std::unique_ptr<EventLoop> loop)
    : m_config(std::move(config)),
      m_options(std::move(options)),
      m_loop(std::move(loop)),
      m_loop_thread(std::this_thread::get_id()) {}

Vmm::~Vmm() {
    join_migration();
    m_metrics.reset();  // unregisters its timer from the loop
    m_ledger.reset();
    if (m_vm) m_vm->shutdown();
    m_vm.reset();
}

Result<void> Vmm::on_loop(std::function<Result<void>()> fn) {
    {
        std::lock_guard lock(m_lock);
        if (m_finished) return make_error("the VMM is shutting down");
    }
    // The thread that runs the loop calls straight through (it is the one
    // thread of control, whether or not run() has started yet).
    if (std::this_thread::get_id() == m_loop_thread) return fn();
    auto done = std::make_shared<std::promise<Result<void>>>();
    auto result = done->get_future();
    m_loop->post([this, fn = std::move(fn), done] {
        bool finished;
        {
            std::lock_guard lock(m_lock);
            finished = m_finished;
        }
        done->set_value(finished ? Result<void>(make_error("the VMM is shutting down")) : fn());
    });
    return result.get();
}

Result<void> Vmm::pre_boot(std::string_view what) const {
    std::lock_guard lock(m_lock);
    if (m_state != VmState::NotStarted)
        return not_allowed_error("{} is not allowed after the VM has started", what);
    return {};
}

Result<void> Vmm::start() {
    return on_loop([this] { return start_on_loop(); });
}

Result<void> Vmm::start_on_loop() {
    RV_TRY_VOID(pre_boot("InstanceStart"));
    VmConfig config = m_config;
    config.resolve_defaults();
    RV_TRY_VOID(config.validate(kMaxCpus));
    return launch(config,
                  [this](const VmConfig& c) {
                      return Vm::create(c, *m_loop, m_options.console, [this] { on_vm_exit(); });
                  },
                  false);
}

Result<void> Vmm::launch(const VmConfig& config, const VmBuilder& build, bool paused) {
    // Before the VM's threads exist: they start inside it.
    RV_TRY_VOID(make_cgroup(config));
    auto vm = build(config);
    if (!vm) {
        m_cgroup.reset();
        return std::unexpected(vm.error());
    }
    m_config = config;  // resolved: GET /vm/config shows what runs
    m_vm = std::move(*vm);
    if (config.ledger_path) {
        auto ledger = accounting::Ledger::open(*config.ledger_path,
                                               std::chrono::seconds(config.ledger_interval_s),
                                               *m_loop, m_options.instance_id, [this] { return sample(); });
        if (!ledger) {
            m_vm.reset();
            m_cgroup.reset();
            return std::unexpected(ledger.error());
        }
        m_ledger = std::move(*ledger);
    }
    if (paused)
        m_vm->start_paused();
    else
        m_vm->start();
    place_vcpu_threads();
    {
        std::lock_guard lock(m_lock);
        m_state = paused ? VmState::Paused : VmState::Running;
    }
    if (m_start_hook) m_start_hook();
    return {};
}

Result<void> Vmm::create_snapshot(const SnapshotCreateParams& params) {
    return on_loop([&]() -> Result<void> {
        if (!m_vm) return not_allowed_error("the VM has not started");
        if (!m_vm->paused()) return not_allowed_error("the VM must be paused for a snapshot");
        if (params.snapshot_path.empty() || params.mem_file_path.empty())
            return input_error("snapshot_path and mem_file_path are required");
        return m_vm->save_snapshot({params.snapshot_path, params.mem_file_path},
                                   params.type == SnapshotCreateParams::Type::Diff);
    });
}

Result<void> Vmm::load_snapshot(const SnapshotLoadParams& params) {
    return on_loop([&]() -> Result<void> {
        RV_TRY_VOID(pre_boot("snapshot load"));
        if (params.snapshot_path.empty() || params.mem_file_path.empty())
            return input_error("snapshot_path and the memory file's path are required");
        auto file = RV_TRY(as_input_error(snapshot::SnapshotFile::read(params.snapshot_path),
                                          params.snapshot_path));
        VmConfig config = RV_TRY(snapshot_config(
            file, m_config,
            SnapshotOverrides{.taps = params.network_overrides,
                              .drive_paths = params.drive_overrides},
            kMaxCpus));
        config.track_dirty_pages = params.track_dirty_pages;
        RV_TRY_VOID(launch(config,
                           [&](const VmConfig& c) {
                               return Vm::restore(c, file, params.mem_file_path, *m_loop,
                                                  m_options.console, [this] { on_vm_exit(); });
                           },
                           true));
        if (params.clock_realtime) m_vm->advance_clock_on_resume();
        if (!params.resume_vm) return {};
        RV_TRY_VOID(m_vm->resume());
        std::lock_guard lock(m_lock);
        m_state = VmState::Running;
        return {};
    });
}

// The VM's cgroup (vmm/cgroup.h). Without a CPU policy a host that has no
// usable cgroups only costs the per-VM cgroup accounting (logged); with one
// the VM does not start.
Result<void> Vmm::make_cgroup(const VmConfig& config) {
    if (!config.cgroup_parent) return {};
    auto host = cgroup::detect_host();
    auto fs = cgroup::real_fs();
    if (size_t n = cgroup::VmCgroup::sweep_stale(
            *fs, host, *config.cgroup_parent,
            [](pid_t pid) { return ::kill(pid, 0) == 0 || errno == EPERM; }))
        log::info("removed {} cgroup(s) left by VMMs that were killed", n);
    // Where the drives live, for io_max (now or by a later PATCH).
    cgroup::IoDevices io;
    for (const auto& disk : config.disks) {
        auto dev = cgroup::block_device_of(disk.path);
        if (!dev) {
            if (io.problem.empty())
                io.problem = fmt::format("drive '{}': {}", disk.id, dev.error().message());
        } else if (std::find(io.devices.begin(), io.devices.end(), *dev) == io.devices.end()) {
            io.devices.push_back(*dev);
        }
    }
    auto made = cgroup::VmCgroup::create(std::move(fs), host, *config.cgroup_parent,
                                         fmt::format("rv-{}", ::getpid()), config.cpu_policy,
                                         std::move(io));
    if (made) {
        m_cgroup = std::move(*made);
        m_cgroup->note_cpu_before(process_cpu_ns().value_or(0));
        log::debug("the VM's cgroup: {}", m_cgroup->path());
        return {};
    }
    if (!config.cpu_policy.empty()) return std::unexpected(made.error());
    log::info("no cgroup for this VM ({}): its CPU time is not accounted per cgroup",
              made.error().message());
    return {};
}

// The vCPU threads go from vmm/ (where they were born) to vcpus/.
void Vmm::place_vcpu_threads() {
    if (!m_cgroup) return;
    for (const auto& vcpu : m_vm->vcpus()) {
        pid_t tid = 0;
        for (int i = 0; i < 2000 && (tid = vcpu->tid()) == 0; ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        if (tid == 0) {
            log::warn("vCPU {} has no thread id yet: it stays in the VMM's cgroup", vcpu->fd().id());
            continue;
        }
        if (auto r = m_cgroup->add_vcpu_thread(tid); !r)
            log::warn("vCPU {}: {}", vcpu->fd().id(), r.error().message());
    }
    if (auto pit = m_cgroup->adopt_pit_thread(); !pit)
        log::warn("KVM's PIT thread stays outside the VM's cgroup: {}", pit.error().message());
}

accounting::Sample Vmm::sample() const {
    std::map<unsigned, ThreadTimes> ended;
    for (const auto& vcpu : m_vm->vcpus())
        if (auto t = vcpu->exit_times()) ended[vcpu->fd().id()] = *t;
    return accounting::take_sample(*m_vm, m_cgroup.get(), ended);
}

Result<nlohmann::json> Vmm::accounting() {
    nlohmann::json out;
    RV_TRY_VOID(on_loop([&]() -> Result<void> {
        if (!m_vm) return not_allowed_error("GET /accounting: the VM has not started");
        out = accounting::record(sample(), nullptr, "current", m_options.instance_id);
        return {};
    }));
    return out;
}

// From whichever thread ended the VM: the loop stops, run() returns.
void Vmm::on_vm_exit() { m_loop->stop(); }

void Vmm::quit(std::string why) {
    {
        std::lock_guard lock(m_lock);
        if (!m_quit) m_quit = VmOutcome{VmExitReason::Quit, why};
    }
    m_loop->post([this, why] {
        if (m_vm)
            m_vm->request_exit(VmExitReason::Quit, why);
        else
            m_loop->stop();
    });
}

void Vmm::fail(std::string why) {
    {
        std::lock_guard lock(m_lock);
        if (!m_quit) m_quit = VmOutcome{VmExitReason::Error, why};
    }
    m_loop->post([this, why] {
        if (m_vm)
            m_vm->request_exit(VmExitReason::Error, why);
        else
            m_loop->stop();
    });
}

VmOutcome Vmm::run() {
    m_loop_thread = std::this_thread::get_id();
    auto result = m_loop->run();
    {
        std::lock_guard lock(m_lock);
        m_finished = true;
    }
    // Requests posted meanwhile are answered (with "shutting down").
    m_loop->post([] {});
    m_loop->run_posted();
    join_migration();  // it reads the VM's memory: before the VM goes
    if (m_metrics) (void)m_metrics->flush();
    if (m_vm) {
        if (!result) m_vm->request_exit(VmExitReason::Error, result.error().message());
        m_vm->shutdown();
        // After shutdown: the vCPU threads have ended and left their times.
        if (m_ledger)
            if (auto r = m_ledger->write("final"); !r) log::warn("ledger: {}", r.error().message());
        if (auto o = m_vm->outcome()) return *o;
    }
    std::lock_guard lock(m_lock);
    if (!result) return VmOutcome{VmExitReason::Error, result.error().message()};
    return m_quit.value_or(VmOutcome{VmExitReason::Quit, "the VMM stopped"});
}

ConsoleInput* Vmm::console_input() { return m_vm ? &m_vm->devices().console_input() : nullptr; }

void Vmm::set_api_metrics(std::function<nlohmann::json()> provider) {
    (void)on_loop([&] {
        m_api_metrics = std::move(provider);
        return Result<void>{};
    });
}

InstanceInfo Vmm::instance_info() {
    std::lock_guard lock(m_lock);
    return InstanceInfo{.id = m_options.instance_id,
                        .state = m_state,
                        .vmm_version = std::string(ringvisor_version()),
                        .app_name = "ringvisor"};
}

std::string Vmm::version() { return std::string(ringvisor_version()); }

Result<void> Vmm::set_boot_source(const BootSourceConfig& boot) {
    return on_loop([&]() -> Result<void> {
        RV_TRY_VOID(pre_boot("PUT /boot-source"));
        if (boot.kernel_image_path.empty()) return input_error("kernel_image_path is empty");
        m_config.kernel_path = boot.kernel_image_path;
        m_config.initrd_path = boot.initrd_path;
        if (boot.boot_args) m_config.cmdline = *boot.boot_args;
        return {};
    });
}

Result<void> Vmm::put_machine_config(unsigned vcpu_count, uint64_t mem_size_mib, bool smt,
                                     bool track_dirty_pages, const CpuPolicy& cpu) {
    return on_loop([&]() -> Result<void> {
        RV_TRY_VOID(pre_boot("PUT /machine-config"));
        VmConfig c = m_config;
        c.cpus = vcpu_count;
        c.memory_bytes = mem_size_mib << 20;
        c.smt = smt;
        c.track_dirty_pages = track_dirty_pages;
        c.cpu_policy = cpu;
        m_config = c;
        return {};
    });
}

Result<void> Vmm::patch_machine_config(const MachineConfigUpdate& update) {
    return on_loop([&]() -> Result<void> {
        if (m_vm) {
            if (update.vcpu_count || update.mem_size_mib || update.smt || update.track_dirty_pages)
                return not_allowed_error(
                    "PATCH /machine-config after InstanceStart: only cpu_weight, cpu_max, cpuset, "
                    "io_weight and io_max can change");
            if (update.cpu.empty()) return {};
            if (!m_cgroup)
                return not_allowed_error(
                    "PATCH /machine-config: this VM has no cgroup (see the VMM's log), so its CPU "
                    "and io policy cannot change");
            RV_TRY_VOID(m_cgroup->apply(update.cpu));
            m_config.cpu_policy.merge(update.cpu);
            return {};
        }
        RV_TRY_VOID(pre_boot("PATCH /machine-config"));
        m_config.cpu_policy.merge(update.cpu);
        if (update.vcpu_count) m_config.cpus = *update.vcpu_count;
        if (update.mem_size_mib) m_config.memory_bytes = *update.mem_size_mib << 20;
        if (update.smt) m_config.smt = *update.smt;
        if (update.track_dirty_pages) m_config.track_dirty_pages = *update.track_dirty_pages;
        return {};
    });
}

namespace {

// PUT of a resource with an id: replaces the entry with that id, or adds it.
template <typename Entry>
void put_by_id(std::vector<Entry>& entries, const Entry& entry) {
    for (auto& e : entries)
        if (e.id == entry.id) {
            e = entry;
            return;
        }
    entries.push_back(entry);
}

}  // namespace

Result<void> Vmm::put_drive(const DiskConfig& drive) {
    return on_loop([&]() -> Result<void> {
        RV_TRY_VOID(pre_boot("PUT /drives"));
        put_by_id(m_config.disks, drive);
        return {};
    });
}

Result<void> Vmm::put_network_interface(const NetConfig& net) {
    return on_loop([&]() -> Result<void> {
        RV_TRY_VOID(pre_boot("PUT /network-interfaces"));
        put_by_id(m_config.nets, net);
        return {};
    });
}

Result<void> Vmm::put_entropy(const EntropyConfig& entropy) {
    return on_loop([&]() -> Result<void> {
        RV_TRY_VOID(pre_boot("PUT /entropy"));
        m_config.entropy = entropy;
        return {};
    });
}

Result<void> Vmm::put_rate_limit_group(const RateLimitGroupConfig& group) {
    return on_loop([&]() -> Result<void> {
        RV_TRY_VOID(pre_boot("PUT /rate-limit-groups"));
        put_by_id(m_config.rate_limit_groups, group);
        return {};
    });
}

Result<void> Vmm::put_logger(const LoggerConfig& logger) {
    return on_loop([&]() -> Result<void> {
        RV_TRY_VOID(configure_logger(logger));
        m_config.logger = logger;
        return {};
    });
}

Result<void> Vmm::put_metrics(const MetricsConfig& metrics) {
    return on_loop([&]() -> Result<void> {
        if (m_metrics) return not_allowed_error("metrics are already configured");
        m_metrics = RV_TRY(MetricsWriter::open(metrics.metrics_path, *m_loop, [this] {
            return metrics_snapshot(m_vm.get(), m_api_metrics ? m_api_metrics() : nlohmann::json());
        }));
        m_config.metrics = metrics;
        return {};
    });
}

Result<void> Vmm::patch_drive(const DriveUpdate& update) {
    return on_loop([&]() -> Result<void> {
        auto it = std::find_if(m_config.disks.begin(), m_config.disks.end(),
                               [&](const DiskConfig& d) { return d.id == update.id; });
        if (it == m_config.disks.end()) return input_error("no drive '{}'", update.id);
        if (m_vm) RV_TRY_VOID(m_vm->devices().update_drive(update));
        if (update.path_on_host) it->path = *update.path_on_host;
        if (update.rate_limiter) it->rate_limiter = *update.rate_limiter;
        return {};
    });
}

Result<void> Vmm::patch_network_interface(const NetUpdate& update) {
    return on_loop([&]() -> Result<void> {
        auto it = std::find_if(m_config.nets.begin(), m_config.nets.end(),
                               [&](const NetConfig& n) { return n.id == update.id; });
        if (it == m_config.nets.end()) return input_error("no network interface '{}'", update.id);
        if (m_vm) RV_TRY_VOID(m_vm->devices().update_net(update));
        if (update.rx_rate_limiter) it->rx_rate_limiter = *update.rx_rate_limiter;
        if (update.tx_rate_limiter) it->tx_rate_limiter = *update.tx_rate_limiter;
        return {};
    });
}

Result<void> Vmm::action(VmAction action) {
    switch (action) {
        case VmAction::InstanceStart:
            return start();
        case VmAction::SendCtrlAltDel:
            return on_loop([this]() -> Result<void> {
                if (!m_vm) return not_allowed_error("SendCtrlAltDel: the VM has not started");
                return m_vm->devices().send_ctrl_alt_del();
            });
        case VmAction::FlushMetrics:
            return on_loop([this]() -> Result<void> {
                if (!m_metrics) return not_allowed_error("FlushMetrics: no metrics configured (PUT /metrics)");
                return m_metrics->flush();
            });
    }
    return input_error("unknown action");
}

Result<void> Vmm::pause() {
    return on_loop([this]() -> Result<void> {
        if (!m_vm) return not_allowed_error("the VM has not started");
        RV_TRY_VOID(m_vm->pause());
        std::lock_guard lock(m_lock);
        m_state = VmState::Paused;
        return {};
    });
}

Result<void> Vmm::resume() {
    return on_loop([this]() -> Result<void> {
        if (!m_vm) return not_allowed_error("the VM has not started");
        RV_TRY_VOID(m_vm->resume());
        std::lock_guard lock(m_lock);
        m_state = VmState::Running;
        return {};
    });
}

VmConfig Vmm::machine_config() { return full_config(); }

VmConfig Vmm::full_config() {
    VmConfig out;
    (void)on_loop([&] {
        out = m_config;
        out.resolve_defaults();
        return Result<void>{};
    });
    return out;
}

}  // namespace rv
