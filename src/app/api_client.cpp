#include "app/api_client.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace rv::app {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Local = asio::local::stream_protocol;

Result<HttpReply> http_get_unix(const std::string& socket_path, const std::string& target,
                                std::chrono::milliseconds timeout) {
    asio::io_context io;
    beast::basic_stream<Local> stream(io);
    http::request<http::empty_body> request{http::verb::get, target, 11};
    request.set(http::field::host, "localhost");
    request.keep_alive(false);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(16 << 20);
    beast::error_code failed;
    const char* stage = "connect";

    stream.expires_after(timeout);  // one deadline for the whole exchange
    stream.async_connect(Local::endpoint(socket_path), [&](beast::error_code ec) {
        if (ec) return void(failed = ec);
        stage = "send";
        http::async_write(stream, request, [&](beast::error_code wec, size_t) {
            if (wec) return void(failed = wec);
            stage = "read";
            http::async_read(stream, buffer, parser, [&](beast::error_code rec, size_t) {
                if (rec) failed = rec;
            });
        });
    });
    io.run();

    if (failed == beast::error::timeout)
        return std::unexpected(Error(
            fmt::format("{}: no reply within {} ms ({})", socket_path, timeout.count(), stage),
            ETIMEDOUT));
    if (failed == asio::error::connection_refused || failed == asio::error::not_found ||
        failed.value() == ENOENT)
        return std::unexpected(
            Error(fmt::format("{}: nothing listens ({})", socket_path, failed.message()),
                  failed == asio::error::connection_refused ? ECONNREFUSED : ENOENT));
    if (failed && failed.category() == beast::http::make_error_code(http::error::bad_version).category())
        return std::unexpected(Error(fmt::format("{}: not an HTTP reply: {}", socket_path,
                                                 failed.message()),
                                     0, ErrorKind::InvalidInput));
    if (failed)
        return std::unexpected(
            Error(fmt::format("{}: {} failed: {}", socket_path, stage, failed.message()),
                  failed.value()));
    auto response = parser.release();
    return HttpReply{response.result_int(), std::move(response.body())};
}

}  // namespace rv::app
