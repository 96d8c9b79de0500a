// What the API served, for metrics: requests per route ("PUT /drives/{drive_id}",
// "unmatched" for unknown paths) with how many failed, responses per status
// class, and what the connections did. Keys are the routes' patterns, never
// what a client sent, so a client cannot grow the map.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

namespace rv::api {

struct ApiStats {
    struct RouteCount {
        uint64_t requests{0};
        uint64_t failed{0};  // answered 4xx or 5xx
        bool operator==(const RouteCount&) const = default;
    };
    std::map<std::string, RouteCount> routes;
    uint64_t status_2xx{0};
    uint64_t status_4xx{0};
    uint64_t status_5xx{0};
    uint64_t connections_accepted{0};
    uint64_t connections_active{0};
    uint64_t timed_out{0};      // connections closed for silence or a slow request
    uint64_t malformed{0};      // requests HTTP could not parse (answered 400)
    uint64_t too_large{0};      // bodies or headers over the limits (413 / 431)
    uint64_t accept_errors{0};  // accept() failures (e.g. out of file descriptors)

    // {"routes": {"GET /": {"requests": n, "failed": n}, ...}, "status_2xx": n, ...}
    nlohmann::json to_json() const;
};

// The server's running counts: updated on the API thread, read from any.
class ApiStatsRecorder {
  public:
    void request(const std::string& route, unsigned status);
    // A response the server sent on its own, outside any route (400 for a
    // malformed request, 413, 431).
    void status(unsigned status);
    void accepted();
    void closed();
    void timed_out();
    void malformed();
    void too_large();
    void accept_error();
    ApiStats snapshot() const;

  private:
    void count_status(unsigned status);  // m_lock held

    mutable std::mutex m_lock;
    ApiStats m_stats;
};

}  // namespace rv::api
