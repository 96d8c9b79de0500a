// PUT /metrics (and --config-file's "metrics"): a JSON line of counters every
// 60 s and on FlushMetrics, appended to a file or written to a FIFO, in the
// spirit of Firecracker's metrics.md: per device (the drive's or NIC's id:
// bytes, requests/packets, errors, throttled events, ...), per vCPU (exits by
// reason from KVM, guest CPU time) and the API's request counts. Counters are
// cumulative since the VM started (a reader subtracts two lines for a rate).
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "base/error.h"
#include "base/fd.h"
#include "vmm/event_loop.h"

namespace rv {

class Vm;

class MetricsWriter {
public:
    static constexpr std::chrono::seconds kInterval{60};
    using Snapshot = std::function<nlohmann::json()>;

    // InvalidInput if the path cannot be opened for writing. The timer runs
    // in the loop's control set (metrics flow while the VM is paused too).
    static Result<std::unique_ptr<MetricsWriter>> open(const std::string& path, EventLoop& loop,
                                                       Snapshot snapshot);
    ~MetricsWriter();
    // Writes one line now (FlushMetrics). A FIFO nobody reads loses the line.
    Result<void> flush();
    uint64_t lines() const { return m_lines; }

private:
    MetricsWriter(Fd file, Fd timer, EventLoop& loop, Snapshot snapshot)
        : m_file(std::move(file)), m_timer(std::move(timer)), m_loop(loop), m_snapshot(std::move(snapshot)) {}
    Fd m_file;
    Fd m_timer;
    EventLoop& m_loop;
    Snapshot m_snapshot;
    uint64_t m_lines{0};
};

// One line's content: the VM's counters (null before it starts) and the API's.
nlohmann::json metrics_snapshot(const Vm* vm, nlohmann::json api);

}  // namespace rv
