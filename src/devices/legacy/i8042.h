// Intel 8042 keyboard controller, reduced to what a PC guest needs from it
// when no keyboard or mouse is attached: a status register that lets
// Linux's kb_wait() and probe pass, the controller self-tests and command
// byte, and the CPU reset line (command 0xFE, or the output port via 0xD1),
// which is how Linux's "reboot=k" and most firmware reset the machine.
//
// The controller answers on two ports that are not adjacent (0x60 data,
// 0x64 status/command; 0x61 between them belongs to the PIT/speaker), so it
// is inserted on the bus as two one-byte ranges through data_port() and
// command_port().
//
// No interrupt: the controller only produces replies to commands, which
// guests poll for through the status register.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>

#include "bus/bus.h"

namespace rv {

class I8042 final : public std::enable_shared_from_this<I8042> {
  public:
    static constexpr uint64_t kDataPort = 0x60;
    static constexpr uint64_t kCommandPort = 0x64;
    static constexpr uint64_t kPortLength = 1;

    // on_reset runs on the vCPU thread that pulsed the reset line, outside
    // the device lock; the VMM stops the VM (or reboots it) from there.
    static std::shared_ptr<I8042> create(std::function<void()> on_reset);

    // Bus adapters; each keeps the controller alive.
    std::shared_ptr<BusDevice> data_port();     // insert at 0x60, length 1
    std::shared_ptr<BusDevice> command_port();  // insert at 0x64, length 1

    // The four register operations the adapters forward to.
    uint8_t read_data();
    void write_data(uint8_t value);
    uint8_t read_status();
    void write_command(uint8_t command);

  private:
    explicit I8042(std::function<void()> on_reset);

    // A command that takes a parameter byte through the data port.
    enum class Pending : uint8_t { None, CommandByte, OutputPort, KbdOutput, AuxOutput, AuxDevice };

    void put_output(uint8_t value);
    bool handle_command(uint8_t command);  // returns true if the reset line was pulsed

    std::mutex m_mutex;
    std::function<void()> m_on_reset;
    Pending m_pending{Pending::None};
    uint8_t m_command_byte;
    uint8_t m_output_port;
    uint8_t m_output{0};
    bool m_output_full{false};
    bool m_last_write_command{false};
};

}  // namespace rv
