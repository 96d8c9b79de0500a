#include "app/top_terminal.h"

#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>

namespace rv::app {

namespace {

std::atomic<bool> g_stop{false}, g_resized{false}, g_suspend{false};

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGTSTP};

void on_signal(int sig) {
    if (sig == SIGWINCH)
        g_resized = true;
    else if (sig == SIGTSTP)
        g_suspend = true;
    else
        g_stop = true;
}

void write_out(std::string_view s) {
    std::fwrite(s.data(), 1, s.size(), stdout);
    std::fflush(stdout);
}

}  // namespace

TopTerminal::TopTerminal(bool interactive) : m_interactive(interactive) {
    g_stop = g_resized = g_suspend = false;
    struct sigaction sa {};
    sa.sa_handler = on_signal;  // no SA_RESTART: poll() returns at once
    ::sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < std::size(kSignals); ++i) {
        // Ctrl-Z and resizes only matter to the interactive view.
        if (!interactive && (kSignals[i] == SIGWINCH || kSignals[i] == SIGTSTP)) continue;
        ::sigaction(kSignals[i], &sa, &m_old[i]);
    }
    if (interactive) enter_raw();
}

TopTerminal::~TopTerminal() {
    if (m_interactive) leave_raw();
    for (size_t i = 0; i < std::size(kSignals); ++i) {
        if (!m_interactive && (kSignals[i] == SIGWINCH || kSignals[i] == SIGTSTP)) continue;
        ::sigaction(kSignals[i], &m_old[i], nullptr);
    }
}

void TopTerminal::enter_raw() {
    termios saved{};
    if (::isatty(STDIN_FILENO) && ::tcgetattr(STDIN_FILENO, &saved) == 0) {
        termios raw = saved;
        raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        if (::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0) m_saved = saved;
    }
    write_out("\x1b[?25l");  // hide the cursor
}

void TopTerminal::leave_raw() {
    write_out("\x1b[?25h\n");  // the cursor back, below the table
    if (m_saved) ::tcsetattr(STDIN_FILENO, TCSANOW, &*m_saved);
    m_saved.reset();
}

// Ctrl-Z: the shell gets its terminal back as it was; on `fg` we take it again.
void TopTerminal::suspend() {
    leave_raw();
    ::raise(SIGSTOP);
    enter_raw();
}

TopTerminal::Input TopTerminal::wait(std::chrono::steady_clock::time_point deadline) {
    for (;;) {
        if (g_stop) return {Event::Stop};
        if (g_suspend.exchange(false)) {
            suspend();
            g_resized = true;  // redraw what the shell wrote over
        }
        if (g_resized.exchange(false)) return {Event::Resize};
        auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline -
                                                                 std::chrono::steady_clock::now());
        if (left.count() <= 0) return {Event::Timeout};
        pollfd p{STDIN_FILENO, POLLIN, 0};
        const bool keys = m_saved.has_value();
        int n = ::poll(keys ? &p : nullptr, keys ? 1 : 0, static_cast<int>(left.count()));
        if (n <= 0 || !keys) continue;  // timeout, or a signal: looked at above
        char buf[16];
        ssize_t got = ::read(STDIN_FILENO, buf, sizeof buf);
        if (got <= 0) {  // stdin closed: no more keys, keep refreshing
            ::tcsetattr(STDIN_FILENO, TCSANOW, &*m_saved);
            m_saved.reset();
            continue;
        }
        // A lone key; escape sequences (arrows, function keys) are ignored.
        if (got == 1 && buf[0] != '\x1b') return {Event::Key, buf[0]};
    }
}

std::optional<TopTerminal::Size> TopTerminal::size() const {
    winsize ws{};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0 || ws.ws_row == 0)
        return std::nullopt;
    return Size{ws.ws_col, ws.ws_row};
}

void TopTerminal::draw(const std::string& text) {
    // Home, each line over the old one (erased to its end), then erase below:
    // no blank flash between frames, which shows over a slow SSH link.
    std::string out = "\x1b[H";
    for (char c : text) {
        if (c == '\n') out += "\x1b[K";
        out += c;
    }
    out += "\x1b[K\x1b[J";
    write_out(out);
}

}  // namespace rv::app
