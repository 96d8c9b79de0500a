#include "app/top_command.h"

#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>

#include "app/api_client.h"
#include "app/top.h"

namespace rv::app {

namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

// Raw keys on stdin for the interactive view; restores the terminal on exit.
class RawTerminal {
  public:
    RawTerminal() {
        if (::tcgetattr(STDIN_FILENO, &m_saved) != 0) return;
        termios raw = m_saved;
        raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        m_active = ::tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
        std::fputs("\x1b[?25l", stdout);  // hide the cursor
    }
    ~RawTerminal() {
        std::fputs("\x1b[?25h\n", stdout);
        std::fflush(stdout);
        if (m_active) ::tcsetattr(STDIN_FILENO, TCSANOW, &m_saved);
    }
    RawTerminal(const RawTerminal&) = delete;
    RawTerminal& operator=(const RawTerminal&) = delete;

  private:
    termios m_saved{};
    bool m_active{false};
};

unsigned terminal_width() {
    winsize ws{};
    if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    return 200;  // batch output: wide enough for every column
}

std::string clock_now() {
    std::time_t t = std::time(nullptr);
    char buf[32];
    std::strftime(buf, sizeof buf, "%H:%M:%S", std::localtime(&t));
    return buf;
}

// Waits up to `seconds` for a key (interactive) or just sleeps; returns the key or 0.
char wait_for_key(double seconds, bool keys) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!g_stop) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return 0;
        pollfd p{STDIN_FILENO, POLLIN, 0};
        int n = ::poll(keys ? &p : nullptr, keys ? 1 : 0, static_cast<int>(left.count()));
        if (n > 0 && keys) {
            char c = 0;
            if (::read(STDIN_FILENO, &c, 1) == 1) return c;
            keys = false;  // stdin closed: stop listening for keys
        }
    }
    return 0;
}

}  // namespace

std::vector<std::string> find_sockets(const std::string& dir, const std::vector<std::string>& extra) {
    std::vector<std::string> out;
    std::error_code ec;
    if (!dir.empty())
        for (const auto& entry : std::filesystem::directory_iterator(dir, ec))
            if (entry.is_socket(ec)) out.push_back(entry.path().string());
    std::sort(out.begin(), out.end());
    for (const auto& s : extra)
        if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(s);
    return out;
}

int run_top(const TopOptions& options) {
    auto key = top::parse_sort_key(options.sort);
    if (!key) {
        std::fprintf(stderr, "ringvisor: error: --sort %s: one of cpu, steal, disk, net, exits, rss, name\n",
                     options.sort.c_str());
        return 2;
    }
    if (!(options.interval_s >= 0.1)) {
        std::fprintf(stderr, "ringvisor: error: --interval: at least 0.1 s\n");
        return 2;
    }
    std::error_code ec;
    if (!options.run_dir.empty() && !std::filesystem::is_directory(options.run_dir, ec) &&
        options.sockets.empty()) {
        std::fprintf(stderr,
                     "ringvisor: error: run directory %s does not exist (start VMs with "
                     "--api-sock %s/NAME.sock, or name sockets)\n",
                     options.run_dir.c_str(), options.run_dir.c_str());
        return 2;
    }
    const bool interactive = !options.batch && ::isatty(STDOUT_FILENO) && ::isatty(STDIN_FILENO);
    struct sigaction sa{};
    sa.sa_handler = on_signal;
    ::sigaction(SIGINT, &sa, nullptr);
    ::sigaction(SIGTERM, &sa, nullptr);
    std::optional<RawTerminal> raw;
    if (interactive) raw.emplace();

    constexpr auto kTimeout = std::chrono::milliseconds(1500);
    std::map<std::string, top::Sample> previous;
    // The first table needs two samples: take one, wait a short moment.
    bool first = true;
    for (unsigned printed = 0; !g_stop;) {
        std::vector<top::Row> rows;
        std::map<std::string, top::Sample> current;
        size_t unreachable = 0;
        for (const auto& socket : find_sockets(options.run_dir, options.sockets)) {
            auto reply = http_get_unix(socket, "/accounting", kTimeout);
            if (!reply || reply->status != 200) {
                ++unreachable;  // stale socket, VM not started yet, or hung
                continue;
            }
            auto json = nlohmann::json::parse(reply->body, nullptr, false);
            auto sample = top::parse_sample(json, socket);
            if (!sample) {
                ++unreachable;
                continue;
            }
            auto it = previous.find(socket);
            rows.push_back(top::rates(it == previous.end() ? std::nullopt
                                                           : std::optional<top::Sample>(it->second),
                                      *sample));
            current.emplace(socket, std::move(*sample));
        }
        previous = std::move(current);
        if (first) {
            first = false;
            wait_for_key(std::min(options.interval_s, 1.0), false);
            continue;
        }
        top::sort_rows(rows, *key);
        std::string table = top::format_table(rows, *key, interactive ? terminal_width() : 200,
                                              unreachable, clock_now());
        if (interactive)
            std::fputs("\x1b[H\x1b[2J", stdout);  // home, clear
        std::fputs(table.c_str(), stdout);
        if (interactive) std::fputs("keys: c s d n e m N sort, q quit", stdout);
        else std::fputs("\n", stdout);
        std::fflush(stdout);
        if (options.iterations && ++printed >= options.iterations) break;
        char c = wait_for_key(options.interval_s, interactive);
        if (c == 'q') break;
        if (auto k = top::sort_key_for(c)) key = k;
    }
    return 0;
}

}  // namespace rv::app
