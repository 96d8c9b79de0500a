#include "vmm/logger.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <chrono>
#include <memory>

#include "base/fd.h"
#include "base/log.h"

namespace rv {

namespace {

log::Level level_of(LoggerConfig::Level level) {
    switch (level) {
        case LoggerConfig::Level::Error: return log::Level::Error;
        case LoggerConfig::Level::Warning: return log::Level::Warn;
        case LoggerConfig::Level::Info: return log::Level::Info;
        case LoggerConfig::Level::Debug:
        case LoggerConfig::Level::Trace: return log::Level::Debug;
        case LoggerConfig::Level::Off: return log::Level::Off;
    }
    return log::Level::Warn;
}

std::string_view level_name(log::Level level) {
    switch (level) {
        case log::Level::Debug: return "DEBUG";
        case log::Level::Info: return "INFO";
        case log::Level::Warn: return "WARN";
        case log::Level::Error: return "ERROR";
        case log::Level::Off: return "OFF";
    }
    return "?";
}

}  // namespace

Result<void> configure_logger(const LoggerConfig& config) {
    std::shared_ptr<Fd> out;
    if (config.log_path) {
        int fd = ::open(config.log_path->c_str(),
                        O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644);
        if (fd < 0)
            return std::unexpected(Error::from_errno(fmt::format("log_path {}", *config.log_path))
                                       .with_kind(ErrorKind::InvalidInput));
        out = std::make_shared<Fd>(fd);
    }
    const bool show_level = config.show_level, show_origin = config.show_log_origin;
    log::set_sink([out, show_level, show_origin](log::Level level, std::string_view text) {
        auto now = std::chrono::system_clock::now().time_since_epoch();
        std::string line = fmt::format(
            "[{}.{:06}] ", std::chrono::duration_cast<std::chrono::seconds>(now).count(),
            std::chrono::duration_cast<std::chrono::microseconds>(now).count() % 1000000);
        if (show_level) line += fmt::format("[{}] ", level_name(level));
        if (show_origin) {
            char name[16] = "?";
            ::pthread_getname_np(::pthread_self(), name, sizeof name);
            line += fmt::format("[{}] ", name);
        }
        line += text;
        line += '\n';
        // One write per line; a full FIFO or a failing file loses the line.
        (void)!::write(out ? out->get() : STDERR_FILENO, line.data(), line.size());
    });
    log::set_level(level_of(config.level));
    return {};
}

}  // namespace rv
