// ringvisor: command-line entry point. Subcommands: run, check, prepare-kernel, top, report.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "app/device_args.h"
#include "app/size_parse.h"
#include "app/report_command.h"
#include "app/migrate_command.h"
#include "app/snapshot_command.h"
#include "snapshot/memory_rebase.h"
#include "app/top_command.h"
#include "base/fd.h"
#include "base/log.h"
#include "vmm/kernel_cache.h"
#include "vmm/kvm_probe.h"
#include "app/run_command.h"
#include "vmm/vm_config.h"

namespace {

int fail(const std::string& message, int status = 2) {
    std::fprintf(stderr, "ringvisor: error: %s\n", message.c_str());
    return status;
}

int run_check(const std::string& kvm_path) {
    auto probe = rv::probe_kvm(kvm_path);
    if (!probe) {
        std::printf("KVM: not usable: %s\n", probe.error().message().c_str());
        std::printf(
            "advice: run guests inside the test host (make demo does this for you):\n"
            "        tools/testhost/run.sh -- ./build/ringvisor run ...\n");
        return 1;
    }
    std::printf("KVM: %s usable (up to %u vCPUs per VM)\n", kvm_path.c_str(), probe->max_vcpus);
    std::printf("guest ring-0 code: %s (%.1f ns per loop iteration over %llu iterations)\n",
                probe->ring0_native ? "runs natively" : "is EMULATED", probe->ns_per_iteration,
                static_cast<unsigned long long>(probe->loop_iterations));
    if (probe->ring0_native) {
        std::printf("advice: Linux guests can run directly with `ringvisor run`.\n");
    } else {
        std::printf(
            "advice: a Linux guest would boot very slowly here; run it inside the test host\n"
            "        (an L1 Linux under QEMU with an emulated AMD-V CPU):\n"
            "        tools/testhost/run.sh -- ./build/ringvisor run ...   (make demo does this)\n");
    }
    return 0;
}

int run_prepare(const std::string& kernel_path, const std::string& cache_dir) {
    auto kernel = rv::read_file(kernel_path);
    if (!kernel) return fail("cannot read kernel: " + kernel.error().message());
    auto bytes = std::span(reinterpret_cast<const uint8_t*>(kernel->data()), kernel->size());
    auto cached = rv::cached_vmlinux(bytes, cache_dir);
    if (!cached) return fail(kernel_path + ": " + cached.error().message());
    if (!*cached || (*cached)->path.empty())
        return fail(fmt::format("cannot cache {} in {} (unsupported compression or not writable)",
                                kernel_path, cache_dir),
                    1);
    std::printf("%s %s\n", (*cached)->hit ? "cached:" : "decompressed:", (*cached)->path.c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"ringvisor: a KVM virtual machine monitor"};
    app.require_subcommand(1);
    bool verbose = false;
    app.add_flag("-v,--verbose", verbose, "log device and VMM events");

    std::string kvm_path = "/dev/kvm";
    auto* check = app.add_subcommand("check", "report whether /dev/kvm is usable and how fast");
    check->add_option("--kvm", kvm_path, "KVM device")->capture_default_str();

    rv::VmConfig config;
    std::string memory = "512M";
    auto* run = app.add_subcommand("run", "boot a Linux kernel");
    rv::RunRequest request;
    run->add_option("-k,--kernel", config.kernel_path,
                    "bzImage to boot (required unless --config-file or --api-sock)");
    run->add_option("-i,--initrd", config.initrd_path, "initramfs image");
    run->add_option("-c,--cmdline", config.cmdline, "kernel command line")->capture_default_str();
    run->add_option("-m,--memory", memory, "guest memory, e.g. 512M, 2G (default unit MiB)")
        ->capture_default_str();
    run->add_option("--cpus", config.cpus, "number of vCPUs")->capture_default_str();
    run->add_option("--kvm", config.kvm_path, "KVM device")->capture_default_str();
    std::vector<std::string> disks, nets;
    std::string console = "serial";
    run->add_option(
        "--disk", disks,
        "PATH[,ro][,iface=virtio|ide][,cache=none|writeback][,bw_size=BYTES,bw_refill_time=MS]"
        "[,ops_size=N,ops_refill_time=MS][,rate_limit_group=NAME] (repeatable; up to 4 IDE)");
    std::vector<std::string> groups;
    run->add_option("--rate-limit-group", groups,
                    "id=NAME,bw_size=BYTES,bw_refill_time=MS[,bw_one_time_burst=BYTES][,ops_size=N,"
                    "ops_refill_time=MS[,ops_one_time_burst=N]]: token buckets every drive with "
                    "rate_limit_group=NAME draws from, shared with the other VMs on this host that "
                    "define the same group (repeatable)");
    run->add_option("--net", nets,
                    "tap=NAME[,mac=XX:XX:XX:XX:XX:XX][,model=virtio|e1000][,queues=N] "
                    "(repeatable; queues: virtio-net queue pairs, default one per vCPU, max 16)");
    run->add_option("--console", console, "console input: serial (ttyS0) or virtio (hvc0)")
        ->check(CLI::IsMember({"serial", "virtio"}))
        ->capture_default_str();
    run->add_option("--stats", config.stats_path,
                    "write exit and interrupt counters as JSON at exit");
    std::string memory_backend = "anonymous";
    run->add_option("--memory-backend", memory_backend,
                    "what holds guest RAM: anonymous (default; transparent huge pages) or memfd "
                    "(shared memory, huge pages only where the host's shmem_enabled allows)")
        ->check(CLI::IsMember({"anonymous", "memfd"}))
        ->capture_default_str();
    std::string on_triple_fault = "crash";
    run->add_option("--on-triple-fault", on_triple_fault,
                    "crash: a triple fault the guest did not ask for ends the VMM with status 4 "
                    "(default); reset: treat it as the guest's reboot (status 0)")
        ->check(CLI::IsMember({"crash", "reset"}))
        ->capture_default_str();
    std::string sched = "batch";
    run->add_option("--sched", sched,
                    "scheduling class of the VMM's threads: batch (SCHED_BATCH, default: a thread "
                    "that wakes does not preempt the one running on its CPU, so the event loop and "
                    "vCPUs sharing a CPU hand it over in batches) or normal (as started)")
        ->check(CLI::IsMember({"batch", "normal"}))
        ->capture_default_str();
    bool rng = false;
    run->add_flag("--rng", rng,
                  "virtio-rng device (/dev/hwrng) fed from the host's getrandom");
    run->add_option("--config-file", request.config_file,
                    "the VM as JSON, in Firecracker's --config-file shape (boot-source, drives, "
                    "machine-config, network-interfaces, entropy, logger, metrics)");
    run->add_option("--api-sock", request.api_sock,
                    "serve Firecracker's REST API on this Unix socket; without --kernel or "
                    "--config-file, wait there to be configured");
    run->add_option("--id", request.id, "the instance id the API reports")->capture_default_str();
    if (const char* dir = std::getenv("RINGVISOR_RUN_DIR")) config.run_dir = dir;
    run->add_option("--run-dir", config.run_dir,
                    "run directory (default $RINGVISOR_RUN_DIR or /run/ringvisor): rate limit "
                    "groups' files are in its rate-limit-groups/")
        ->capture_default_str();
    std::string cache_dir = rv::default_kernel_cache_dir();
    bool no_cache = false;
    run->add_option("--kernel-cache", cache_dir,
                    "directory caching decompressed kernels (boots skip the guest's decompression)")
        ->capture_default_str();
    run->add_flag("--no-kernel-cache", no_cache,
                  "boot the bzImage as is; the guest decompresses it");

    std::optional<uint32_t> cpu_weight;
    std::string cpu_max, cpuset, cgroup_parent = *config.cgroup_parent;
    bool no_cgroup = false;
    run->add_option("--cpu-weight", cpu_weight,
                    "the VM's CPU share against other VMs: 1..10000, default 100 (cgroup cpu.weight; "
                    "v1 hosts: cpu.shares = weight * 1024 / 100)");
    run->add_option("--cpu-max", cpu_max,
                    "QUOTA/PERIOD in microseconds: at most QUOTA of CPU time per PERIOD over all the "
                    "VM's threads, e.g. 25000/100000 for a quarter of one CPU");
    run->add_option("--cpuset", cpuset, "host CPUs the VM may run on, e.g. 0-3,6");
    std::optional<uint32_t> io_weight;
    run->add_option("--io-weight", io_weight,
                    "the VM's share of contended disk I/O against other VMs: 1..10000, default 100 "
                    "(cgroup v2 io.weight; v1 hosts: blkio.weight = weight * 5, 10..1000)");
    std::string io_max;
    run->add_option("--io-max", io_max,
                    "rbps=N,wbps=N,riops=N,wiops=N: caps on the VM's disk I/O, bytes and operations "
                    "per second, at the host block devices its drives are on (cgroup v2 io.max, v1 "
                    "blkio.throttle.*)");
    run->add_option("--cgroup-parent", cgroup_parent,
                    "where the VM's cgroup is made, under each cgroup hierarchy's mount "
                    "(the cgroup is <parent>/rv-<pid>, with vcpus/ and vmm/ children)")
        ->capture_default_str();
    run->add_flag("--no-cgroup", no_cgroup,
                  "leave the VM's threads in the VMM's cgroup (no CPU policy, no cgroup accounting)");

    run->add_option("--ledger", config.ledger_path,
                    "append the VM's accounting to this file as JSON lines (guest CPU per vCPU, VMM "
                    "overhead, steal, exits, disk and network counters, memory): one every "
                    "--ledger-interval seconds and a final one at exit, each synced to disk");
    run->add_option("--ledger-interval", config.ledger_interval_s, "seconds between ledger records")
        ->capture_default_str();

    std::vector<std::string> net_overrides, drive_overrides;
    run->add_option("--restore", request.restore_dir,
                    "run the VM of a snapshot directory (ringvisor snapshot, or PUT "
                    "/snapshot/create into DIR/state and DIR/memory) instead of booting; the "
                    "machine and its devices come from the snapshot");
    run->add_option("--net-override", net_overrides,
                    "with --restore: ID=TAP, the NIC ID uses TAP (a clone's own network)");
    run->add_option("--drive-override", drive_overrides,
                    "with --restore: ID=PATH, the drive ID uses the image PATH (a clone's own disk)");
    run->add_flag("--restore-paused", request.restore_paused,
                  "with --restore: leave the VM paused (resume it through the API)");
    run->add_flag("--clock-realtime", request.clock_realtime,
                  "with --restore: advance the guest's clock by the time since the snapshot "
                  "(else it goes on from where it stopped)");

    rv::app::SnapshotOptions snapshot_options;
    auto* snapshot = app.add_subcommand(
        "snapshot", "snapshot a VM through its API socket into a directory (DIR/state, "
                    "DIR/memory): the VM is paused meanwhile and then resumes");
    snapshot->add_option("--api-sock", snapshot_options.api_sock, "the VM's API socket")
        ->required();
    snapshot->add_option("dir", snapshot_options.dir, "where the snapshot goes")->required();
    snapshot->add_flag("--keep-paused", snapshot_options.keep_paused,
                       "leave the VM paused after the snapshot");
    snapshot->add_flag("--diff", snapshot_options.diff,
                       "a diff snapshot: DIR/memory holds only the pages written since the last "
                       "snapshot (the VM needs --track-dirty-pages); lay it over that snapshot's "
                       "memory file with `ringvisor rebase-snap`");
    run->add_flag("--track-dirty-pages", config.track_dirty_pages,
                  "log the pages the guest and the VMM write (diff snapshots)");

    run->add_option("--incoming", request.incoming,
                    "wait on ADDR (unix:PATH or tcp:HOST:PORT) for a live migration from "
                    "`ringvisor migrate`, then run the VM it brings");

    rv::app::MigrateOptions migrate_options;
    auto* migrate = app.add_subcommand(
        "migrate", "live-migrate the VM behind an API socket to a `ringvisor run --incoming` "
                   "process; the source ends once the destination runs it, or runs on if it fails");
    migrate->add_option("--api-sock", migrate_options.api_sock, "the source VM's API socket")
        ->required();
    migrate->add_option("--to", migrate_options.to, "the destination: unix:PATH or tcp:HOST:PORT")
        ->required();
    migrate->add_option("--downtime-ms", migrate_options.downtime_ms,
                        "stop copying while the guest runs once the rest fits this pause")
        ->capture_default_str();
    migrate->add_option("--bandwidth", migrate_options.bandwidth_mib_s,
                        "cap on the memory stream, MiB/s (0: none)")
        ->capture_default_str();
    migrate->add_option("--timeout", migrate_options.timeout_s,
                        "cancel after this many seconds (0: never); the source runs on");

    std::string rebase_base, rebase_diff;
    auto* rebase = app.add_subcommand(
        "rebase-snap", "lay a diff snapshot's memory file over the memory file of the snapshot "
                       "before it (as Firecracker's rebase-snap): the base then holds the diff's RAM");
    rebase->add_option("--base-file", rebase_base, "the earlier snapshot's memory file")->required();
    rebase->add_option("--diff-file", rebase_diff, "the diff snapshot's memory file")->required();

    std::string prep_kernel;
    auto* prepare = app.add_subcommand(
        "prepare-kernel",
        "decompress a bzImage into the kernel cache (e.g. before a read-only run)");
    prepare->add_option("-k,--kernel", prep_kernel, "bzImage")->required();
    prepare->add_option("--kernel-cache", cache_dir, "cache directory")->capture_default_str();

    rv::app::TopOptions top_options;
    if (const char* dir = std::getenv("RINGVISOR_RUN_DIR")) top_options.run_dir = dir;
    else top_options.run_dir = "/run/ringvisor";
    auto* top = app.add_subcommand(
        "top", "live view of the VMs whose API sockets are in a run directory: CPU, steal, disk "
               "and network rates, exits/s (start VMs with --api-sock RUN_DIR/NAME.sock)");
    top->add_option("--run-dir", top_options.run_dir,
                    "directory of API sockets, scanned at every refresh (default $RINGVISOR_RUN_DIR "
                    "or /run/ringvisor)");
    top->add_option("--interval", top_options.interval_s, "seconds between refreshes")
        ->capture_default_str();
    top->add_option("--sort", top_options.sort, "cpu, steal, disk, net, exits, rss or name")
        ->capture_default_str();
    top->add_flag("--batch", top_options.batch,
                  "print a table per refresh instead of redrawing (also when stdout is no terminal)");
    top->add_option("--iterations", top_options.iterations, "stop after this many tables (0: never)");
    top->add_option("--timeout", top_options.timeout_s,
                    "seconds each VM has to answer a refresh (default: half the interval, 0.25 to "
                    "1 s); a VMM held to a small CPU share answers slowly")
        ->check(CLI::Range(0.05, 60.0));
    top->add_option("sockets", top_options.sockets, "more API sockets to show");

    rv::app::ReportOptions report_options;
    auto* report = app.add_subcommand(
        "report", "what each VM used over a time range, from --ledger files: a table (or CSV) "
                  "per VM instance, and a PNG chart of CPU share over time");
    report->add_option("ledgers", report_options.ledgers, "ledger files")->required();
    report->add_option("--from", report_options.from,
                       "start (exclusive): 2026-12-05T10:00:00Z, epoch ms, or -90s/-30m/-2h/-1d; a "
                       "record counts, whole, when its end lies in the range");
    report->add_option("--to", report_options.to, "end (inclusive), as --from");
    report->add_option("--csv", report_options.csv, "also write the table as CSV to FILE (- : CSV "
                                                     "on stdout instead of the table)");
    report->add_option("--png", report_options.png, "write a chart of CPU share over time");
    report->add_option("--width", report_options.width, "chart width in pixels")->capture_default_str();
    report->add_option("--height", report_options.height, "chart height in pixels")->capture_default_str();

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        return fail(std::string(e.what()) + " (see ringvisor --help)");
    }
    rv::log::set_level(verbose ? rv::log::Level::Debug : rv::log::Level::Warn);

