#include "vmm/device_manager.h"
#include "vmm/device_manager_entry.h"

#include "arch/x86_64/layout.h"
#include "arch/x86_64/acpi.h"
#include "backends/net/tap.h"
#include "base/log.h"
#include "devices/legacy/acpi_pm.h"
#include "devices/legacy/cmos_rtc.h"
#include "devices/legacy/e1000/e1000.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/ide/piix_ide.h"
#include "devices/legacy/reset_control.h"
#include "devices/legacy/uart16550.h"
#include "devices/rate_limit_group_file.h"
#include "devices/virtio/blk/blk_device.h"
#include "devices/virtio/console/console_device.h"
#include "devices/virtio/net/virtio_net.h"
#include "devices/virtio/pci_transport.h"
#include "devices/virtio/rng/rng_device.h"
#include "vmm/net_taps.h"

namespace rv {

// The config checks the same range the device clamps to.
static_assert(DiskConfig::kMaxQueues == virtio::VirtioBlk::kMaxQueues);

namespace {

BlockOptions block_options(const DiskConfig& disk) {
    return BlockOptions{
        .read_only = disk.read_only,
        .cache = disk.cache == DiskConfig::Cache::None ? BlockOptions::Cache::None
                                                       : BlockOptions::Cache::Writeback,
        .engine = disk.engine,
        .ignore_flush = disk.cache == DiskConfig::Cache::Unsafe};
}

Result<std::unique_ptr<BlockBackend>> open_disk(const DiskConfig& disk, const std::string& path) {
    return as_input_error(BlockBackend::open(path, block_options(disk)),
                          fmt::format("drive '{}' ({})", disk.id, path));
}

// An empty limiter config ({} in the API) means unlimited.
std::optional<RateLimiterConfig> limits(const RateLimiterConfig& config) {
    if (config.unlimited()) return std::nullopt;
    return config;
}

}  // namespace

Result<std::unique_ptr<DeviceManager>> DeviceManager::create(const VmConfig& config,
                                                             DeviceContext context) {
    std::unique_ptr<DeviceManager> dm(new DeviceManager(std::move(context)));
    RV_TRY_VOID(dm->add_legacy(config));
    // The PCI root always exists (the DSDT describes it): a guest without
    // PCI devices sees a host bridge alone.
    dm->m_pci = PciRoot::create(dm->m_ctx.mmio, dm->m_ctx.pio,
                                [irq = dm->m_ctx.irq](unsigned gsi) { return irq(gsi); });
    static_assert(kPciConfigAddressPort == ResetControl::kBase &&
                  kPciConfigPortCount == ResetControl::kLength);
    dm->m_reset_control->set_config_ports(dm->m_pci);
    dm->m_pci->set_bar_observer(dm->m_ctx.bar_observer);
    RV_TRY_VOID(dm->add_disks(config));
    RV_TRY_VOID(dm->add_nets(config));
    if (config.console == ConsoleKind::Virtio) {
        auto console = std::make_shared<virtio::VirtioConsole>(dm->m_ctx.console_output);
        dm->m_console_input =
            ConsoleInput{[console](std::span<const uint8_t> b) { console->enqueue_input(b); },
                         [console] { return console->input_capacity(); },
                         [console](std::function<void()> f) {
                             console->set_input_space_callback(std::move(f));
                         }};
        auto entry = std::make_unique<Entry>();
        entry->id = entry->kind = "virtio-console";
        entry->transport = RV_TRY(virtio::VirtioPciTransport::create(
            console, dm->m_ctx.memory, dm->m_ctx.msi, dm->m_ctx.loop.devices()));
        RV_TRY_VOID(dm->add_pci(std::move(entry)));
    }
    if (config.entropy) {
        auto entry = std::make_unique<Entry>();
        entry->id = entry->kind = "virtio-rng";
        entry->transport = RV_TRY(virtio::VirtioPciTransport::create(
            std::make_shared<virtio::VirtioRng>(virtio::VirtioRng::EntropySource{}, config.entropy->rate_limiter),
            dm->m_ctx.memory, dm->m_ctx.msi,
            dm->m_ctx.loop.devices()));
        RV_TRY_VOID(dm->add_pci(std::move(entry)));
    }
    RV_TRY_VOID(dm->m_pci->allocate_bars(PciWindows{}));
    return dm;
}

DeviceManager::DeviceManager(DeviceContext context) : m_ctx(std::move(context)) {}

DeviceManager::~DeviceManager() { reset_all(); }

void DeviceManager::reset_all() {
    for (auto& e : m_entries)
        if (e->transport) e->transport->device().reset();
}

Result<void> DeviceManager::add_legacy(const VmConfig& config) {
    auto& ctx = m_ctx;
    m_uart = std::make_shared<Uart16550>(ctx.irq(Uart16550::kCom1Irq), ctx.console_output);
    RV_TRY_VOID(ctx.pio.insert(m_uart, PioAddress(Uart16550::kCom1Base), Uart16550::kRegisterCount));
    if (config.console == ConsoleKind::Serial) {
        m_console_input =
            ConsoleInput{[uart = m_uart](std::span<const uint8_t> b) { uart->enqueue_input(b); },
                         [uart = m_uart] { return uart->input_capacity(); },
                         [uart = m_uart](std::function<void()> f) {
                             uart->set_input_space_callback(std::move(f));
                         }};
    }

    m_i8042 = I8042::create(ctx.irq(I8042::kKeyboardIrq), [&control = ctx.control] {
        control.request_exit(VmExitReason::Reset, "guest reset through the i8042 controller");
    });
    RV_TRY_VOID(ctx.pio.insert(m_i8042->data_port(), PioAddress(I8042::kDataPort), 1));
    RV_TRY_VOID(ctx.pio.insert(m_i8042->command_port(), PioAddress(I8042::kCommandPort), 1));

    // Port 0xCF9, in front of the PCI configuration ports around it.
    m_reset_control = std::make_shared<ResetControl>([&control = ctx.control] {
        control.request_exit(VmExitReason::Reset, "guest reset through port 0xCF9");
    });
    RV_TRY_VOID(
        ctx.pio.insert(m_reset_control, PioAddress(ResetControl::kBase), ResetControl::kLength));

    auto rtc = std::make_shared<CmosRtc>(CmosRtc::system_clock);
    uint64_t below = 0, above = 0;
    for (const auto& r : ctx.memory.regions()) (r.start.value < x86::k4GiB ? below : above) += r.size;
    rtc->set_memory_size(below, above);
    RV_TRY_VOID(ctx.pio.insert(rtc, PioAddress(CmosRtc::kBase), CmosRtc::kLength));
    m_legacy.push_back(rtc);

    auto pm = std::make_shared<AcpiPmDevice>(
        [&control = ctx.control] {
            control.request_exit(VmExitReason::PowerOff, "guest powered off (ACPI S5)");
        },
        ctx.irq(x86::kSciIrq));
    RV_TRY_VOID(ctx.pio.insert(pm, PioAddress(x86::kPm1aEvtBlk), AcpiPmDevice::kLength));
    m_legacy.push_back(pm);
    return {};
}

Result<DeviceManager::Entry*> DeviceManager::add_pci(std::unique_ptr<Entry> entry) {
    if (!entry->pci) entry->pci = entry->transport;
    RV_TRY_VOID(m_pci->add_device(entry->pci));
    m_entries.push_back(std::move(entry));
    return m_entries.back().get();
}

// The rate limit group a drive draws from (none if it names none): joined
// once per VM, on the first drive that names it; the devices keep it (and
// so the VM's membership) alive.
Result<std::shared_ptr<RateLimitGroup>> DeviceManager::rate_limit_group(const VmConfig& config,
                                                                        const DiskConfig& disk) {
    if (!disk.rate_limit_group) return nullptr;
    if (auto it = m_groups.find(*disk.rate_limit_group); it != m_groups.end()) return it->second;
    const RateLimitGroupConfig* group = config.find_rate_limit_group(*disk.rate_limit_group);
    if (!group)
        return input_error("drive '{}': no rate limit group '{}'", disk.id, *disk.rate_limit_group);
    auto joined = RV_TRY(with_context(
        join_rate_limit_group(rate_limit_group_dir(config.run_dir), *group),
        fmt::format("drive '{}'", disk.id)));
    m_groups.emplace(group->id, joined);
    return joined;
}

Result<void> DeviceManager::add_disks(const VmConfig& config) {
    std::array<std::optional<IdeDrive>, 4> ide_drives;
    std::vector<std::string> ide_ids;
    for (const auto& disk : config.disks) {
        auto backend = RV_TRY(open_disk(disk, disk.path));
        auto group = RV_TRY(rate_limit_group(config, disk));
        if (disk.iface == DiskConfig::Interface::Ide) {
            if (ide_ids.size() == ide_drives.size())
                return input_error("drive '{}': the IDE controller has room for {} disks", disk.id,
                                   ide_drives.size());
            ide_drives[ide_ids.size()] =
                IdeDrive{std::move(backend), disk.serial, disk.rate_limiter, std::move(group)};
            ide_ids.push_back(disk.id);
            continue;
        }
        auto entry = std::make_unique<Entry>();
        entry->id = disk.id;
        entry->kind = "virtio-blk";
        entry->blk =
            std::make_shared<virtio::VirtioBlk>(
                std::move(backend), disk.serial, static_cast<uint16_t>(disk.queue_count(config.cpus)),
                disk.rate_limiter, NsClock{}, std::move(group));
        entry->transport = RV_TRY(virtio::VirtioPciTransport::create(
            entry->blk, m_ctx.memory, m_ctx.msi, m_ctx.loop.devices()));
        RV_TRY_VOID(add_pci(std::move(entry)));
    }
    if (ide_ids.empty()) return {};
    // The PIIX IDE function sits on the PCI bus but, in compatibility mode,
    // decodes the legacy ISA ports and raises ISA IRQs 14 and 15.
    auto entry = std::make_unique<Entry>();
    // Its id has a dash, which no drive id can have (vm_config: valid_id).
    entry->id = "ide-controller";
    entry->kind = "ide";
    entry->ide = RV_TRY(PiixIde::create(m_ctx.memory, std::move(ide_drives), m_ctx.irq(14),
                                        m_ctx.irq(15), m_ctx.loop.devices()));
    entry->ide_drive_ids = ide_ids;
    entry->pci = entry->ide;
    auto* ide = entry->ide.get();
    RV_TRY_VOID(add_pci(std::move(entry)));
    const uint16_t command[] = {PiixIde::kPrimaryCommandBase, PiixIde::kSecondaryCommandBase};
    const uint16_t control[] = {PiixIde::kPrimaryControlPort, PiixIde::kSecondaryControlPort};
    for (unsigned ch = 0; ch < 2; ++ch) {
        RV_TRY_VOID(m_ctx.pio.insert(ide->command_block(ch), PioAddress(command[ch]), 8));
        RV_TRY_VOID(m_ctx.pio.insert(ide->control_block(ch), PioAddress(control[ch]), 1));
    }
    return {};
}

Result<void> DeviceManager::add_nets(const VmConfig& config) {
    static_assert(NetConfig::kMaxQueues == virtio::VirtioNet::kMaxQueuePairs);
    for (const auto& net : config.nets) {
        const std::string what = fmt::format("network interface '{}' (tap {})", net.id, net.tap);
        const auto mac = net.mac.value_or(std::array<uint8_t, 6>{});  // resolved by the config
        auto entry = std::make_unique<Entry>();
        entry->id = net.id;
        if (net.model == NetConfig::Model::E1000) {
            auto tap = RV_TRY(as_input_error(Tap::open(net.tap), what));
            entry->kind = "e1000";
            E1000Config e1000{.mac = mac,
                              .flush_posted = m_ctx.flush_posted_writes,
                              .rx_rate_limiter = net.rx_rate_limiter,
                              .tx_rate_limiter = net.tx_rate_limiter};
            entry->e1000 = RV_TRY(E1000::create(m_ctx.memory, std::move(tap), e1000, m_ctx.loop.devices()));
            entry->pci = entry->e1000;
        } else {
            // One tap queue per queue pair (a plain single-queue tap for 1);
            // validate() refused queues > 1 for the e1000.
            auto backends = RV_TRY(open_virtio_net_taps(net, config.cpus));
            entry->kind = "virtio-net";
            virtio::VirtioNetConfig net_config{.mac = mac,
                                               .rx_rate_limiter = net.rx_rate_limiter,
                                               .tx_rate_limiter = net.tx_rate_limiter};
            entry->net = RV_TRY(virtio::VirtioNet::create(std::move(backends), net_config));
            // The transport gives each of the 2N + 1 queues an MSI-X vector
            // of its own, plus one for config changes (kPciMaxVectors: 256).
            entry->transport = RV_TRY(virtio::VirtioPciTransport::create(
                entry->net, m_ctx.memory, m_ctx.msi, m_ctx.loop.devices()));
        }
        RV_TRY_VOID(add_pci(std::move(entry)));
    }
    return {};
}

DeviceManager::Entry* DeviceManager::find(std::string_view id) {
    for (auto& e : m_entries)
        if (e->id == id) return e.get();
    return nullptr;
}

Result<void> DeviceManager::send_ctrl_alt_del() { return m_i8042->send_ctrl_alt_del(); }

Result<void> DeviceManager::update_drive(const DriveUpdate& update) {
    for (auto& e : m_entries) {
        if (!e->ide) continue;
        for (unsigned i = 0; i < e->ide_drive_ids.size(); ++i) {
            if (e->ide_drive_ids[i] != update.id) continue;
            if (update.path_on_host)
                return not_allowed_error(
                    "drive '{}' is an IDE disk: an ATA disk has no removable medium", update.id);
            if (update.rate_limiter)
                RV_TRY_VOID(e->ide->set_rate_limiter(i, limits(*update.rate_limiter)));
            return {};
        }
    }
    Entry* e = find(update.id);
    if (!e || !e->blk) return input_error("no drive '{}'", update.id);
    if (update.rate_limiter) RV_TRY_VOID(e->blk->set_rate_limiter(limits(*update.rate_limiter)));
    if (update.path_on_host) {
        auto backend = RV_TRY(as_input_error(
            BlockBackend::open(*update.path_on_host, e->blk->backend_options()),
            fmt::format("drive '{}' ({})", update.id, *update.path_on_host)));
        RV_TRY_VOID(e->blk->replace_backend(std::move(backend)));
    }
    return {};
}

Result<void> DeviceManager::reopen_disks() {
    for (auto& e : m_entries) {
        if (e->blk) RV_TRY_VOID(with_context(e->blk->reopen_backend(), e->id));
        if (e->ide) RV_TRY_VOID(with_context(e->ide->reopen_disks(), e->id));
    }
    return {};
}

void DeviceManager::resumed_elsewhere() {
    for (auto& e : m_entries)
        if (e->transport) e->transport->device().on_resumed_elsewhere();
}

Result<void> DeviceManager::update_net(const NetUpdate& update) {
    Entry* e = find(update.id);
    if (!e || (!e->net && !e->e1000)) return input_error("no network interface '{}'", update.id);
    if (update.rx_rate_limiter) {
        auto l = limits(*update.rx_rate_limiter);
        RV_TRY_VOID(e->net ? e->net->set_rx_rate_limiter(l) : e->e1000->set_rx_rate_limiter(l));
    }
    if (update.tx_rate_limiter) {
        auto l = limits(*update.tx_rate_limiter);
        RV_TRY_VOID(e->net ? e->net->set_tx_rate_limiter(l) : e->e1000->set_tx_rate_limiter(l));
    }
    return {};
}

std::vector<DeviceInfo> DeviceManager::devices() const {
    std::vector<DeviceInfo> out;
    for (const auto& e : m_entries) {
        out.push_back(DeviceInfo{e->id, e->kind, e->pci->counters()});
        // The controller carries up to four drives; each is billed under its own id.
        if (e->ide)
            for (unsigned i = 0; i < e->ide_drive_ids.size(); ++i)
                out.push_back(
                    DeviceInfo{e->ide_drive_ids[i], "ide-disk", e->ide->drive_counters(i)});
    }
    return out;
}

}  // namespace rv
