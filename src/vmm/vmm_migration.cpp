// Vmm, live migration (vmm_api.h, vmm/migration_wire.h): pre-copy from a
// source VMM to a destination started with `run --incoming`.
//
// Source, on a thread of its own while the guest runs (the loop keeps
// serving devices; the VM is touched only through on_loop):
//   1. connect, send Hello (config, RAM layout);
//   2. start dirty logging, send all RAM;
//   3. iterate: take the dirty pages; once sending them would take no longer
//      than the downtime target (at the bandwidth measured so far), or after
//      max_iterations, stop; else send them and look again;
//   4. pause (devices settle their I/O), save the state, send the last
//      dirty pages, the state and Done;
//   5. the destination's Ack: ok ends the source (VmExitReason::Migrated);
//      anything else, or any failure or cancel before, resumes the guest
//      and turns dirty logging back to what it was.
// Destination (receive_migration, on a thread, before the loop runs a VM):
// accepts one source, builds the machine on its Hello (Vm::prepare_restore)
// so that the pause pays only for loading state, fills its RAM with the
// pages, and on Done reopens the disks (the source no longer writes), loads
// the state (Vm::load_state), starts the vCPUs, resumes and acks.
#include <sys/socket.h>

#include <chrono>
#include <thread>

#include "base/log.h"
#include "memory/page_runs.h"
#include "vmm/migration_wire.h"
#include "vmm/vm_snapshot_config.h"
#include "vmm/vmm.h"

