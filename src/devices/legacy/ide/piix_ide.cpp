#include "devices/legacy/ide/piix_ide.h"

#include <sys/epoll.h>

#include "base/log.h"

namespace rv {

// A range of legacy ports forwarded to the controller. Holds the controller
// weakly: the bus may outlive it.
class PiixIde::PortBlock final : public BusDevice {
  public:
    PortBlock(std::weak_ptr<PiixIde> ide, unsigned channel, bool control)
        : m_ide(std::move(ide)), m_channel(channel), m_control(control) {}
    std::string_view name() const override {
        return m_control ? "ide-control-block" : "ide-command-block";
    }
    void read(uint64_t offset, std::span<uint8_t> data) override {
        if (auto ide = m_ide.lock())
            ide->port_read(m_channel, m_control, offset, data);
        else
            std::fill(data.begin(), data.end(), 0xFF);
    }
    void write(uint64_t offset, std::span<const uint8_t> data) override {
        if (auto ide = m_ide.lock()) ide->port_write(m_channel, m_control, offset, data);
    }

  private:
    std::weak_ptr<PiixIde> m_ide;
    unsigned m_channel;
    bool m_control;
};

Result<std::shared_ptr<PiixIde>> PiixIde::create(const GuestMemory& memory,
                                                 std::array<std::optional<IdeDrive>, 4> drives,
                                                 std::shared_ptr<IrqLine> irq14,
                                                 std::shared_ptr<IrqLine> irq15,
                                                 EventRegistrar& events, NsClock clock_ns) {
    for (unsigned i = 0; i < drives.size(); ++i) {
        if (drives[i] && !drives[i]->backend) return make_error("ide: drive {} has no backend", i);
        if (drives[i] && drives[i]->serial.empty())
            drives[i]->serial = fmt::format("RVIDE{:04}", i);
    }
    std::shared_ptr<PiixIde> ide(new PiixIde(memory, std::move(drives), std::move(irq14),
                                             std::move(irq15), std::move(clock_ns)));
    std::weak_ptr<PiixIde> weak = ide;
    ide->m_self = weak;
    for (unsigned channel = 0; channel < 2; ++channel) {
        ide->m_command_blocks[channel] = std::make_shared<PortBlock>(weak, channel, false);
        ide->m_control_blocks[channel] = std::make_shared<PortBlock>(weak, channel, true);
    }
    ide->m_events = &events;
    for (unsigned drive = 0; drive < 4; ++drive) {
        BlockBackend* backend = ide->m_channels[drive / 2]->backend(drive % 2);
        if (!backend) continue;
        auto added = events.add(backend->completion_fd(), BlockBackend::kCompletionEvents,
                                [weak, drive](uint32_t) {
                                    if (auto self = weak.lock()) self->process_completions(drive);
                                });
        // On failure the destructor removes the fds registered so far.
        if (!added)
            return std::unexpected(added.error().context("ide: registering a completion fd"));
        ide->m_registered_fds.push_back(backend->completion_fd());
    }
    std::lock_guard lock(ide->m_lock);
    for (unsigned channel = 0; channel < 2; ++channel)
        if (ide->m_channels[channel]->limited()) RV_TRY_VOID(ide->attach_limiter_timer(channel));
    return ide;
}

PiixIde::PiixIde(const GuestMemory& memory, std::array<std::optional<IdeDrive>, 4> drives,
                 std::shared_ptr<IrqLine> irq14, std::shared_ptr<IrqLine> irq15, NsClock clock_ns)
    : m_config(PciHeader{.vendor_id = kVendorId,
                         .device_id = kDeviceId,
                         .revision = 0x01,
                         .class_code = 0x01,  // mass storage
                         .subclass = 0x01,    // IDE
                         // Both channels fixed in compatibility mode, bus-master capable.
                         .prog_if = 0x80,
                         .header_type = 0x00,
                         // Legacy IRQs 14/15, not a PCI INTx pin.
                         .interrupt_pin = 0}) {
    std::array<std::shared_ptr<IrqLine>, 2> irqs{std::move(irq14), std::move(irq15)};
    for (unsigned channel = 0; channel < 2; ++channel) {
        std::array<std::optional<ide::AtaDisk>, 2> disks;
        for (unsigned unit = 0; unit < 2; ++unit) {
            auto& drive = drives[channel * 2 + unit];
            if (!drive) continue;
            disks[unit].emplace();
            disks[unit]->backend = std::move(drive->backend);
            disks[unit]->serial = drive->serial.substr(0, 20);
            // Every disk gets the clock, so a limiter set at runtime uses it too.
            disks[unit]->limiter =
                RateLimiter(drive->rate_limiter, clock_ns, std::move(drive->rate_limit_group));
        }
        m_channels[channel] =
            std::make_unique<ide::AtaChannel>(memory, std::move(disks), std::move(irqs[channel]));
    }
    // Cannot fail: BAR 4 is free and 16 is a valid I/O BAR size.
    (void)m_config.add_bar(PciBarInfo{.index = kBmBar, .size = kBmBarSize, .io = true});
    // ata_piix refuses a channel whose decode-enable bit is clear: power on
    // with both channels decoding, as firmware leaves them.
    m_config.set16(kIdeTimPrimary, kIdeTimDecodeEnable);
    m_config.set16(kIdeTimSecondary, kIdeTimDecodeEnable);
    // Timing registers are plain storage: there is no bus to time.
    for (uint16_t reg : {0x40, 0x41, 0x42, 0x43, 0x44, 0x48, 0x4A, 0x4B})
        m_config.set_write_mask8(reg, 0xFF);
}

PiixIde::~PiixIde() {
    for (int fd : m_registered_fds) m_events->remove(fd);
    for (auto& ch : m_channels) ch->detach_limiter_timer();
    // The channels' destructors wait for I/O still in flight.
}

std::shared_ptr<BusDevice> PiixIde::command_block(unsigned channel) {
    return channel < 2 ? m_command_blocks[channel] : nullptr;
}

std::shared_ptr<BusDevice> PiixIde::control_block(unsigned channel) {
    return channel < 2 ? m_control_blocks[channel] : nullptr;
}

bool PiixIde::decodes(unsigned channel) const {
    uint16_t reg = channel == 0 ? kIdeTimPrimary : kIdeTimSecondary;
    return (m_config.read16(reg) & kIdeTimDecodeEnable) != 0;
}

void PiixIde::port_read(unsigned channel, bool control, uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(m_lock);
    if (!decodes(channel) || offset >= (control ? 1u : 8u)) {
        std::fill(data.begin(), data.end(), 0xFF);  // nobody drives the bus
        return;
    }
    ide::AtaChannel& ch = *m_channels[channel];
    if (control) {
        std::fill(data.begin(), data.end(), 0xFF);
        if (!data.empty()) data[0] = ch.has_disks() ? ch.alt_status() : 0;
    } else {
        ch.command_read(static_cast<unsigned>(offset), data);
    }
}

void PiixIde::port_write(unsigned channel, bool control, uint64_t offset,
                         std::span<const uint8_t> data) {
    std::lock_guard lock(m_lock);
    if (!decodes(channel) || data.empty() || offset >= (control ? 1u : 8u)) return;
    ide::AtaChannel& ch = *m_channels[channel];
    if (control)
        ch.control_write(data[0]);
    else
        ch.command_write(static_cast<unsigned>(offset), data);
}

void PiixIde::config_read(uint16_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(m_lock);
    m_config.read(offset, data);
}

void PiixIde::config_write(uint16_t offset, std::span<const uint8_t> data) {
    std::lock_guard lock(m_lock);
    m_config.write(offset, data);
    sync_bus_master();
}

void PiixIde::sync_bus_master() {
    bool enabled = (m_config.command() & kPciCommandBusMaster) != 0;
    for (auto& ch : m_channels) ch->set_bus_master_enabled(enabled);
}

std::vector<PciBarInfo> PiixIde::bars() const {
    std::lock_guard lock(m_lock);
    return m_config.bars();
}

void PiixIde::bar_read(uint8_t index, uint64_t offset, std::span<uint8_t> data) {
    std::lock_guard lock(m_lock);
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t at = offset + i;
        data[i] = 0xFF;
        if (index != kBmBar || at >= kBmBarSize) continue;
        m_channels[at / ide::kBmChannelStride]->bm_read(at % ide::kBmChannelStride,
                                                        std::span(&data[i], 1));
    }
}

