// The few shapes every handler answers with, as Firecracker does: 200 with a
// JSON body for a GET, 204 No Content for a PUT or PATCH that succeeded, and
// {"fault_message": "..."} with 400 (InvalidInput, NotAllowed) or 500
// (Internal) for an error. And the one way a handler reads its JSON body.
#pragma once

#include <string>
#include <string_view>

#include "api/request.h"
#include "base/error.h"

namespace rv::api {

ApiResponse ok(nlohmann::json body);
ApiResponse no_content();
ApiResponse fault(http::status status, std::string_view message);
// The status an ErrorKind maps to, with the error's message.
ApiResponse fault(const Error& error);
// 204 for success, the error's fault otherwise.
ApiResponse reply(const Result<void>& result);

// The request's body as JSON, for the resources that require one. Refused
// as InvalidInput: a Content-Type other than application/json (text/plain,
// which Firecracker's HTTP library also accepts, and no Content-Type at all
// are taken as JSON too), an empty body, and text that is not JSON.
Result<nlohmann::json> json_body(const ApiRequest& request);

// JSON as sent on the wire. Never throws: a string that is not valid UTF-8
// (a client's id echoed in a fault message) has its bad bytes replaced.
std::string to_wire(const nlohmann::json& value);

}  // namespace rv::api
