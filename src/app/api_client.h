// A small HTTP client for a VMM's API socket (ringvisor top): one request
// per connection, bounded by a timeout so a hung VMM cannot stall the caller.
#pragma once

#include <chrono>
#include <string>

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

}  // namespace rv::app
