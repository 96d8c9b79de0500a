#include "api/api_stats.h"

namespace rv::api {

nlohmann::json ApiStats::to_json() const {
    nlohmann::json per_route = nlohmann::json::object();
    for (const auto& [route, count] : routes)
        per_route[route] = {{"requests", count.requests}, {"failed", count.failed}};
    return {{"routes", std::move(per_route)},
            {"status_2xx", status_2xx},
            {"status_4xx", status_4xx},
            {"status_5xx", status_5xx},
            {"connections_accepted", connections_accepted},
            {"connections_active", connections_active},
            {"timed_out", timed_out},
            {"malformed", malformed},
            {"too_large", too_large},
            {"accept_errors", accept_errors}};
}

void ApiStatsRecorder::count_status(unsigned status) {
    if (status >= 500)
        ++m_stats.status_5xx;
    else if (status >= 400)
        ++m_stats.status_4xx;
    else if (status >= 200 && status < 300)
        ++m_stats.status_2xx;
}

void ApiStatsRecorder::request(const std::string& route, unsigned status) {
    std::lock_guard lock(m_lock);
    auto& count = m_stats.routes[route];
    ++count.requests;
    if (status >= 400) ++count.failed;
    count_status(status);
}

void ApiStatsRecorder::status(unsigned status) {
    std::lock_guard lock(m_lock);
    count_status(status);
}

void ApiStatsRecorder::accepted() {
    std::lock_guard lock(m_lock);
    ++m_stats.connections_accepted;
    ++m_stats.connections_active;
}

void ApiStatsRecorder::closed() {
    std::lock_guard lock(m_lock);
    --m_stats.connections_active;
}

void ApiStatsRecorder::timed_out() {
    std::lock_guard lock(m_lock);
    ++m_stats.timed_out;
}

void ApiStatsRecorder::malformed() {
    std::lock_guard lock(m_lock);
    ++m_stats.malformed;
}

void ApiStatsRecorder::too_large() {
    std::lock_guard lock(m_lock);
    ++m_stats.too_large;
}

void ApiStatsRecorder::accept_error() {
    std::lock_guard lock(m_lock);
    ++m_stats.accept_errors;
}

ApiStats ApiStatsRecorder::snapshot() const {
    std::lock_guard lock(m_lock);
    return m_stats;
}

}  // namespace rv::api
