// The API server on a fake VMM, for tests from outside the process
// (tests/cli/api_curl.sh drives it with curl and socat): serves until
// SIGTERM or SIGINT, then prints the server's stats as one JSON line and
// exits 0.
// Usage: fake_vmm_server SOCKET_PATH [--request-timeout-ms N] [--body-limit N]
#include <signal.h>

#include <charconv>
#include <cstdio>
#include <string>
#include <string_view>

#include "api/server.h"
#include "support/fake_vmm_api.h"

namespace {

bool parse_number(std::string_view text, uint64_t& out) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s SOCKET_PATH [--request-timeout-ms N] [--body-limit N]\n",
                     argv[0]);
        return 2;
    }
    rv::api::ApiServerOptions options;
    for (int i = 2; i + 1 < argc; i += 2) {
        std::string_view flag = argv[i];
        uint64_t value = 0;
        if (!parse_number(argv[i + 1], value)) {
            std::fprintf(stderr, "fake_vmm_server: %s: not a number: %s\n", argv[i], argv[i + 1]);
            return 2;
        }
        if (flag == "--request-timeout-ms") {
            options.request_timeout = std::chrono::milliseconds(value);
        } else if (flag == "--body-limit") {
            options.body_limit = value;
        } else {
            std::fprintf(stderr, "fake_vmm_server: unknown flag %s\n", argv[i]);
            return 2;
        }
    }

    // Blocked before the API thread starts, so only sigwait sees them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    rv::test::FakeVmmApi vmm;
    auto server = rv::api::ApiServer::start(argv[1], vmm, options);
    if (!server) {
        std::fprintf(stderr, "fake_vmm_server: %s\n", server.error().message().c_str());
        return server.error().is_input() ? 2 : 1;
    }
    std::printf("listening on %s\n", argv[1]);
    std::fflush(stdout);
    int signal = 0;
    sigwait(&stop_signals, &signal);
    const auto stats = (*server)->stats();
    server->reset();
    std::printf("%s\n", stats.to_json().dump().c_str());
    return 0;
}
