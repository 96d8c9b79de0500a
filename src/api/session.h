// One API connection: reads requests (HTTP/1.1, kept alive as the client
// asks), hands each to the Router, writes the answer. Internal to api/.
// Everything a client can do wrong ends here, on the API thread, as a status
// and a closed connection: a deadline on every request and response
// (basic_stream's timeout), the header and body limits enforced by Beast's
// parser before the bytes are buffered, 400 for anything it cannot parse.
#pragma once

#include <boost/beast/core/basic_stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <memory>
#include <optional>

#include "api/listener.h"

namespace rv::api {

class Session : public std::enable_shared_from_this<Session> {
  public:
    Session(UnixSocket socket, std::shared_ptr<Listener> listener);
    ~Session();
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    void start();

  private:
    using Stream = boost::beast::basic_stream<asio::local::stream_protocol, asio::any_io_executor,
                                              boost::beast::unlimited_rate_policy>;
    using Parser = http::request_parser<http::string_body>;

    void read_request();
    void on_header(boost::beast::error_code ec);
    void read_body();
    void on_read_error(boost::beast::error_code ec);
    void handle_request();
    // Sends `response`; then reads the next request, or closes when
    // `keep_alive` is false.
    void send(const ApiResponse& response, bool keep_alive);
    // An answer of the server's own (400, 413, 431): the request could not
    // be read whole, so the connection closes after it.
    void refuse(const ApiResponse& response);
    void close();

    std::shared_ptr<Listener> m_listener;
    Stream m_stream;
    boost::beast::flat_buffer m_buffer;
    std::optional<Parser> m_parser;  // a fresh one per request: limits and state reset
    http::response<http::empty_body> m_continue;
    http::response<http::string_body> m_response;
};

}  // namespace rv::api