void PiixIde::bar_write(uint8_t index, uint64_t offset, std::span<const uint8_t> data) {
    std::lock_guard lock(m_lock);
    for (size_t i = 0; i < data.size(); ++i) {
        uint64_t at = offset + i;
        if (index != kBmBar || at >= kBmBarSize) continue;
        m_channels[at / ide::kBmChannelStride]->bm_write(at % ide::kBmChannelStride,
                                                         std::span(&data[i], 1));
    }
}

void PiixIde::process_completions(unsigned drive) {
    std::lock_guard lock(m_lock);
    if (drive < 4) m_channels[drive / 2]->process_completions(drive % 2);
}

Result<void> PiixIde::attach_limiter_timer(unsigned channel) {
    auto on_expiry = [weak = m_self, channel] {
        if (auto self = weak.lock()) self->on_limiter_timer(channel);
    };
    return with_context(m_channels[channel]->attach_limiter_timer(*m_events, on_expiry),
                        "ide: rate limiter timer");
}

void PiixIde::on_limiter_timer(unsigned channel) {
    std::lock_guard lock(m_lock);
    m_channels[channel]->on_limiter_timer();
}

Result<void> PiixIde::set_rate_limiter(unsigned drive, std::optional<RateLimiterConfig> config) {
    std::lock_guard lock(m_lock);
    if (drive >= 4 || !m_channels[drive / 2]->backend(drive % 2))
        return input_error("ide: no drive {}", drive);
    // The timer first: limits without a way to wait for tokens would strand
    // the commands they refuse.
    if (config && !config->unlimited()) RV_TRY_VOID(attach_limiter_timer(drive / 2));
    m_channels[drive / 2]->set_rate_limiter(drive % 2, config);
    return {};
}

