// Intel 8042 keyboard controller with a PS/2 keyboard on its keyboard port
// (no mouse: the AUX port reports nothing attached). Enough for Linux's
// i8042 and atkbd drivers to find and probe the keyboard, so that the VMM
// can type Ctrl-Alt-Del into the guest (Firecracker's SendCtrlAltDel), and
// the CPU reset line (command 0xFE, or the output port via 0xD1), which is
// how Linux's "reboot=k" and most firmware reset the machine.
//
// One output buffer, read at port 0x60, fed from two sources: the
// controller's own replies (command byte, self-tests, 0xD2/0xD3 writes),
// which go first, and the keyboard's bytes, taken one at a time when the
// buffer is empty and the keyboard interface is enabled, and translated to
// scancode set 1 when the command byte's XLATE bit is set (as the BIOS
// leaves it and Linux keeps it: "AT Translated Set 2 keyboard").
//
// IRQ 1 follows "output buffer full and keyboard interrupt enabled", as on
// a PC: the line drops when the guest reads the byte and rises again when
// the next one is loaded, so an edge-triggered input sees one edge per byte.
//
// The controller answers on two ports that are not adjacent (0x60 data,
// 0x64 status/command; 0x61 between them belongs to the PIT/speaker), so it
// is inserted on the bus as two one-byte ranges through data_port() and
// command_port().
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include "base/error.h"
#include "bus/bus.h"
#include "devices/interrupt.h"
#include "devices/legacy/i8042_keyboard.h"

namespace rv {

class I8042 final : public std::enable_shared_from_this<I8042> {
  public:
    static constexpr uint64_t kDataPort = 0x60;
    static constexpr uint64_t kCommandPort = 0x64;
    static constexpr uint64_t kPortLength = 1;
    static constexpr unsigned kKeyboardIrq = 1;

    // keyboard_irq: ISA IRQ 1 (may be null: the guest then has to poll).
    // on_reset runs on the vCPU thread that pulsed the reset line, outside
    // the device lock; the VMM stops the VM (or reboots it) from there.
    static std::shared_ptr<I8042> create(std::shared_ptr<IrqLine> keyboard_irq,
                                         std::function<void()> on_reset);

    // Bus adapters; each keeps the controller alive.
    std::shared_ptr<BusDevice> data_port();     // insert at 0x60, length 1
    std::shared_ptr<BusDevice> command_port();  // insert at 0x64, length 1

    // The four register operations the adapters forward to.
    uint8_t read_data();
    void write_data(uint8_t value);
    uint8_t read_status();
    void write_command(uint8_t command);

    // Types Ctrl-Alt-Del: presses and releases, in the scancode set the
    // guest reads, delivered a byte at a time as the guest reads them.
    // Thread-safe (the VMM calls it from its event loop). Types nothing and
    // fails (ErrorKind::NotAllowed) when the keyboard cannot take the whole
    // sequence: the guest's driver has disabled it (while probing it, or at
    // shutdown) or has not read the keys typed before. Keys typed before the
    // guest has a driver wait in the keyboard, and Linux's i8042 driver
    // flushes them when it starts, as on a PC.
    Result<void> send_ctrl_alt_del();

    struct State {
        static constexpr uint32_t kVersion = 1;
        Ps2Keyboard::State keyboard;
        uint8_t pending{0};  // a command waiting for its parameter byte
        uint8_t command_byte{0};
        uint8_t output_port{0};
        uint8_t output{0};
        bool output_full{false};
        std::optional<uint8_t> reply;
        bool translate_break{false};
        bool last_write_command{false};

        void encode(snapshot::Writer& w) const;
        static State decode(snapshot::Reader& r);
        bool operator==(const State&) const = default;
    };
    State save();
    // Drives IRQ 1 to match; refuses values no controller could hold.
    Result<void> restore(const State& state);

  private:
    I8042(std::shared_ptr<IrqLine> keyboard_irq, std::function<void()> on_reset);

    // A command that takes a parameter byte through the data port.
    enum class Pending : uint8_t { None, CommandByte, OutputPort, KbdOutput, AuxOutput, AuxDevice };

    bool handle_command(uint8_t command);  // returns true if the reset line was pulsed
    // A controller reply: into the output buffer, or next in line for it.
    void put_reply(uint8_t value);
    // Fills an empty output buffer (pending reply first, then the keyboard)
    // and sets IRQ 1 to match. Called after every change to either.
    void update();
    std::optional<uint8_t> next_keyboard_byte();
    void set_irq(bool level);

    std::mutex m_mutex;
    std::shared_ptr<IrqLine> m_irq;
    std::function<void()> m_on_reset;
    Ps2Keyboard m_keyboard;
    Pending m_pending{Pending::None};
    uint8_t m_command_byte;
    uint8_t m_output_port;
    uint8_t m_output{0};
    bool m_output_full{false};
    // A reply made while the buffer held a byte the guest had not read yet.
    std::optional<uint8_t> m_reply;
    // Translation swallows the set-2 break prefix 0xF0 and sets bit 7 of
    // the code after it.
    bool m_translate_break{false};
    bool m_last_write_command{false};
    bool m_irq_level{false};
};

}  // namespace rv
