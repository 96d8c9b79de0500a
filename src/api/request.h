// What a handler sees and returns: one HTTP request reduced to what the API
// needs (method, path, its parameters, the body and its type) and a response
// that the server turns into HTTP. Handlers never see Beast's messages, so
// they are tested as plain functions.
#pragma once

#include <boost/beast/http/status.hpp>
#include <boost/beast/http/verb.hpp>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace rv::api {

namespace http = boost::beast::http;

struct ApiRequest {
    http::verb method{http::verb::get};
    std::string path;  // the target without its query string
    std::string body;
    std::optional<std::string> content_type;    // absent when the client sent none
    std::map<std::string, std::string> params;  // path parameters, filled by the Router

    // A path parameter the route declares ("drive_id" for /drives/{drive_id});
    // empty when the route has none by that name.
    std::string_view param(const std::string& name) const {
        auto it = params.find(name);
        return it == params.end() ? std::string_view{} : std::string_view{it->second};
    }
};

struct ApiResponse {
    http::status status{http::status::ok};
    std::optional<nlohmann::json> body;  // sent as application/json
    std::string allow;                   // the Allow header of a 405
};

using Handler = std::function<ApiResponse(const ApiRequest&)>;

// Beast 1.74's strings are boost::string_view.
inline std::string_view to_std(boost::beast::string_view text) {
    return {text.data(), text.size()};
}
inline std::string_view method_name(http::verb method) {
    return to_std(http::to_string(method));
}

}  // namespace rv::api