    if (*check) return run_check(kvm_path);
    if (*prepare) return run_prepare(prep_kernel, cache_dir);
    if (*top) return rv::app::run_top(top_options);
    if (*report) return rv::app::run_report(report_options);
    if (*snapshot) return rv::app::snapshot_vm(snapshot_options);
    if (*migrate) return rv::app::migrate_vm(migrate_options);
    if (*rebase) {
        auto copied = rv::snapshot::rebase_memory_file(rebase_base, rebase_diff);
        if (!copied) return fail(copied.error().message(), copied.error().is_input() ? 2 : 1);
        std::printf("%s: %llu bytes from %s\n", rebase_base.c_str(),
                    static_cast<unsigned long long>(*copied), rebase_diff.c_str());
        return 0;
    }
    if (request.restore_dir && request.incoming)
        return fail("--restore and --incoming: give one");
    if (request.restore_dir || request.incoming) {
        // The machine is the snapshot's: flags that would shape another one are refused.
        for (const char* name : {"--kernel", "--initrd", "--cmdline", "--memory", "--cpus",
                                 "--disk", "--net", "--console", "--rng", "--config-file",
                                 "--rate-limit-group"})
            if (run->get_option(name)->count() > 0)
                return fail(fmt::format("{} takes the VM from the {}: not with {}",
                                        request.restore_dir ? "--restore" : "--incoming",
                                        request.restore_dir ? "snapshot" : "source", name));
        if (request.incoming && (request.restore_paused || request.clock_realtime))
            return fail("--restore-paused and --clock-realtime go with --restore");
    } else if (!net_overrides.empty() || !drive_overrides.empty() || request.restore_paused ||
               request.clock_realtime) {
        return fail("--net-override, --drive-override, --restore-paused and --clock-realtime go "
                    "with --restore (the overrides also with --incoming)");
    }
    for (const auto& [list, into] : {std::pair{&net_overrides, &request.net_overrides},
                                     std::pair{&drive_overrides, &request.drive_overrides}}) {
        for (const auto& item : *list) {
            auto eq = item.find('=');
            if (eq == std::string::npos || eq == 0 || eq + 1 == item.size())
                return fail(fmt::format("override '{}': expected ID=VALUE", item));
            if (!into->emplace(item.substr(0, eq), item.substr(eq + 1)).second)
                return fail(fmt::format("override '{}': ID given twice", item));
        }
    }
    if (!no_cache) config.kernel_cache_dir = cache_dir;

