// Shared by the handler tests: one request through a Router built with every
// route on a FakeVmmApi, without a socket.
#pragma once

#include <optional>
#include <string>

#include "api/handlers/handlers.h"
#include "api/router.h"
#include "support/fake_vmm_api.h"

namespace rv::api::test_support {

struct Answer {
    unsigned status{0};
    nlohmann::json body;  // null for 204
    std::string allow;
    std::string route;
    std::string fault() const {
        return body.is_object() && body.contains("fault_message")
                   ? body["fault_message"].get<std::string>()
                   : std::string("<no fault_message>");
    }
};

class HandlerTest {
  public:
    HandlerTest() { add_api_routes(m_router, vmm); }

    Answer call(http::verb method, std::string path, std::string body = {},
                std::optional<std::string> content_type = "application/json") {
        ApiRequest request;
        request.method = method;
        request.path = std::move(path);
        request.body = std::move(body);
        request.content_type = std::move(content_type);
        auto dispatched = m_router.dispatch(std::move(request));
        Answer answer;
        answer.status = static_cast<unsigned>(dispatched.response.status);
        if (dispatched.response.body) answer.body = *dispatched.response.body;
        answer.allow = dispatched.response.allow;
        answer.route = dispatched.route;
        return answer;
    }
    Answer get(std::string path) {
        return call(http::verb::get, std::move(path), {}, std::nullopt);
    }
    Answer put(std::string path, std::string body) {
        return call(http::verb::put, std::move(path), std::move(body));
    }
    Answer patch(std::string path, std::string body) {
        return call(http::verb::patch, std::move(path), std::move(body));
    }

    test::FakeVmmApi vmm;

  private:
    Router m_router;
};

}  // namespace rv::api::test_support
