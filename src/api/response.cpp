#include "api/response.h"

#include <algorithm>
#include <cctype>

namespace rv::api {

namespace {

std::string_view trim(std::string_view text) {
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
    return text;
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
    return std::ranges::equal(a, b, [](char x, char y) {
        return std::tolower(static_cast<unsigned char>(x)) ==
               std::tolower(static_cast<unsigned char>(y));
    });
}

// The media type without parameters: "application/json; charset=utf-8" is JSON.
bool is_json_media_type(std::string_view content_type) {
    auto media = trim(content_type.substr(0, content_type.find(';')));
    return equal_ignoring_case(media, "application/json") ||
           equal_ignoring_case(media, "text/plain");
}

}  // namespace

ApiResponse ok(nlohmann::json body) {
    return ApiResponse{.status = http::status::ok, .body = std::move(body), .allow = {}};
}

ApiResponse no_content() {
    return ApiResponse{.status = http::status::no_content, .body = {}, .allow = {}};
}

ApiResponse fault(http::status status, std::string_view message) {
    return ApiResponse{.status = status,
                       .body = nlohmann::json{{"fault_message", std::string(message)}},
                       .allow = {}};
}

ApiResponse fault(const Error& error) {
    switch (error.kind()) {
        case ErrorKind::InvalidInput:
        case ErrorKind::NotAllowed:
            return fault(http::status::bad_request, error.message());
        case ErrorKind::Internal:
            break;
    }
    return fault(http::status::internal_server_error, error.message());
}

ApiResponse reply(const Result<void>& result) {
    return result ? no_content() : fault(result.error());
}

Result<nlohmann::json> json_body(const ApiRequest& request) {
    if (request.content_type && !is_json_media_type(*request.content_type))
        return input_error("unsupported Content-Type '{}': the body must be application/json",
                           *request.content_type);
    if (trim(request.body).empty()) return input_error("the request needs a JSON body");
    auto body = nlohmann::json::parse(request.body, nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) return input_error("the body is not valid JSON");
    return body;
}

std::string to_wire(const nlohmann::json& value) {
    return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace rv::api
