#include "api/listener.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>

#include <boost/asio/error.hpp>

#include "api/session.h"
#include "base/log.h"

namespace rv::api {

namespace {

// Connections are the API's, not a child process's.
void set_cloexec(int fd) {
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
}

}  // namespace

Listener::Listener(asio::io_context& io, Router router, ApiServerOptions options)
    : m_acceptor(io), m_retry(io), m_router(std::move(router)), m_options(options) {}

// The socket appears at `path` only once it listens: bound under a sibling
// name, then renamed into place (atomic), so a client that waits for the
// path to exist never meets ECONNREFUSED. A path too long for the sibling
// name is bound directly.
Result<void> Listener::open(const std::string& path) {
    std::string bind_path = path + fmt::format(".{}.tmp", ::getpid());
    if (bind_path.size() >= sizeof(sockaddr_un{}.sun_path)) bind_path = path;
    if (bind_path != path) ::unlink(bind_path.c_str());
    boost::system::error_code ec;
    const asio::local::stream_protocol::endpoint endpoint(bind_path);
    m_acceptor.open(endpoint.protocol(), ec);
    if (ec) return errno_error("creating the API socket", ec.value());
    set_cloexec(m_acceptor.native_handle());
    m_acceptor.bind(endpoint, ec);
    if (ec) {
        auto error = Error::from_errno(fmt::format("binding the API socket {}", path), ec.value());
        // A directory that is missing or not ours: the path given is wrong.
        const bool callers = ec.value() == ENOENT || ec.value() == ENOTDIR ||
                             ec.value() == EACCES || ec.value() == EROFS ||
                             ec.value() == EADDRINUSE;
        return std::unexpected(callers ? error.with_kind(ErrorKind::InvalidInput) : error);
    }
    m_acceptor.listen(SOMAXCONN, ec);
    if (ec) {
        if (bind_path != path) ::unlink(bind_path.c_str());
        return errno_error("listening on the API socket", ec.value());
    }
    if (bind_path != path && ::rename(bind_path.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(bind_path.c_str());
        return errno_error(fmt::format("moving the API socket into place at {}", path), err);
    }
    return {};
}

void Listener::start_accepting() {
    accept();
}

void Listener::stop() {
    m_stopped = true;
    boost::system::error_code ignored;
    m_acceptor.close(ignored);
    m_retry.cancel();
}

void Listener::accept() {
    if (m_stopped) return;
    m_accepting = true;
    m_acceptor.async_accept(
        [self = shared_from_this()](const boost::system::error_code& ec, UnixSocket socket) {
            self->on_accept(ec, std::move(socket));
        });
}

void Listener::on_accept(const boost::system::error_code& ec, UnixSocket socket) {
    m_accepting = false;
    if (m_stopped || ec == asio::error::operation_aborted) return;
    if (ec) {
        // EMFILE and the like: retrying at once would spin, since the
        // pending connection stays in the backlog.
        m_stats.accept_error();
        log::warn_limited(m_accept_errors, "api: accept failed: {}", ec.message());
        m_accepting = true;
        m_retry.expires_after(std::chrono::milliseconds(100));
        m_retry.async_wait([self = shared_from_this()](const boost::system::error_code& wait_ec) {
            self->m_accepting = false;
            if (!wait_ec) self->accept();
        });
        return;
    }
    set_cloexec(socket.native_handle());
    ++m_active;
    m_stats.accepted();
    std::make_shared<Session>(std::move(socket), shared_from_this())->start();
    // At the limit, the next connection waits in the backlog until
    // session_ended() frees a slot.
    if (m_active < m_options.max_connections) accept();
}

void Listener::session_ended() {
    --m_active;
    m_stats.closed();
    if (!m_stopped && !m_accepting && m_active < m_options.max_connections) accept();
}

}  // namespace rv::api
