// The server's accept loop and what its connections share (routes, limits,
// counts). Internal to api/: sessions keep it alive by shared_ptr, and all
// of it but the stats is touched on the API thread only.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <string>

#include "api/api_stats.h"
#include "api/router.h"
#include "api/server.h"
#include "base/error.h"
#include "base/log.h"

namespace rv::api {

namespace asio = boost::asio;
using UnixSocket = asio::local::stream_protocol::socket;

class Listener : public std::enable_shared_from_this<Listener> {
  public:
    Listener(asio::io_context& io, Router router, ApiServerOptions options);

    // Binds and listens on `path` (which the caller has made free). Before
    // the io_context runs.
    Result<void> open(const std::string& path);
    void start_accepting();
    // No more accepts; sessions that end from now on start none. Called with
    // the io_context stopped.
    void stop();

    const Router& router() const { return m_router; }
    const ApiServerOptions& options() const { return m_options; }
    ApiStatsRecorder& stats() { return m_stats; }
    // A session's destructor: frees its slot, resuming accepts that the
    // connection limit paused.
    void session_ended();

  private:
    void accept();
    void on_accept(const boost::system::error_code& ec, UnixSocket socket);

    asio::local::stream_protocol::acceptor m_acceptor;
    asio::steady_timer m_retry;  // after a failed accept (out of file descriptors)
    Router m_router;
    ApiServerOptions m_options;
    ApiStatsRecorder m_stats;
    log::RateLimit m_accept_errors;
    size_t m_active{0};
    bool m_accepting{false};  // an async_accept is pending (or a retry is armed)
    bool m_stopped{false};
};

}  // namespace rv::api
