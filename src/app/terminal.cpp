#include "app/terminal.h"

#include <unistd.h>

namespace rv {

RawTerminal::RawTerminal(int fd) : m_fd(fd) {
    termios saved{};
    if (!::isatty(fd) || ::tcgetattr(fd, &saved) != 0) return;
    termios raw = saved;
    ::cfmakeraw(&raw);
    // Keep output post-processing off too: the guest sends its own CR LF.
    if (::tcsetattr(fd, TCSANOW, &raw) == 0) m_saved = saved;
}

RawTerminal::~RawTerminal() {
    if (m_saved) ::tcsetattr(m_fd, TCSANOW, &*m_saved);
}

}  // namespace rv
