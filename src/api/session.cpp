#include "api/session.h"

#include <fmt/format.h>

#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "api/response.h"

namespace rv::api {

namespace beast = boost::beast;

namespace {

bool is_http_parse_error(const beast::error_code& ec) {
    return ec.category() == beast::http::make_error_code(http::error::bad_method).category();
}

}  // namespace

Session::Session(UnixSocket socket, std::shared_ptr<Listener> listener)
    : m_listener(std::move(listener)), m_stream(std::move(socket)) {}

Session::~Session() {
    m_listener->session_ended();
}

void Session::start() {
    read_request();
}

void Session::read_request() {
    const auto& options = m_listener->options();
    m_parser.emplace();
    m_parser->header_limit(static_cast<std::uint32_t>(options.header_limit));
    m_parser->body_limit(options.body_limit);
    // One deadline for the whole request, header and body: a client
    // trickling bytes cannot keep extending it.
    m_stream.expires_after(options.request_timeout);
    http::async_read_header(
        m_stream, m_buffer, *m_parser,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
}

void Session::on_header(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    const auto& request = m_parser->get();
    // curl asks before sending a larger body; the limit was already checked
    // against Content-Length when the header was parsed.
    if (!m_parser->is_done() && beast::iequals(request[http::field::expect], "100-continue")) {
        m_continue = {};
        m_continue.version(request.version());
        m_continue.result(http::status::continue_);
        http::async_write(m_stream, m_continue,
                          [self = shared_from_this()](beast::error_code write_ec, size_t) {
                              if (write_ec) return self->close();
                              self->read_body();
                          });
        return;
    }
    read_body();
}

void Session::read_body() {
    if (m_parser->is_done()) return handle_request();
    http::async_read(m_stream, m_buffer, *m_parser,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                         if (ec) return self->on_read_error(ec);
                         self->handle_request();
                     });
}

void Session::on_read_error(beast::error_code ec) {
    auto& stats = m_listener->stats();
    if (ec == beast::error::timeout) {
        // basic_stream has closed the socket: nothing can be sent.
        stats.timed_out();
        return close();
    }
    if (ec == http::error::body_limit) {
        stats.too_large();
        return refuse(fault(http::status::payload_too_large,
                            fmt::format("the request body is larger than the limit of {} bytes",
                                        m_listener->options().body_limit)));
    }
    if (ec == http::error::header_limit) {
        stats.too_large();
        return refuse(fault(http::status::request_header_fields_too_large,
                            fmt::format("the request header is larger than the limit of {} bytes",
                                        m_listener->options().header_limit)));
    }
    // end_of_stream: closed between requests. partial_message: closed in
    // the middle of one. Neither has anyone left to answer.
    if (is_http_parse_error(ec) && ec != http::error::end_of_stream &&
        ec != http::error::partial_message) {
        stats.malformed();
        return refuse(fault(http::status::bad_request,
                            fmt::format("malformed HTTP request: {}", ec.message())));
    }
    close();
}

void Session::handle_request() {
    auto& message = m_parser->get();
    ApiRequest request;
    request.method = message.method();
    std::string_view target = to_std(message.target());
    request.path = std::string(target.substr(0, target.find('?')));
    if (auto it = message.find(http::field::content_type); it != message.end())
        request.content_type = std::string(to_std(it->value()));
    request.body = std::move(message.body());
    auto dispatched = m_listener->router().dispatch(std::move(request));
    m_listener->stats().request(dispatched.route,
                                static_cast<unsigned>(dispatched.response.status));
    send(dispatched.response, message.keep_alive());
}

void Session::refuse(const ApiResponse& response) {
    // Outside any route: counted by status class only.
    m_listener->stats().status(static_cast<unsigned>(response.status));
    send(response, false);
}

void Session::send(const ApiResponse& response, bool keep_alive) {
    m_response = {};
    m_response.version(m_parser->is_header_done() ? m_parser->get().version() : 11);
    if (m_response.version() < 10 || m_response.version() > 11) m_response.version(11);
    m_response.result(response.status);
    m_response.set(http::field::server, "ringvisor");
    if (response.body) {
        m_response.set(http::field::content_type, "application/json");
        m_response.body() = to_wire(*response.body);
    }
    if (!response.allow.empty()) m_response.set(http::field::allow, response.allow);
    m_response.keep_alive(keep_alive);
    m_response.prepare_payload();
    // A HEAD answer announces its length but carries no body; one sent
    // anyway would be read as the start of the next response.
    if (m_parser->is_header_done() && m_parser->get().method() == http::verb::head)
        m_response.body().clear();
    m_stream.expires_after(m_listener->options().request_timeout);
    http::async_write(m_stream, m_response,
                      [self = shared_from_this(), keep_alive](beast::error_code ec, size_t) {
                          if (ec || !keep_alive) return self->close();
                          self->read_request();
                      });
}

void Session::close() {
    beast::error_code ignored;
    m_stream.socket().shutdown(asio::local::stream_protocol::socket::shutdown_both, ignored);
    m_stream.close();
}

}  // namespace rv::api
