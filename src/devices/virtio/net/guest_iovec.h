// Scatter/gather over guest RAM: host iovecs for a guest range, split where
// memory regions end, so packets go between guest buffers and the backend
// without a copy.
#pragma once

#include <sys/uio.h>

#include <vector>

#include "base/error.h"
#include "memory/guest_memory.h"

namespace rv::virtio {

// Appends iovecs covering [addr, addr + len). Fails, appending nothing, if
// any byte is outside guest RAM. The iovecs point into guest memory, which the
// guest may change at any time: only hand them to the kernel, never parse them.
Result<void> append_guest_iovecs(const GuestMemory& memory, GuestAddress addr, uint64_t len,
                                 std::vector<iovec>& out);

}  // namespace rv::virtio
