// Copies between a flat buffer and bytes [pos, pos + n) of an iovec list,
// stopping early where the list ends. The caller guarantees every iovec is
// mapped memory for the duration (guest RAM from host_range, say); bytes are
// copied, never interpreted in place.
#pragma once

#include <sys/uio.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <span>

namespace rv {

enum class IovecCopy { ToIovecs, FromIovecs };

// Returns the bytes copied (less than n if the list is shorter).
template <IovecCopy kDirection>
uint64_t copy_iovecs(std::span<const iovec> iov, uint64_t pos, uint8_t* flat, uint64_t n) {
    uint64_t done = 0;
    for (const iovec& v : iov) {
        if (done == n) break;
        if (pos >= v.iov_len) {
            pos -= v.iov_len;
            continue;
        }
        const uint64_t take = std::min<uint64_t>(v.iov_len - pos, n - done);
        uint8_t* at = static_cast<uint8_t*>(v.iov_base) + pos;
        if constexpr (kDirection == IovecCopy::ToIovecs)
            std::memcpy(at, flat + done, take);
        else
            std::memcpy(flat + done, at, take);
        done += take;
        pos = 0;
    }
    return done;
}

}  // namespace rv
