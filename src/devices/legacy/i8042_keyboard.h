// The PS/2 keyboard on the i8042's keyboard port: an MF2 keyboard (ID 0xAB
// 0x83) that answers the commands Linux's atkbd sends while probing and
// afterwards (reset, get ID, LEDs, typematic, enable/disable, scancode set,
// echo, resend, defaults) and types key sequences in the scancode set the
// host selected. It speaks the wire protocol only: set 2 after reset, as a
// real keyboard does; the controller translates to set 1 when its command
// byte asks for it.
//
// Not thread-safe: the I8042 that owns it calls it under its own lock.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "base/error.h"
#include "snapshot/state_codec.h"

namespace rv {

class Ps2Keyboard {
  public:
    // What a PS/2 keyboard buffers; past it a real one drops keys. Bounding
    // it also bounds what a guest can pile up by sending commands and never
    // reading the replies.
    static constexpr size_t kBufferSize = 16;

    // A byte from the host: a command, or the parameter of the previous one.
    void receive(uint8_t byte);

    // The next byte the keyboard sends to the controller, if any; the
    // controller asks only when its output buffer is empty and the keyboard
    // interface is enabled.
    std::optional<uint8_t> transmit();

    // Queues the presses of Ctrl, Alt and Delete and then their releases
    // (left Ctrl and Alt; Delete of the editing block), in the current
    // scancode set. The whole sequence or nothing: false, and nothing
    // queued, while scanning is disabled (the host's driver turned it off to
    // probe it, or at shutdown) or when the buffer lacks room for it — half
    // a sequence would leave keys held down in the guest.
    bool press_ctrl_alt_del();

    bool scanning() const { return m_scanning; }

    struct State {
        std::vector<uint8_t> buffer;  // bytes not yet sent, oldest first
        uint8_t param{0};             // Param
        uint8_t set{2};
        bool scanning{true};
        uint8_t last_sent{0xaa};

        void encode(snapshot::Writer& w) const;
        static State decode(snapshot::Reader& r);
        bool operator==(const State&) const = default;
    };
    State save() const;
    Result<void> restore(const State& state);

  private:
    // What the next host byte is, when it is not a new command.
    enum class Param : uint8_t { None, Leds, Typematic, ScancodeSet, KeyList };

    void run_command(uint8_t command);
    void take_param(Param param, uint8_t value);
    void reply(uint8_t byte);
    // Power-on state (set 2) and an empty buffer. LEDs and typematic rate
    // are accepted but not kept: nothing shows them.
    void set_defaults();

    std::deque<uint8_t> m_buffer;
    Param m_param{Param::None};
    uint8_t m_set{2};
    bool m_scanning{true};
    uint8_t m_last_sent{0xaa};  // for the resend command; at power-on, the self-test result
};

}  // namespace rv
