// The PNG chart of `ringvisor report --png`: CPU share (cores) over time,
// one coloured line per VM instance, with axes, ticks and a legend, drawn
// with libgd (its built-in bitmap font: no font files needed on the host).
#pragma once

#include <string>
#include <vector>

#include "app/report.h"
#include "base/error.h"

namespace rv::app::report {

// The records of (from_ms, to_ms] by VM instance; at least 200x150 pixels.
Result<void> write_cpu_chart(const std::vector<Record>& records, uint64_t from_ms, uint64_t to_ms,
                             const std::string& path, int width, int height);

}  // namespace rv::app::report
