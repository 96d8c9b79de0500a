// Shared by the server tests: a temporary directory for the socket, and a
// server on it (the full API on a FakeVmmApi, or routes a test makes up).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <memory>
#include <string>

#include "api/server.h"
#include "support/fake_vmm_api.h"
#include "unit/api/unix_client.h"

namespace rv::api::test_support {

class ApiServerTest : public ::testing::Test {
  protected:
    void SetUp() override {
        // /tmp, not TMPDIR: a socket path must fit in 108 bytes.
        char dir[] = "/tmp/rv-api-XXXXXX";
        ASSERT_NE(::mkdtemp(dir), nullptr);
        m_dir = dir;
        m_path = m_dir + "/api.sock";
    }
    void TearDown() override {
        m_server.reset();
        std::error_code ignored;
        std::filesystem::remove_all(m_dir, ignored);
    }

    void start(ApiServerOptions options = {}) {
        auto server = ApiServer::start(m_path, vmm, options);
        ASSERT_TRUE(server) << server.error().message();
        m_server = std::move(*server);
    }
    void start(Router router, ApiServerOptions options = {}) {
        auto server = ApiServer::start(m_path, std::move(router), options);
        ASSERT_TRUE(server) << server.error().message();
        m_server = std::move(*server);
    }
    UnixClient client() { return UnixClient(m_path); }
    ApiStats stats() const { return m_server->stats(); }
    void stop() { m_server.reset(); }

    test::FakeVmmApi vmm;
    std::string m_dir;
    std::string m_path;
    std::unique_ptr<ApiServer> m_server;
};

}  // namespace rv::api::test_support