    for (const auto& d : disks) {
        auto disk = rv::parse_disk_arg(d);
        if (!disk) return fail(disk.error().message());
        config.disks.push_back(*disk);
    }
    for (const auto& n : nets) {
        auto net = rv::parse_net_arg(n);
        if (!net) return fail(net.error().message());
        config.nets.push_back(*net);
    }
    for (const auto& g : groups) {
        auto group = rv::parse_rate_limit_group_arg(g);
        if (!group) return fail(group.error().message());
        config.rate_limit_groups.push_back(*group);
    }
    config.console = console == "virtio" ? rv::ConsoleKind::Virtio : rv::ConsoleKind::Serial;
    if (rng) config.entropy = rv::EntropyConfig{};
    config.memory_backend =
        memory_backend == "memfd" ? rv::MemoryBackend::Memfd : rv::MemoryBackend::Anonymous;
    config.on_triple_fault = on_triple_fault == "reset" ? rv::TripleFaultAction::Reset
                                                        : rv::TripleFaultAction::Crash;
    request.sched = sched == "normal" ? rv::ThreadSched::Normal : rv::ThreadSched::Batch;
    config.cpu_policy.weight = cpu_weight;
    config.cpu_policy.io_weight = io_weight;
    if (!io_max.empty()) {
        auto max = rv::parse_io_max(io_max);
        if (!max) return fail("--io-max: " + max.error().message());
        config.cpu_policy.io_max = *max;
    }
    if (!cpu_max.empty()) {
        auto max = rv::parse_cpu_max(cpu_max);
        if (!max) return fail("--cpu-max: " + max.error().message());
        config.cpu_policy.max = *max;
    }
    if (!cpuset.empty()) config.cpu_policy.cpuset = cpuset;
    config.cgroup_parent = no_cgroup ? std::nullopt : std::optional<std::string>(cgroup_parent);
    auto bytes = rv::parse_memory_size(memory);
    if (!bytes) return fail(bytes.error().message());
    config.memory_bytes = *bytes;
    request.config = std::move(config);
    return rv::run_vm(std::move(request));
}
