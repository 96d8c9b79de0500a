#include "app/api_client.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <functional>
#include <memory>

namespace rv::app {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Local = asio::local::stream_protocol;

// What went wrong, as the errno a caller can act on (see api_client.h).
Error classify(const std::string& path, beast::error_code failed, const char* stage,
               std::chrono::milliseconds timeout) {
    if (failed == beast::error::timeout)
        return Error(fmt::format("{}: no reply within {} ms ({})", path, timeout.count(), stage),
                     ETIMEDOUT);
    const bool system = failed.category() == boost::system::system_category();
    if (failed == asio::error::connection_refused || (system && failed.value() == ENOENT))
        return Error(fmt::format("{}: nothing listens ({})", path, failed.message()),
                     failed == asio::error::connection_refused ? ECONNREFUSED : ENOENT);
    if (failed.category() == http::make_error_code(http::error::bad_version).category())
        return Error(fmt::format("{}: not an HTTP reply: {}", path, failed.message()), 0,
                     ErrorKind::InvalidInput);
    return Error(fmt::format("{}: {} failed: {}", path, stage, failed.message()),
                 system ? failed.value() : 0);
}

// One GET on one connection: connect, write, read, under one deadline.
class Exchange {
  public:
    Exchange(asio::io_context& io, std::string path, const std::string& target,
             std::chrono::milliseconds timeout, http::verb verb = http::verb::get,
             std::string body = {})
        : m_stream(io),
          m_path(std::move(path)),
          m_timeout(timeout),
          m_request(verb, target, 11) {
        m_request.set(http::field::host, "localhost");
        if (verb != http::verb::get) {
            m_request.set(http::field::content_type, "application/json");
            m_request.body() = std::move(body);
            m_request.prepare_payload();
        }
        m_request.keep_alive(false);
        m_parser.body_limit(16 << 20);
    }

    // Calls `done` once, with the reply or the error, on the io_context's thread.
    void start(std::function<void(Result<HttpReply>)> done) {
        m_done = std::move(done);
        m_stream.expires_after(m_timeout);
        m_stream.async_connect(Local::endpoint(m_path), [this](beast::error_code ec) {
            if (ec) return finish(ec);
            m_stage = "send";
            http::async_write(m_stream, m_request, [this](beast::error_code wec, size_t) {
                if (wec) return finish(wec);
                m_stage = "read";
                http::async_read(m_stream, m_buffer, m_parser,
                                 [this](beast::error_code rec, size_t) { finish(rec); });
            });
        });
    }

  private:
    void finish(beast::error_code ec) {
        m_stream.close();  // the fd goes now, not when every exchange is over
        if (ec) return m_done(std::unexpected(classify(m_path, ec, m_stage, m_timeout)));
        auto response = m_parser.release();
        m_done(HttpReply{response.result_int(), std::move(response.body())});
    }

    beast::basic_stream<Local> m_stream;
    std::string m_path;
    std::chrono::milliseconds m_timeout;
    http::request<http::string_body> m_request;
    beast::flat_buffer m_buffer;
    http::response_parser<http::string_body> m_parser;
    const char* m_stage{"connect"};
    std::function<void(Result<HttpReply>)> m_done;
};

}  // namespace

std::vector<Result<HttpReply>> http_get_unix_all(const std::vector<std::string>& socket_paths,
                                                 const std::string& target,
                                                 std::chrono::milliseconds timeout,
                                                 size_t max_in_flight) {
    asio::io_context io;
    std::vector<Result<HttpReply>> results(socket_paths.size());
    // Kept until io.run() returns: an exchange is never destroyed inside its own handler.
    std::vector<std::unique_ptr<Exchange>> exchanges(socket_paths.size());
    size_t next = 0;
    std::function<void()> launch = [&] {
        if (next >= socket_paths.size()) return;
        const size_t i = next++;
        exchanges[i] = std::make_unique<Exchange>(io, socket_paths[i], target, timeout);
        exchanges[i]->start([&, i](Result<HttpReply> r) {
            results[i] = std::move(r);
            asio::post(io, launch);  // a slot is free
        });
    };
    for (size_t n = 0; n < std::max<size_t>(max_in_flight, 1); ++n) launch();
    io.run();
    return results;
}

Result<HttpReply> http_get_unix(const std::string& socket_path, const std::string& target,
                                std::chrono::milliseconds timeout) {
    return std::move(http_get_unix_all({socket_path}, target, timeout).front());
}

Result<HttpReply> http_send_unix(const std::string& socket_path, std::string_view method,
                                 const std::string& target, std::string body,
                                 std::chrono::milliseconds timeout) {
    http::verb verb = http::string_to_verb(beast::string_view(method.data(), method.size()));
    if (verb == http::verb::unknown) return make_error("unknown HTTP method {}", method);
    asio::io_context io;
    Result<HttpReply> result = make_error("no reply");
    Exchange exchange(io, socket_path, target, timeout, verb, std::move(body));
    exchange.start([&](Result<HttpReply> r) { result = std::move(r); });
    io.run();
    return result;
}

Result<void> api_command(const std::string& socket_path, std::string_view method,
                         const std::string& target, const std::string& json_body,
                         std::chrono::milliseconds timeout) {
    auto reply = RV_TRY(http_send_unix(socket_path, method, target, json_body, timeout));
    if (reply.status == 204 || reply.status == 200) return {};
    auto fault = nlohmann::json::parse(reply.body, nullptr, false);
    std::string why = fault.is_object() && fault.contains("fault_message") &&
                              fault["fault_message"].is_string()
                          ? fault["fault_message"].get<std::string>()
                          : reply.body;
    Error error(fmt::format("{} {}: {} {}", method, target, reply.status, why));
    return std::unexpected(reply.status == 400 ? error.with_kind(ErrorKind::InvalidInput) : error);
}

}  // namespace rv::app
