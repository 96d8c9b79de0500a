// The terminal side of `ringvisor top`: signals for both modes (SIGINT,
// SIGTERM and SIGHUP end it cleanly) and, for the interactive view, keys
// read from stdin without echo or line buffering, the cursor hidden, a
// redraw on SIGWINCH and Ctrl-Z that gives the shell its terminal back.
// Only ANSI escapes (cursor home, erase line, erase below), so it works on
// any terminal and over SSH; ncurses would add a dependency for four escapes.
#pragma once

#include <signal.h>
#include <termios.h>

#include <chrono>
#include <optional>
#include <string>

namespace rv::app {

class TopTerminal {
  public:
    // Installs the signal handlers; `interactive`: also hides the cursor and,
    // where stdin is a terminal, reads keys from it (ISIG stays on: Ctrl-C is
    // still SIGINT).
    explicit TopTerminal(bool interactive);
    // Restores the terminal's mode, the cursor and the previous handlers.
    ~TopTerminal();
    TopTerminal(const TopTerminal&) = delete;
    TopTerminal& operator=(const TopTerminal&) = delete;

    enum class Event { Timeout, Key, Resize, Stop };
    struct Input {
        Event event{Event::Timeout};
        char key{0};
    };
    // Waits until `deadline` for a key, a resize (or a return from Ctrl-Z)
    // or a stop signal.
    Input wait(std::chrono::steady_clock::time_point deadline);

    // stdout's size; nullopt when it is not a terminal.
    struct Size {
        unsigned columns, lines;
    };
    std::optional<Size> size() const;

    // Replaces the screen with `text` (lines; the last one without a
    // newline, so the screen does not scroll).
    void draw(const std::string& text);

  private:
    void enter_raw();
    void leave_raw();
    void suspend();

    bool m_interactive;
    std::optional<termios> m_saved;  // stdin's mode while ours is in force
    struct sigaction m_old[5]{};
};

}  // namespace rv::app