namespace rv {

namespace {

using Clock = std::chrono::steady_clock;
constexpr uint64_t kPage = GuestMemory::kDirtyPageSize;

double seconds_since(Clock::time_point t) {
    return std::chrono::duration<double>(Clock::now() - t).count();
}

uint64_t count_pages(const std::vector<std::vector<uint64_t>>& dirty) {
    uint64_t n = 0;
    for (const auto& region : dirty)
        for (uint64_t w : region) n += static_cast<uint64_t>(__builtin_popcountll(w));
    return n;
}

}  // namespace

// Sends the pages set in `dirty`, each run of dirty pages split into runs of
// pages of zeros (a Zeros frame: a guest that frees or clears memory dirties
// it with zeros) and of other pages (Pages frames), each of up to
// kMaxPagesPerFrame pages, pacing to the bandwidth cap; stops early when
// cancelled. Returns the bytes of page data sent.
Result<uint64_t> Vmm::send_dirty(int fd, const std::vector<std::vector<uint64_t>>& dirty) {
    const GuestMemory& memory = m_vm->memory();
    uint64_t sent = 0;
    const auto start = Clock::now();
    enum Kind { Clean = 0, Data, Zeros };
    for (uint32_t region = 0; region < dirty.size(); ++region) {
        auto walked = for_each_page_run(
            memory.regions()[region].size / kPage, migration::kMaxPagesPerFrame,
            [&](uint64_t page) {
                if (!page_bit(dirty[region], page)) return Clean;
                return memory.page_is_zero(region, page) ? Zeros : Data;
            },
            [&](uint64_t first, uint64_t end, Kind kind) -> Result<void> {
                if (auto why = migration_stopped()) return make_error("{}", *why);
                const auto count = static_cast<uint32_t>(end - first);
                if (kind == Zeros) {
                    RV_TRY_VOID(migration::send_zeros(fd, region, first, count));
                } else {
                    RV_TRY_VOID(migration::send_pages(fd, memory, region, first, count));
                    sent += count * kPage;
                }
                {
                    std::lock_guard lock(m_migration_lock);
                    m_migration.bytes_sent += kind == Zeros ? 16 : count * kPage;
                }
                if (m_migration_params.bandwidth_mib_s > 0) {
                    double allowed = static_cast<double>(sent) /
                                     (static_cast<double>(m_migration_params.bandwidth_mib_s) * (1 << 20));
                    double ahead = allowed - seconds_since(start);
                    if (ahead > 0) std::this_thread::sleep_for(std::chrono::duration<double>(ahead));
                }
                return {};
            });
        RV_TRY_VOID(walked);
    }
    return sent;
}

Result<void> Vmm::start_migration(const MigrationParams& params) {
    auto address = RV_TRY(migration::parse_address(params.destination));
    return on_loop([&]() -> Result<void> {
        if (!m_vm || m_vm->paused() || m_vm->exiting())
            return not_allowed_error("only a running VM can migrate");
        {
            std::lock_guard lock(m_migration_lock);
            if (m_migration.phase == MigrationStatus::Phase::Active)
                return not_allowed_error("a migration is already under way");
        }
        auto fd = RV_TRY(as_input_error(migration::connect_to(address), params.destination));
        if (m_migration_thread.joinable()) m_migration_thread.join();
        {
            std::lock_guard lock(m_migration_lock);
            m_migration = MigrationStatus{.phase = MigrationStatus::Phase::Active,
                                          .ram_bytes = m_vm->memory().total_size()};
        }
        m_migration_params = params;
        m_migration_started = Clock::now();
        m_migration_cancel = false;
        m_migration_done = false;
        m_migration_reported = false;
        m_migration_sock = fd.get();
        m_migration_thread = std::thread([this, fd = std::move(fd)]() mutable {
            migrate_out(std::move(fd));
        });
        return {};
    });
}

void Vmm::migrate_out(Fd fd) {
    const auto started = Clock::now();
    const bool was_logging = m_config.track_dirty_pages;
    bool paused = false, logging = false;
    auto fail = [&](MigrationStatus::Phase phase, std::string why) {
        // Leave the source as it was: running, logging as configured.
        (void)on_loop([&]() -> Result<void> {
            if (!m_vm) return {};
            if (paused) {
                if (auto r = m_vm->resume(); !r) log::error("migration: resuming: {}", r.error().message());
                std::lock_guard lock(m_lock);
                m_state = VmState::Running;
            }
            if (logging && !was_logging) (void)m_vm->set_dirty_logging(false);
            return {};
        });
        log::warn("migration {}: {}; the VM runs on here",
                  phase == MigrationStatus::Phase::Cancelled ? "cancelled" : "failed", why);
        std::lock_guard lock(m_migration_lock);
        m_migration.phase = phase;
        m_migration.message = std::move(why);
        m_migration.total_s = seconds_since(started);
    };
    auto cancelled_or_late = [&] { return migration_stopped(); };
    auto run = [&]() -> Result<void> {
        migration::Hello hello;
        auto began = on_loop([&]() -> Result<void> {
            hello.config = encode_snapshot_config(m_vm->config());
            for (const auto& r : m_vm->memory().regions()) hello.regions.push_back({r.start, r.size});
            RV_TRY_VOID(m_vm->set_dirty_logging(true));
            logging = true;
            (void)RV_TRY(m_vm->take_dirty_pages());  // from here on
            return {};
        });
        if (!began) return began;
        RV_TRY_VOID(migration::send_hello(fd.get(), hello));
        // Iteration 0: all of RAM but its pages of zeros (the destination's
        // fresh RAM is zeros; a page the guest writes meanwhile is in the
        // next round's dirty log).
        std::vector<std::vector<uint64_t>> dirty;
        const GuestMemory& memory = m_vm->memory();
        for (size_t i = 0; i < hello.regions.size(); ++i) {
            const uint64_t pages = hello.regions[i].size / kPage;
            auto& bits = dirty.emplace_back((pages + 63) / 64, 0);
            for (uint64_t p = 0; p < pages; ++p)
                if (!memory.page_is_zero(i, p)) bits[p / 64] |= 1ull << (p % 64);
        }
        double bandwidth = 0;  // bytes per second, as measured
        for (unsigned iteration = 0;; ++iteration) {
            if (auto why = cancelled_or_late()) return make_error("{}", *why);
            const auto t0 = Clock::now();
            uint64_t sent = RV_TRY(send_dirty(fd.get(), dirty));
            double took = std::max(seconds_since(t0), 1e-3);
            if (sent >= (4u << 20)) bandwidth = static_cast<double>(sent) / took;
            dirty = RV_TRY(m_vm->take_dirty_pages());
            const uint64_t remaining = count_pages(dirty) * kPage;
            const double dirty_rate = static_cast<double>(remaining) / took;
            const uint64_t expected_ms =
                bandwidth > 0 ? static_cast<uint64_t>(1000.0 * static_cast<double>(remaining) / bandwidth) : 0;
            {
                std::lock_guard lock(m_migration_lock);
                m_migration.iteration = iteration + 1;
                m_migration.remaining_bytes = remaining;
                m_migration.dirty_rate_mib_s = dirty_rate / (1 << 20);
                m_migration.bandwidth_mib_s = bandwidth / (1 << 20);
                m_migration.expected_downtime_ms = expected_ms;
            }
            log::info("migration: iteration {}: sent {} MiB in {:.2f} s, {} MiB dirty",
                      iteration + 1, sent >> 20, took, remaining >> 20);
            if (expected_ms <= m_migration_params.downtime_ms ||
                iteration + 1 >= m_migration_params.max_iterations)
                break;
        }
        if (auto why = cancelled_or_late()) return make_error("{}", *why);
        // Stop and copy.
        snapshot::SnapshotFile state;
        const auto paused_at = Clock::now();
        auto stopped = on_loop([&]() -> Result<void> {
            RV_TRY_VOID(m_vm->pause());
            log::debug("migration: paused in {:.1f} ms", 1e3 * seconds_since(paused_at));
            paused = true;
            {
                std::lock_guard lock(m_lock);
                m_state = VmState::Paused;
            }
            state = RV_TRY(m_vm->save_state());
            log::debug("migration: state saved at {:.1f} ms", 1e3 * seconds_since(paused_at));
            // What the settled I/O and the last guest writes dirtied.
            auto last = RV_TRY(m_vm->take_dirty_pages());
            for (size_t r = 0; r < dirty.size(); ++r)
                for (size_t w = 0; w < dirty[r].size(); ++w) dirty[r][w] |= last[r][w];
            return {};
        });
        if (!stopped) return stopped;
        const double t_saved = seconds_since(paused_at);
        const uint64_t last_bytes = RV_TRY(send_dirty(fd.get(), dirty));
        const double t_pages = seconds_since(paused_at);
        RV_TRY_VOID(migration::send_blob(fd.get(), migration::Msg::State, state.encode()));
        RV_TRY_VOID(migration::send_blob(fd.get(), migration::Msg::Done, {}));
        const double t_sent = seconds_since(paused_at);
        auto header = RV_TRY(migration::read_header(fd.get()));
        if (header.type != migration::Msg::Ack)
            return make_error("the destination answered frame type {}", static_cast<int>(header.type));
        auto ack_bytes = RV_TRY(migration::read_payload(fd.get(), header, migration::kMaxControlFrame));
        auto ack = RV_TRY(migration::parse_ack(ack_bytes));
        if (!ack.ok) return make_error("the destination could not run the VM: {}", ack.message);
        const uint64_t downtime =
            static_cast<uint64_t>(1000.0 * seconds_since(paused_at));
        {
            std::lock_guard lock(m_migration_lock);
            m_migration.phase = MigrationStatus::Phase::Completed;
            m_migration.downtime_ms = downtime;
            m_migration.total_s = seconds_since(started);
        }
        log::info("migration completed in {:.2f} s, {} ms paused", seconds_since(started), downtime);
        log::info("migration: paused {} ms = pause and save {:.1f} + last {} KiB {:.1f} + state {:.1f} + "
                  "destination {:.1f}",
                  downtime, 1e3 * t_saved, last_bytes >> 10, 1e3 * (t_pages - t_saved),
                  1e3 * (t_sent - t_pages), 1e3 * (seconds_since(paused_at) - t_sent));
        // The guest runs at the destination. This process stays (paused) a
        // moment for whoever started the migration to read how it went
        // (GET /migrate), then ends.
        for (int i = 0; i < 200 && !m_migration_reported.load(); ++i)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        (void)on_loop([&]() -> Result<void> {
            if (m_vm)
                m_vm->request_exit(VmExitReason::Migrated,
                                   fmt::format("the VM migrated to {}", m_migration_params.destination));
            return {};
        });
        return {};
    };
    auto result = run();
    m_migration_sock = -1;
    struct Done {
        std::atomic<bool>& flag;
        ~Done() { flag = true; }
    } done{m_migration_done};
    if (!result) {
        const bool cancelled = m_migration_cancel.load();
        fail(cancelled ? MigrationStatus::Phase::Cancelled : MigrationStatus::Phase::Failed,
             result.error().message());
    }
}

// Why the migration must stop now: cancelled, or past its timeout (which
// counts as a cancel).
std::optional<std::string> Vmm::migration_stopped() {
    if (m_migration_params.timeout_s > 0 &&
        seconds_since(m_migration_started) > m_migration_params.timeout_s) {
        m_migration_cancel = true;
        return fmt::format("timed out after {} s", m_migration_params.timeout_s);
    }
    if (m_migration_cancel.load()) return "cancelled";
    return std::nullopt;
}

MigrationStatus Vmm::migration_status() {
    std::lock_guard lock(m_migration_lock);
    if (m_migration.phase == MigrationStatus::Phase::Completed) m_migration_reported = true;
    return m_migration;
}

Result<void> Vmm::cancel_migration() {
    {
        std::lock_guard lock(m_migration_lock);
        if (m_migration.phase != MigrationStatus::Phase::Active)
            return not_allowed_error("no migration is under way");
    }
    m_migration_cancel = true;
    // A send or the wait for the destination's ack returns at once.
    if (int fd = m_migration_sock.load(); fd >= 0) ::shutdown(fd, SHUT_RDWR);
    return {};
}

void Vmm::join_migration() {
    if (!m_migration_thread.joinable()) return;
    m_migration_cancel = true;
    if (int fd = m_migration_sock.load(); fd >= 0) ::shutdown(fd, SHUT_RDWR);
    // It may be waiting for the loop (on_loop): keep answering until it ends.
    while (!m_migration_done.load()) {
        m_loop->run_posted();
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    m_migration_thread.join();
}

Result<void> Vmm::receive_migration(const std::string& address, const SnapshotOverrides& overrides) {
    auto addr = RV_TRY(migration::parse_address(address));
    auto listener = RV_TRY(as_input_error(migration::listen_on(addr), address));
    log::info("waiting for a migration on {}", address);
    Fd fd = RV_TRY(migration::accept_one(listener));
    auto header = RV_TRY(migration::read_header(fd.get()));
    if (header.type != migration::Msg::Hello) return input_error("migration: no hello from the source");
    auto hello_bytes = RV_TRY(migration::read_payload(fd.get(), header, migration::kMaxControlFrame));
    auto hello = RV_TRY(migration::parse_hello(hello_bytes));
    snapshot::SnapshotFile config_only;
    RV_TRY_VOID(config_only.add("config", kSnapshotConfigVersion, hello.config));
    VmConfig process;
    (void)on_loop([&]() -> Result<void> {
        process = m_config;
        return {};
    });
    auto config = RV_TRY(snapshot_config(config_only, process, overrides, kMaxCpus));
    auto nack = [&](const Error& e) {
        (void)migration::send_ack(fd.get(), false, e.message());
        return std::unexpected(e);
    };
    // The machine is built now, while the source still runs the guest and
    // sends its RAM, so that only the state is left for the pause. Its disks
    // are opened again once the source has stopped (below). A VM that never
    // runs is dropped on the loop, where it was made.
    std::unique_ptr<Vm> vm;
    struct Drop {
        Vmm& vmm;
        std::unique_ptr<Vm>& vm;
        ~Drop() {
            if (vm)
                (void)vmm.on_loop([&]() -> Result<void> {
                    vm.reset();
                    return {};
                });
        }
    } drop{*this, vm};
    auto memory = RV_TRY(Vm::fresh_memory(config, hello.regions));
    auto built = on_loop([&]() -> Result<void> {
        RV_TRY_VOID(pre_boot("an incoming migration"));
        vm = RV_TRY(Vm::prepare_restore(config, std::move(memory), *m_loop, m_options.console,
                                        [this] { on_vm_exit(); }));
        return {};
    });
    if (!built) return nack(built.error());
    const GuestMemory& ram = vm->memory();
    std::vector<uint8_t> state_bytes;
    for (;;) {
        header = RV_TRY(migration::read_header(fd.get()));
        if (header.type == migration::Msg::Pages) {
            (void)RV_TRY(migration::receive_pages(fd.get(), header, ram));
        } else if (header.type == migration::Msg::Zeros) {
            (void)RV_TRY(migration::receive_zeros(fd.get(), header, ram));
        } else if (header.type == migration::Msg::State) {
            state_bytes = RV_TRY(migration::read_payload(fd.get(), header, migration::kMaxControlFrame));
        } else if (header.type == migration::Msg::Done) {
            break;
        } else {
            return nack(Error("migration: an unexpected frame", 0, ErrorKind::InvalidInput));
        }
    }
    const auto done_at = Clock::now();
    auto state = snapshot::SnapshotFile::parse(state_bytes);
    if (!state) return nack(state.error());
    auto launched = on_loop([&]() -> Result<void> {
        RV_TRY_VOID(pre_boot("an incoming migration"));
        // The source has stopped writing to the disks we share.
        RV_TRY_VOID(vm->devices().reopen_disks());
        RV_TRY_VOID(vm->load_state(*state));
        log::debug("migration: state loaded {:.1f} ms after Done", 1e3 * seconds_since(done_at));
        RV_TRY_VOID(launch(config, [&](const VmConfig&) { return std::move(vm); }, true));
        log::debug("migration: launched {:.1f} ms after Done", 1e3 * seconds_since(done_at));
        RV_TRY_VOID(m_vm->resume());
        std::lock_guard lock(m_lock);
        m_state = VmState::Running;
        return {};
    });
    if (!launched) return nack(launched.error());
    RV_TRY_VOID(migration::send_ack(fd.get(), true, "running"));
    log::info("migration received: the VM runs here, {:.1f} ms after the source's Done",
              1e3 * seconds_since(done_at));
    return {};
}

}  // namespace rv
