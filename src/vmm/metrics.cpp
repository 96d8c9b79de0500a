#include "vmm/metrics.h"

#include <fcntl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "vmm/msi_router.h"
#include "vmm/thread_times.h"
#include "vmm/vm.h"

namespace rv {

Result<std::unique_ptr<MetricsWriter>> MetricsWriter::open(const std::string& path, EventLoop& loop,
                                                           Snapshot snapshot) {
    if (path.empty()) return input_error("metrics_path is empty");
    int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0644);
    if (fd < 0)
        return std::unexpected(Error::from_errno(fmt::format("metrics_path {}", path))
                                   .with_kind(ErrorKind::InvalidInput));
    Fd file(fd);
    int t = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (t < 0) return errno_error("timerfd_create");
    Fd timer(t);
    itimerspec every{};
    every.it_interval.tv_sec = every.it_value.tv_sec = kInterval.count();
    if (::timerfd_settime(timer.get(), 0, &every, nullptr) < 0) return errno_error("timerfd_settime");
    std::unique_ptr<MetricsWriter> w(
        new MetricsWriter(std::move(file), std::move(timer), loop, std::move(snapshot)));
    auto* raw = w.get();
    RV_TRY_VOID(loop.add(raw->m_timer.get(), EPOLLIN, [raw](uint32_t) {
        uint64_t expirations;
        (void)!::read(raw->m_timer.get(), &expirations, sizeof expirations);
        (void)raw->flush();
    }));
    return w;
}

MetricsWriter::~MetricsWriter() { m_loop.remove(m_timer.get()); }

Result<void> MetricsWriter::flush() {
    std::string line = m_snapshot().dump() + "\n";
    ssize_t n = ::write(m_file.get(), line.data(), line.size());
    if (n < 0 && errno == EAGAIN) return {};  // a FIFO nobody reads: the line is lost
    if (n < 0) return errno_error("writing metrics");
    ++m_lines;
    return {};
}

nlohmann::json metrics_snapshot(const Vm* vm, nlohmann::json api) {
    nlohmann::json j;
    j["utc_timestamp_ms"] = std::chrono::duration_cast<std::chrono::milliseconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count();
    j["api_server"] = api.is_null() ? nlohmann::json::object() : std::move(api);
    if (!vm) return j;
    j["vcpu"] = nlohmann::json::array();
    for (const auto& vcpu : vm->vcpus()) {
        nlohmann::json v;
        v["id"] = vcpu->fd().id();
        if (auto stats = vcpu->fd().stats())
            for (const auto& [name, value] : *stats)
                if (name.ends_with("exits") || name == "exits") v["exits"][name] = value;
        v["vmm_pio_exits"] = vcpu->stats().pio_exits.load();
        v["vmm_mmio_exits"] = vcpu->stats().mmio_exits.load();
        auto times = thread_times(vcpu->tid()).value_or(ThreadTimes{});
        v["guest_time_ms"] = times.guest_ns / 1'000'000;
        v["thread_cpu_ms"] = times.cpu_ns / 1'000'000;
        j["vcpu"].push_back(v);
    }
    j["devices"] = nlohmann::json::object();
    for (const auto& d : vm->devices().devices()) {
        nlohmann::json counters = nlohmann::json::object();
        counters["kind"] = d.kind;
        for (const auto& [name, value] : d.counters) counters[name] = value;
        j["devices"][d.id] = counters;
    }
    j["msi_interrupts"] = vm->msi_interrupts();
    return j;
}

}  // namespace rv
