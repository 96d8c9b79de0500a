#include "app/run_command.h"
#include "app/snapshot_command.h"

#include <cstdio>
#include <thread>

#include "api/server.h"
#include "app/console.h"
#include "base/fd.h"
#include "base/log.h"
#include "vmm/config_json.h"
#include "vmm/logger.h"
#include "vmm/vmm.h"

namespace rv {

namespace {

int fail(const Error& error) {
    std::fprintf(stderr, "ringvisor: error: %s\n", error.message().c_str());
    return error.is_input() ? 2 : 1;
}

int report(const VmOutcome& outcome) {
    switch (outcome.reason) {
        case VmExitReason::PowerOff:
        case VmExitReason::Reset:
            log::info("guest stopped: {}", outcome.message);
            break;
        case VmExitReason::Panic:
            std::fprintf(stderr, "\nringvisor: guest kernel panic: %s\n", outcome.message.c_str());
            break;
        case VmExitReason::Crash:
            std::fprintf(stderr, "\nringvisor: guest crashed: %s\n", outcome.message.c_str());
            break;
        case VmExitReason::Quit:
        case VmExitReason::Migrated:
            std::fprintf(stderr, "\nringvisor: %s\n", outcome.message.c_str());
            break;
        case VmExitReason::Error:
            std::fprintf(stderr, "\nringvisor: error: %s\n", outcome.message.c_str());
            break;
    }
    return exit_status(outcome);
}

// The VM as --config-file describes it, with what only the command line
// says (the process's own options) taken from the flags.
Result<VmConfig> load_config_file(const std::string& path, const VmConfig& flags) {
    auto text = RV_TRY(as_input_error(read_file(path), "--config-file"));
    VmConfig config = RV_TRY(with_context(config_from_json(text), fmt::format("--config-file {}", path)));
    config.kvm_path = flags.kvm_path;
    config.kernel_cache_dir = flags.kernel_cache_dir;
    config.stats_path = flags.stats_path;
    config.on_triple_fault = flags.on_triple_fault;
    config.console = flags.console;
    config.cgroup_parent = flags.cgroup_parent;
    config.ledger_path = flags.ledger_path;
    config.ledger_interval_s = flags.ledger_interval_s;
    config.run_dir = flags.run_dir;
    // The CPU (and io weight) flags override the file's machine-config, part by part.
    config.cpu_policy.merge(flags.cpu_policy);
    return config;
}

}  // namespace

int run_vm(RunRequest request) {
    // Before the first thread is created, so that all inherit it. Where the
    // host refuses it (a seccomp or LSM policy), the VM runs in the class it
    // was started in: the class is a speed-up, not what the guest needs.
    if (auto r = apply_thread_sched(request.sched); !r)
        log::warn("--sched batch: {}; the VMM's threads keep their class", r.error().message());
    VmConfig config = request.config;
    if (request.config_file) {
        if (!config.kernel_path.empty() || !config.disks.empty() || !config.nets.empty() ||
            !config.rate_limit_groups.empty())
            return fail(input_error("--config-file describes the whole VM: give --kernel, "
                                    "--disk, --net and --rate-limit-group there, not as flags")
                            .error());
        auto loaded = load_config_file(*request.config_file, config);
        if (!loaded) return fail(loaded.error());
        config = std::move(*loaded);
    }
    const bool boot_now = !config.kernel_path.empty();
    if (!boot_now && !request.api_sock && !request.restore_dir && !request.incoming)
        return fail(input_error("run: --kernel is required (or --config-file, or --api-sock to "
                                "configure the VM through the API; see ringvisor --help)")
                        .error());
    if (boot_now) {
        // Bad input is reported before anything is created.
        VmConfig checked = config;
        checked.resolve_defaults();
        if (auto r = checked.validate(kMaxCpus); !r) return fail(r.error());
    }
    if (config.logger)
        if (auto r = configure_logger(*config.logger); !r) return fail(r.error());

    auto vmm = Vmm::create(config, Vmm::Options{.instance_id = request.id});
    if (!vmm) return fail(vmm.error());
    auto bridge = ConsoleBridge::create(**vmm, request.stdin_console ? config.console_in : -1,
                                        config.console_out);
    if (!bridge) return fail(bridge.error());
    (*vmm)->set_console((*bridge)->sink());
    (*vmm)->set_start_hook([b = bridge->get()] { b->vm_started(); });
    auto signals = watch_signals(**vmm);
    if (!signals) return fail(signals.error());
    if (config.metrics)
        if (auto r = (*vmm)->put_metrics(*config.metrics); !r) return fail(r.error());

    std::unique_ptr<api::ApiServer> server;
    if (request.api_sock) {
        auto s = api::ApiServer::start(*request.api_sock, **vmm);
        if (!s) return fail(s.error());
        server = std::move(*s);
        (*vmm)->set_api_metrics([srv = server.get()] { return srv->stats().to_json(); });
    }
    if (boot_now)
        if (auto r = (*vmm)->start(); !r) return fail(r.error());
    if (request.restore_dir) {
        const std::string& dir = *request.restore_dir;
        auto r = (*vmm)->load_snapshot(SnapshotLoadParams{
            .snapshot_path = dir + "/" + app::kSnapshotStateFile,
            .mem_file_path = dir + "/" + app::kSnapshotMemoryFile,
            .resume_vm = !request.restore_paused,
            .clock_realtime = request.clock_realtime,
            .network_overrides = request.net_overrides,
            .drive_overrides = request.drive_overrides});
        if (!r) return fail(r.error());
    }

    std::thread incoming;
    if (request.incoming) {
        incoming = std::thread([&, v = vmm->get()] {
            auto r = v->receive_migration(*request.incoming,
                                          SnapshotOverrides{.taps = request.net_overrides,
                                                            .drive_paths = request.drive_overrides});
            if (!r) v->fail(fmt::format("incoming migration: {}", r.error().message()));
        });
    }
    VmOutcome outcome = (*vmm)->run();
    if (incoming.joinable()) incoming.join();
    (*vmm)->set_api_metrics({});  // the provider refers to the server
    server.reset();               // after run(): the VMM refuses the API's calls now
    (*bridge)->drain();
    bridge->reset();  // restores the terminal before we report
    return report(outcome);
}

}  // namespace rv
