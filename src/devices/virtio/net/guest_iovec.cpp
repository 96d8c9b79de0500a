#include "devices/virtio/net/guest_iovec.h"

#include <algorithm>

namespace rv::virtio {

Result<void> append_guest_iovecs(const GuestMemory& memory, GuestAddress addr, uint64_t len,
                                 std::vector<iovec>& out) {
    const size_t first = out.size();
    while (len > 0) {
        const GuestRegion* region = nullptr;
        for (const GuestRegion& r : memory.regions()) {
            if (addr.value >= r.start.value && addr.value < r.end()) {
                region = &r;
                break;
            }
        }
        if (!region) {
            out.resize(first);
            return make_error("guest buffer at {:#x} is outside guest memory", addr.value);
        }
        uint64_t chunk = std::min(len, region->end() - addr.value);
        auto host = memory.host_range(addr, chunk);
        if (!host) {
            out.resize(first);
            return std::unexpected(host.error());
        }
        // SAFETY: the pointer covers `chunk` mapped bytes of one region (host_range checked
        // it); it is only passed to readv/writev, never dereferenced as an object.
        out.push_back(iovec{*host, static_cast<size_t>(chunk)});
        addr.value += chunk;
        len -= chunk;
    }
    return {};
}

}  // namespace rv::virtio
