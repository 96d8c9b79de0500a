#include "app/migrate_command.h"

#include <chrono>
#include <cstdio>
#include <thread>

#include <nlohmann/json.hpp>

#include "app/api_client.h"

namespace rv::app {

using namespace std::chrono_literals;

int migrate_vm(const MigrateOptions& options) {
    const nlohmann::json body{{"destination", options.to},
                              {"downtime_ms", options.downtime_ms},
                              {"bandwidth_mib_s", options.bandwidth_mib_s},
                              {"timeout_s", options.timeout_s}};
    if (auto r = api_command(options.api_sock, "PUT", "/migrate", body.dump(), 30s); !r) {
        std::fprintf(stderr, "ringvisor: error: %s\n", r.error().message().c_str());
        return r.error().is_input() ? 2 : 1;
    }
    unsigned last_iteration = 0;
    for (;;) {
        std::this_thread::sleep_for(200ms);
        auto reply = http_get_unix(options.api_sock, "/migrate", 10s);
        // The source exits once the destination runs the VM: a socket that
        // went away right after Completed was reported is success too.
        if (!reply) {
            std::fprintf(stderr, "ringvisor: error: the source VMM went away: %s\n",
                         reply.error().message().c_str());
            return 1;
        }
        auto s = nlohmann::json::parse(reply->body, nullptr, false);
        if (!s.is_object() || !s.contains("state")) {
            std::fprintf(stderr, "ringvisor: error: GET /migrate: %s\n", reply->body.c_str());
            return 1;
        }
        const std::string state = s["state"].get<std::string>();
        const unsigned iteration = s.value("iteration", 0u);
        if (iteration != last_iteration) {
            last_iteration = iteration;
            std::printf("iteration %u: %.1f MiB sent, %.1f MiB dirty, %.0f MiB/s, dirty %.1f MiB/s, "
                        "expected downtime %llu ms\n",
                        iteration, s.value("bytes_sent", 0.0) / (1 << 20),
                        s.value("remaining_bytes", 0.0) / (1 << 20), s.value("bandwidth_mib_s", 0.0),
                        s.value("dirty_rate_mib_s", 0.0),
                        static_cast<unsigned long long>(s.value("expected_downtime_ms", 0ull)));
            std::fflush(stdout);
        }
        if (state == "Active") continue;
        if (state == "Completed") {
            std::printf("migrated to %s in %.2f s, %llu ms paused\n", options.to.c_str(),
                        s.value("total_s", 0.0),
                        static_cast<unsigned long long>(s.value("downtime_ms", 0ull)));
            return 0;
        }
        std::fprintf(stderr, "ringvisor: migration %s: %s; the VM runs on at the source\n",
                     state == "Cancelled" ? "cancelled" : "failed",
                     s.value("message", std::string("?")).c_str());
        return 1;
    }
}

}  // namespace rv::app
