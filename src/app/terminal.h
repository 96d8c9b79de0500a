// Puts a terminal into raw mode for an interactive guest console and
// restores it on destruction (also on the error paths).
#pragma once

#include <termios.h>

#include <optional>

namespace rv {

class RawTerminal {
public:
    // Does nothing if fd is not a terminal.
    explicit RawTerminal(int fd);
    ~RawTerminal();
    RawTerminal(const RawTerminal&) = delete;
    RawTerminal& operator=(const RawTerminal&) = delete;

    bool active() const { return m_saved.has_value(); }

private:
    int m_fd;
    std::optional<termios> m_saved;
};

}  // namespace rv
