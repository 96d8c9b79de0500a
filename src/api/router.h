// Method + path -> handler. A route's pattern is literal segments and
// "{name}" parameters ("/drives/{drive_id}"), each parameter one non-empty
// segment. A path no route matches is 404, a path some route matches with
// another method is 405 with an Allow header listing the methods it has;
// both with Firecracker's {"fault_message": ...}.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "api/request.h"

namespace rv::api {

class Router {
  public:
    struct Dispatched {
        ApiResponse response;
        // What the request counts as in ApiStats: "PUT /drives/{drive_id}"
        // (the pattern, never the client's id, so the set of keys is
        // bounded), or "unmatched" for a 404.
        std::string route;
    };

    // One handler per method and pattern; a second add() replaces the first.
    void add(http::verb method, std::string_view pattern, Handler handler);

    // Fills request.params from the matched pattern and runs its handler. A
    // handler that throws (an allocation failure, a bug) answers 500 rather
    // than ending the API thread.
    Dispatched dispatch(ApiRequest request) const;

  private:
    struct Route {
        http::verb method;
        std::string pattern;
        std::vector<std::string> segments;
        Handler handler;
    };

    static std::vector<std::string_view> split(std::string_view path);
    static bool matches(const Route& route, const std::vector<std::string_view>& segments);

    std::vector<Route> m_routes;
};

}  // namespace rv::api
