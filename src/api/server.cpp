#include "api/server.h"

#include <pthread.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <cstring>
#include <exception>
#include <system_error>
#include <thread>

#include "api/handlers/handlers.h"
#include "api/listener.h"
#include "base/log.h"

namespace rv::api {

namespace {

// Makes `path` free for bind(): a socket left by an earlier run is removed,
// anything else there is the caller's mistake.
Result<void> clear_socket_path(const std::string& path) {
    if (path.empty()) return input_error("the API socket path is empty");
    if (path.size() >= sizeof(sockaddr_un{}.sun_path))
        return input_error(
            "the API socket path {} is longer than the {} bytes a Unix socket allows", path,
            sizeof(sockaddr_un{}.sun_path) - 1);
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) return {};
        return input_error("checking the API socket path {}: {}", path, std::strerror(errno));
    }
    if (!S_ISSOCK(st.st_mode))
        return input_error("the API socket path {} exists and is not a socket", path);
    if (::unlink(path.c_str()) != 0)
        return errno_error(fmt::format("removing the stale API socket {}", path));
    return {};
}

}  // namespace

// Everything Beast and asio: kept out of server.h, which the VMM includes.
struct ApiServer::Impl {
    ~Impl() {
        m_io.stop();
        if (m_thread.joinable()) m_thread.join();
        if (m_listener) m_listener->stop();
        m_listener.reset();
        // Only our own socket: another server may have taken the path since.
        struct stat st {};
        if (!m_path.empty() && ::lstat(m_path.c_str(), &st) == 0 && st.st_dev == m_socket_dev &&
            st.st_ino == m_socket_ino)
            ::unlink(m_path.c_str());
        // Then ~io_context destroys the sessions still waiting on I/O, which
        // closes their connections.
    }

    Result<void> listen(const std::string& path, Router router, const ApiServerOptions& options) {
        m_listener = std::make_shared<Listener>(m_io, std::move(router), options);
        RV_TRY_VOID(m_listener->open(path));
        // From here on the destructor removes the file (if it is still ours).
        m_path = path;
        struct stat st {};
        if (::lstat(path.c_str(), &st) == 0) {
            m_socket_dev = st.st_dev;
            m_socket_ino = st.st_ino;
        }
        m_listener->start_accepting();
        try {
            m_thread = std::thread([this] { run(); });
        } catch (const std::system_error& e) {
            return make_error("starting the API thread: {}", e.what());
        }
        pthread_setname_np(m_thread.native_handle(), "rv-api");
        return {};
    }

    void run() {
        // An exception out of a handler (Beast's allocations) must not end
        // the API: log it and serve on.
        while (true) {
            try {
                m_io.run();
                return;
            } catch (const std::exception& e) {
                log::error("api: {}", e.what());
            }
        }
    }

    std::string m_path;
    dev_t m_socket_dev{};
    ino_t m_socket_ino{};
    asio::io_context m_io;
    std::shared_ptr<Listener> m_listener;
    std::thread m_thread;
};

ApiServer::ApiServer(std::unique_ptr<Impl> impl) : m_impl(std::move(impl)) {}

ApiServer::~ApiServer() = default;

Result<std::unique_ptr<ApiServer>> ApiServer::start(const std::string& socket_path, VmmApi& vmm,
                                                    const ApiServerOptions& options) {
    Router router;
    add_api_routes(router, vmm);
    return start(socket_path, std::move(router), options);
}

Result<std::unique_ptr<ApiServer>> ApiServer::start(const std::string& socket_path, Router router,
                                                    const ApiServerOptions& options) {
    RV_TRY_VOID(clear_socket_path(socket_path));
    auto impl = std::make_unique<Impl>();
    RV_TRY_VOID(impl->listen(socket_path, std::move(router), options));
    return std::unique_ptr<ApiServer>(new ApiServer(std::move(impl)));
}

const std::string& ApiServer::socket_path() const {
    return m_impl->m_path;
}

ApiStats ApiServer::stats() const {
    return m_impl->m_listener->stats().snapshot();
}

}  // namespace rv::api
