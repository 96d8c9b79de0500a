#include "vmm/net_taps.h"

#include "backends/net/tap.h"
#include "base/log.h"

namespace rv {

Result<std::vector<std::unique_ptr<NetBackend>>> open_virtio_net_taps(const NetConfig& net,
                                                                      unsigned cpus) {
    const std::string what = fmt::format("network interface '{}' (tap {})", net.id, net.tap);
    const unsigned queues = net.queue_pairs(cpus);
    auto taps = Tap::open_queues(net.tap, queues);
    // InvalidInput from the tap: it cannot have `queues` queues (not the
    // kernel refusing us the tap itself: that stays an error).
    if (!taps && !net.queues && queues > 1 && taps.error().is_input()) {
        log::warn("{}: {}; using one queue pair instead of {}", what, taps.error().message(),
                  queues);
        taps = Tap::open_queues(net.tap, 1);
    }
    if (!taps)
        return std::unexpected(taps.error().context(what).with_kind(ErrorKind::InvalidInput));
    std::vector<std::unique_ptr<NetBackend>> backends;
    for (auto& tap : *taps) backends.push_back(std::move(tap));
    return backends;
}

}  // namespace rv
