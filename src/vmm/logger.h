// PUT /logger (and --config-file's "logger"): where VMM log lines go, at
// which level, and how they are prefixed.
#pragma once

#include "base/error.h"
#include "vmm/vm_config.h"

namespace rv {

// log_path: lines are appended there (a file or a FIFO, opened non-blocking:
// a FIFO nobody reads loses lines rather than stalling the VMM); none:
// stderr. show_level adds "[LEVEL]", show_log_origin "[thread]" (the thread
// that logged: main, vcpuN, the API). InvalidInput if the path cannot be opened.
Result<void> configure_logger(const LoggerConfig& config);

}  // namespace rv
