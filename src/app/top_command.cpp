#include "app/top_command.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>

#include "app/api_client.h"
#include "app/top_terminal.h"

namespace rv::app {

namespace {

using Clock = std::chrono::steady_clock;

std::string clock_now() {
    std::time_t t = std::time(nullptr);
    std::tm local{};
    ::localtime_r(&t, &local);
    char buf[16];
    std::strftime(buf, sizeof buf, "%H:%M:%S", &local);
    return buf;
}

// Why a socket gave no sample.
void count_skip(top::Skipped& skipped, const Result<HttpReply>& reply) {
    if (!reply) {
        switch (reply.error().os_errno()) {
            case ECONNREFUSED:
            case ENOENT:
                ++skipped.stale;
                return;
            case ETIMEDOUT:
                ++skipped.not_answering;
                return;
            case EACCES:
            case EPERM:
                ++skipped.no_permission;
                return;
            default:
                ++skipped.bad_reply;
                return;
        }
    }
    // The API answers 400 with "accounting: not started" until InstanceStart.
    if (reply->status == 400)
        ++skipped.not_started;
    else
        ++skipped.bad_reply;
}

}  // namespace

std::vector<std::string> find_sockets(const std::string& dir,
                                      const std::vector<std::string>& extra) {
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

TopSnapshot sample_vms(const std::vector<std::string>& sockets,
                       const std::map<std::string, top::Sample>& previous,
                       std::chrono::milliseconds timeout) {
    TopSnapshot snap;
    std::vector<std::string> from;  // each row's socket
    auto replies = http_get_unix_all(sockets, "/accounting", timeout);
    for (size_t i = 0; i < sockets.size(); ++i) {
        const auto& reply = replies[i];
        if (!reply || reply->status != 200) {
            count_skip(snap.skipped, reply);
            continue;
        }
        auto sample =
            top::parse_sample(nlohmann::json::parse(reply->body, nullptr, false), sockets[i]);
        if (!sample) {
            ++snap.skipped.bad_reply;
            continue;
        }
        auto it = previous.find(sockets[i]);
        snap.rows.push_back(top::rates(
            it == previous.end() ? std::nullopt : std::optional<top::Sample>(it->second), *sample));
        snap.samples.emplace(sockets[i], std::move(*sample));
        from.push_back(sockets[i]);
    }
    // VMs started with the same --id: tell them apart by their sockets.
    std::map<std::string, size_t> uses;
    for (const auto& r : snap.rows) ++uses[r.name];
    for (size_t i = 0; i < snap.rows.size(); ++i)
        if (uses[snap.rows[i].name] > 1)
            snap.rows[i].name +=
                fmt::format(" ({})", std::filesystem::path(from[i]).filename().string());
    return snap;
}

int run_top(const TopOptions& options) {
    auto key = top::parse_sort_key(options.sort);
    if (!key) {
        std::fprintf(
            stderr, "ringvisor: error: --sort %s: one of cpu, steal, disk, net, exits, rss, name\n",
            options.sort.c_str());
        return 2;
    }
    if (!(options.interval_s >= 0.1 && options.interval_s <= 86400)) {
        std::fprintf(stderr, "ringvisor: error: --interval: 0.1 to 86400 seconds\n");
        return 2;
    }
    std::error_code ec;
    if (options.sockets.empty() && !std::filesystem::is_directory(options.run_dir, ec)) {
        std::fprintf(stderr,
                     "ringvisor: error: run directory %s does not exist (start VMs with "
                     "--api-sock %s/NAME.sock, or name their sockets)\n",
                     options.run_dir.c_str(), options.run_dir.c_str());
        return 2;
    }
    const bool interactive = !options.batch && ::isatty(STDOUT_FILENO);
    TopTerminal terminal(interactive);
    const auto interval = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(options.interval_s));
    // A VMM answers from its event loop; one that takes longer than this is
    // shown as not answering rather than holding up every other VM.
    const auto timeout =
        options.timeout_s > 0
            ? std::chrono::milliseconds(static_cast<int64_t>(options.timeout_s * 1000))
            : std::clamp(std::chrono::duration_cast<std::chrono::milliseconds>(interval / 2),
                         std::chrono::milliseconds(250), std::chrono::milliseconds(1000));

    TopSnapshot snap;
    auto show = [&] {
        auto rows = snap.rows;
        top::sort_rows(rows, *key);
        top::View view{.key = *key, .skipped = snap.skipped, .clock = clock_now()};
        if (!interactive) {
            std::fputs((top::format_table(rows, view) + "\n").c_str(), stdout);
            std::fflush(stdout);
            return;
        }
        std::string keys = "keys: c cpu, s steal, d disk, n net, e exits, r rss, N name, q quit";
        if (auto size = terminal.size()) {
            view.width = size->columns;
            view.height = std::max(1u, size->lines - 1);  // the keys' line
            keys.resize(std::min<size_t>(keys.size(), size->columns));
        }
        terminal.draw(top::format_table(rows, view) + keys);
    };

    // Rates need two samples: take one now (the interactive view shows it at
    // once, without rates) and the next soon, then one per interval.
    auto next = Clock::now() + std::min<Clock::duration>(interval, std::chrono::seconds(1));
    snap = sample_vms(find_sockets(options.run_dir, options.sockets), {}, timeout);
    if (interactive) show();
    for (unsigned printed = 0;;) {
        auto input = terminal.wait(next);
        if (input.event == TopTerminal::Event::Stop) break;
        if (input.event == TopTerminal::Event::Key) {
            if (input.key == 'q' || input.key == 'Q') break;
            if (auto k = top::sort_key_for(input.key)) key = k;
            show();  // the same sample, sorted anew: rates need a full interval
            continue;
        }
        if (input.event == TopTerminal::Event::Resize) {
            show();
            continue;
        }
        next = Clock::now() + interval;
        snap = sample_vms(find_sockets(options.run_dir, options.sockets), snap.samples, timeout);
        show();
        if (options.iterations && ++printed >= options.iterations) break;
    }
    return 0;
}

}  // namespace rv::app