int PiixIde::limiter_timer_fd(unsigned channel) const {
    std::lock_guard lock(m_lock);
    return channel < 2 ? m_channels[channel]->limiter_timer_fd() : -1;
}

DeviceCounters PiixIde::drive_counters_locked(unsigned drive) const {
    const ide::AtaChannel& ch = *m_channels[drive / 2];
    const unsigned unit = drive % 2;
    if (!ch.backend(unit)) return {};
    const ide::AtaIoCounters io = ch.io_counters(unit);
    // "requests" as virtio-blk names its chains: every command, failed ones too.
    return {{"requests", io.commands},       {"reads", io.reads},
            {"writes", io.writes},           {"read_bytes", io.read_bytes},
            {"write_bytes", io.write_bytes}, {"throttled", ch.throttled(unit)}};
}

DeviceCounters PiixIde::drive_counters(unsigned drive) const {
    if (drive >= 4) return {};
    std::lock_guard lock(m_lock);
    return drive_counters_locked(drive);
}

DeviceCounters PiixIde::counters() const {
    std::lock_guard lock(m_lock);
    DeviceCounters out;
    uint64_t total = 0;
    for (unsigned drive = 0; drive < 4; ++drive) {
        for (const auto& [name, value] : drive_counters_locked(drive)) {
            if (name == "throttled") total += value;
            out.emplace_back(fmt::format("drive{}_{}", drive, name), value);
        }
    }
    out.emplace_back("throttled", total);
    for (unsigned channel = 0; channel < 2; ++channel)
        out.emplace_back(fmt::format("channel{}_rate_limited", channel),
                         m_channels[channel]->rate_limited());
    return out;
}

bool PiixIde::idle() const {
    std::lock_guard lock(m_lock);
    return m_channels[0]->idle() && m_channels[1]->idle();
}

Result<void> PiixIde::reopen_disks() {
    std::lock_guard lock(m_lock);
    for (const auto& channel : m_channels)
        for (unsigned unit = 0; unit < 2; ++unit)
            if (BlockBackend* backend = channel->backend(unit)) RV_TRY_VOID(backend->reopen());
    return {};
}

}  // namespace rv
