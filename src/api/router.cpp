#include "api/router.h"

#include <fmt/format.h>

#include <exception>

#include "api/response.h"
#include "base/log.h"

namespace rv::api {

namespace {

bool is_parameter(std::string_view segment) {
    return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

// "/" is no segments, "/drives/a" is {"drives", "a"}; an empty segment
// ("//", a trailing "/") is kept, so it matches no route.
std::vector<std::string_view> Router::split(std::string_view path) {
    std::vector<std::string_view> segments;
    if (path == "/") return segments;
    if (path.empty() || path.front() != '/') return {std::string_view{}};
    path.remove_prefix(1);
    while (true) {
        auto slash = path.find('/');
        segments.push_back(path.substr(0, slash));
        if (slash == std::string_view::npos) break;
        path.remove_prefix(slash + 1);
    }
    return segments;
}

bool Router::matches(const Route& route, const std::vector<std::string_view>& segments) {
    if (route.segments.size() != segments.size()) return false;
    for (size_t i = 0; i < segments.size(); ++i) {
        if (segments[i].empty()) return false;
        if (!is_parameter(route.segments[i]) && route.segments[i] != segments[i]) return false;
    }
    return true;
}

void Router::add(http::verb method, std::string_view pattern, Handler handler) {
    std::erase_if(m_routes,
                  [&](const Route& r) { return r.method == method && r.pattern == pattern; });
    std::vector<std::string> segments;
    for (auto s : split(pattern)) segments.emplace_back(s);
    m_routes.push_back(
        Route{method, std::string(pattern), std::move(segments), std::move(handler)});
}

Router::Dispatched Router::dispatch(ApiRequest request) const {
    const auto segments = split(request.path);
    const Route* found = nullptr;
    std::string allow;
    const Route* same_path = nullptr;
    for (const auto& route : m_routes) {
        if (!matches(route, segments)) continue;
        same_path = &route;
        if (route.method == request.method) {
            found = &route;
            break;
        }
        allow += fmt::format("{}{}", allow.empty() ? "" : ", ", method_name(route.method));
    }
    if (!same_path)
        return {fault(http::status::not_found, fmt::format("no resource at {}", request.path)),
                "unmatched"};
    const std::string method(method_name(request.method));
    if (!found) {
        auto response = fault(http::status::method_not_allowed,
                              fmt::format("{} is not allowed on {} (allowed: {})", method,
                                          same_path->pattern, allow));
        response.allow = allow;
        return {std::move(response), fmt::format("{} {}", method, same_path->pattern)};
    }

    for (size_t i = 0; i < segments.size(); ++i) {
        const auto& name = found->segments[i];
        if (is_parameter(name))
            request.params[name.substr(1, name.size() - 2)] = std::string(segments[i]);
    }
    std::string route = fmt::format("{} {}", method, found->pattern);
    try {
        return {found->handler(request), std::move(route)};
    } catch (const std::exception& e) {
        log::error("api: {} failed: {}", route, e.what());
        return {
            fault(http::status::internal_server_error, fmt::format("internal error: {}", e.what())),
            std::move(route)};
    }
}

}  // namespace rv::api
