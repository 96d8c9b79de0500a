// A test client for the API server: a plain Unix socket that sends whatever
// bytes a test gives it (whole requests, halves, garbage) and reads HTTP
// responses with Beast's parser under a deadline, so a server that fails to
// answer fails the test instead of hanging it.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace rv::api::test_support {

struct HttpAnswer {
    unsigned status{0};
    std::string body;
    std::string header(const std::string& name) const {
        auto value = fields[name];
        return std::string(value.data(), value.size());
    }
    nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
    boost::beast::http::fields fields;
};

class UnixClient {
  public:
    explicit UnixClient(const std::string& path) {
        m_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
        if (::connect(m_fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
            ::close(m_fd);
            m_fd = -1;
        }
    }
    ~UnixClient() { close(); }
    UnixClient(const UnixClient&) = delete;
    UnixClient& operator=(const UnixClient&) = delete;
    UnixClient(UnixClient&& other) noexcept
        : m_fd(std::exchange(other.m_fd, -1)), m_pending(std::move(other.m_pending)) {}

    bool connected() const { return m_fd >= 0; }
    void close() {
        if (m_fd >= 0) ::close(m_fd);
        m_fd = -1;
    }

    // Writes all of `data`; false when the server has closed its end.
    bool send(std::string_view data) {
        while (!data.empty()) {
            ssize_t n = ::send(m_fd, data.data(), data.size(), MSG_NOSIGNAL);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            data.remove_prefix(size_t(n));
        }
        return true;
    }

    // The next response, or nullopt if none came whole within `timeout`.
    // `head`: the answer to a HEAD request, which has no body whatever its
    // Content-Length says.
    std::optional<HttpAnswer> read_response(
        std::chrono::milliseconds timeout = std::chrono::seconds(5), bool head = false) {
        namespace http = boost::beast::http;
        http::response_parser<http::string_body> parser;
        parser.body_limit(64ull << 20);
        parser.skip(head);
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (true) {
            if (!m_pending.empty()) {
                boost::beast::error_code ec;
                size_t used = parser.put(boost::asio::buffer(m_pending), ec);
                m_pending.erase(0, used);
                if (ec && ec != http::error::need_more) return std::nullopt;
                if (parser.is_done()) break;
                if (used > 0) continue;
            }
            auto got = read_some(deadline);
            if (!got) return std::nullopt;
            if (got->empty()) {  // the server closed: a body delimited by EOF ends here
                boost::beast::error_code ec;
                parser.put_eof(ec);
                if (ec || !parser.is_done()) return std::nullopt;
                break;
            }
            m_pending += *got;
        }
        auto message = parser.release();
        HttpAnswer answer;
        answer.status = message.result_int();
        answer.body = std::move(message.body());
        answer.fields = message.base();
        return answer;
    }

    // One request, one response.
    std::optional<HttpAnswer> request(std::string_view method, std::string_view path,
                                      std::string_view body = {}, bool keep_alive = true) {
        std::string text =
            std::string(method) + " " + std::string(path) + " HTTP/1.1\r\nHost: localhost\r\n";
        if (!body.empty())
            text +=
                "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                "\r\n";
        if (!keep_alive) text += "Connection: close\r\n";
        text += "\r\n";
        text += body;
        if (!send(text)) return std::nullopt;
        return read_response();
    }

    // Whether the server closed the connection within `timeout` (EOF or a
    // reset), ignoring anything it sent first.
    bool closed_by_server(std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (true) {
            auto got = read_some(deadline);
            if (!got) return m_reset;
            if (got->empty()) return true;
        }
    }

  private:
    // Bytes read, "" at EOF or reset, nullopt at the deadline.
    std::optional<std::string> read_some(std::chrono::steady_clock::time_point deadline) {
        char buf[16384];
        while (true) {
            auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return std::nullopt;
            pollfd p{m_fd, POLLIN, 0};
            int r = ::poll(&p, 1, int(left.count()));
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) return std::nullopt;
            ssize_t n = ::recv(m_fd, buf, sizeof(buf), 0);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                m_reset = true;
                return std::string();
            }
            return std::string(buf, size_t(n));
        }
    }

    int m_fd{-1};
    std::string m_pending;  // bytes read past the last response
    bool m_reset{false};
};

}  // namespace rv::api::test_support
