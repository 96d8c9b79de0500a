// A small HTTP client for VMM API sockets (ringvisor top): one request per
// connection, bounded by a timeout so a hung VMM cannot stall the caller.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace rv::app {

struct HttpReply {
    unsigned status{0};
    std::string body;
};

// GET `target` from the HTTP server on the Unix socket `socket_path`.
// Errors carry the errno: ECONNREFUSED or ENOENT when nothing listens (a
// stale socket file), ETIMEDOUT past `timeout`; a reply that is not HTTP is
// InvalidInput.
Result<HttpReply> http_get_unix(const std::string& socket_path, const std::string& target,
                                std::chrono::milliseconds timeout);

// One request with a JSON body ("PUT", "PATCH") on a fresh connection.
Result<HttpReply> http_send_unix(const std::string& socket_path, std::string_view method,
                                 const std::string& target, std::string body,
                                 std::chrono::milliseconds timeout);

// A command to a VMM API: a JSON body, success 204 (or 200); otherwise the
// API's fault_message as the error (InvalidInput for a 400).
Result<void> api_command(const std::string& socket_path, std::string_view method,
                         const std::string& target, const std::string& json_body,
                         std::chrono::milliseconds timeout);

// The same GET from every socket at once (at most `max_in_flight` open
// connections), each with its own `timeout`: however many VMMs hang, the
// whole takes about one timeout per `max_in_flight` sockets. One result per
// socket, in order.
std::vector<Result<HttpReply>> http_get_unix_all(const std::vector<std::string>& socket_paths,
                                                 const std::string& target,
                                                 std::chrono::milliseconds timeout,
                                                 size_t max_in_flight = 64);

}  // namespace rv::app
