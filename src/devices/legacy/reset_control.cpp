#include "devices/legacy/reset_control.h"

#include <algorithm>

namespace rv {

void ResetControl::set_config_ports(std::shared_ptr<BusDevice> ports) {
    std::lock_guard lock(m_lock);
    m_config_ports = std::move(ports);
}

void ResetControl::read(uint64_t offset, std::span<uint8_t> data) {
    std::shared_ptr<BusDevice> ports;
    {
        std::lock_guard lock(m_lock);
        if (offset == kRegisterOffset && data.size() == 1) {
            data[0] = m_value;
            return;
        }
        ports = m_config_ports;
    }
    if (ports)
        ports->read(offset, data);
    else
        std::fill(data.begin(), data.end(), 0xFF);
}

void ResetControl::write(uint64_t offset, std::span<const uint8_t> data) {
    std::shared_ptr<BusDevice> ports;
    bool reset = false;
    {
        std::lock_guard lock(m_lock);
        if (offset == kRegisterOffset && data.size() == 1) {
            // As the PIIX3 does (and QEMU's model of it): RST_CPU resets at
            // once and is not kept; SYS_RST is remembered for the next read.
            reset = data[0] & kRstCpu;
            m_value = data[0] & kSysRst;
        } else {
            ports = m_config_ports;
        }
    }
    if (reset) {
        m_on_reset();
        return;
    }
    if (ports) ports->write(offset, data);
}

}  // namespace rv
