#include "app/snapshot_command.h"

#include <chrono>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "app/api_client.h"

namespace rv::app {

namespace {

using namespace std::chrono_literals;

int fail(const std::string& message, int status) {
    std::fprintf(stderr, "ringvisor: error: %s\n", message.c_str());
    return status;
}

}  // namespace

int snapshot_vm(const SnapshotOptions& options) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::create_directories(options.dir, ec);
    if (ec) return fail(fmt::format("snapshot directory {}: {}", options.dir, ec.message()), 2);
    const std::string dir = fs::absolute(options.dir).string();

    auto info = http_get_unix(options.api_sock, "/", 5s);
    if (!info) return fail(info.error().message(), 1);
    auto doc = nlohmann::json::parse(info->body, nullptr, false);
    if (info->status != 200 || !doc.is_object() || !doc.contains("state"))
        return fail(fmt::format("{}: not a ringvisor API (GET / gave {})", options.api_sock,
                                info->status),
                    1);
    const std::string state = doc["state"].is_string() ? doc["state"].get<std::string>() : "";
    if (state != "Running" && state != "Paused")
        return fail(fmt::format("the VM is {}: nothing to snapshot", state), 2);
    const bool was_running = state == "Running";
    if (was_running)
        if (auto r = api_command(options.api_sock, "PATCH", "/vm", R"({"state": "Paused"})", 30s); !r)
            return fail(r.error().message(), 1);
    auto started = std::chrono::steady_clock::now();
    const nlohmann::json body{{"snapshot_type", options.diff ? "Diff" : "Full"},
                              {"snapshot_path", dir + "/" + kSnapshotStateFile},
                              {"mem_file_path", dir + "/" + kSnapshotMemoryFile}};
    auto made = api_command(options.api_sock, "PUT", "/snapshot/create", body.dump(), 600s);
    auto took = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (was_running && !options.keep_paused)
        if (auto r = api_command(options.api_sock, "PATCH", "/vm", R"({"state": "Resumed"})", 30s); !r)
            std::fprintf(stderr, "ringvisor: warning: the VM stays paused: %s\n",
                         r.error().message().c_str());
    if (!made) return fail(made.error().message(), made.error().is_input() ? 2 : 1);
    std::printf("snapshot in %s (%.2f s)\n", dir.c_str(), took);
    return 0;
}

}  // namespace rv::app
