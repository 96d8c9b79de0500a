// The REST API's server: Firecracker's API, HTTP/1.1 over a Unix socket,
// served on a thread of its own (one asio io_context, asynchronous accepts
// and reads). Every request is answered on that thread, by the Router's
// handlers calling VmmApi (which runs the request on the VMM's event loop
// and waits for it). A client can only ever cost the server a connection
// slot for `request_timeout`: reads and writes have deadlines, bodies and
// headers have limits checked before they are read, and malformed HTTP gets
// 400 and a closed connection.
//
// Embedding (the VMM's `serve` path):
//   auto server = RV_TRY(api::ApiServer::start(socket_path, vmm));
//   vmm.set_api_metrics([&s = *server] { return s.stats().to_json(); });
//   ... vmm.run() ...
//   server.reset();  // before the VmmApi it calls goes away
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include "api/api_stats.h"
#include "api/router.h"
#include "base/error.h"
#include "vmm/vmm_api.h"

namespace rv::api {

struct ApiServerOptions {
    // Firecracker's default --http-api-max-payload-size: a larger body is
    // refused with 413 as soon as its Content-Length is read (or, chunked,
    // as soon as it passes the limit), without reading it.
    size_t body_limit{51200};
    size_t header_limit{8192};  // request line + headers; more is 431
    // For one request from its first byte (or from the end of the previous
    // response, on a kept-alive connection) to its last, and for writing a
    // response: past it the connection is closed. Bounds what a silent or
    // slow client holds.
    std::chrono::milliseconds request_timeout{std::chrono::seconds(10)};
    // Open connections; past it, new ones wait in the listen backlog until
    // one closes (so a flood of idle clients is bounded, and cannot exhaust
    // the VMM's file descriptors).
    size_t max_connections{512};
};

class ApiServer {
  public:
    // Serves Firecracker's API (api/handlers/handlers.h) on `vmm`, which
    // must outlive the server. Removes a stale socket file first; a path
    // that exists and is not a socket is refused (InvalidInput).
    static Result<std::unique_ptr<ApiServer>> start(const std::string& socket_path, VmmApi& vmm,
                                                    const ApiServerOptions& options = {});
    // Serves the given routes (the HTTP layer's tests use made-up ones).
    static Result<std::unique_ptr<ApiServer>> start(const std::string& socket_path, Router router,
                                                    const ApiServerOptions& options = {});
    // Stops serving (open connections are closed) and removes the socket file.
    ~ApiServer();
    ApiServer(const ApiServer&) = delete;
    ApiServer& operator=(const ApiServer&) = delete;

    const std::string& socket_path() const;
    ApiStats stats() const;  // any thread

    struct Impl;

  private:
    explicit ApiServer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> m_impl;
};

}  // namespace rv::api
