// Host-side kernel decompression with a cache. A bzImage normally
// decompresses itself inside the guest on every boot; ringvisor instead
// decompresses the payload once on the host, keeps the ELF vmlinux in a
// cache directory keyed by the bzImage's contents, and boots it directly.
#pragma once

#include <optional>
#include <span>
#include <string>

#include "base/error.h"

namespace rv {

// $RINGVISOR_CACHE_DIR, else $XDG_CACHE_HOME/ringvisor, else ~/.cache/ringvisor.
std::string default_kernel_cache_dir();

struct CachedKernel {
    std::string path;                     // the cached ELF ("" if it could not be stored)
    std::optional<std::string> contents;  // set on a miss: the ELF just decompressed
    bool hit{false};
};

// The decompressed kernel of `bzimage`. A hit returns only the path: the
// loader reads segments from the file straight into guest memory, so the
// VMM never holds the (large) ELF in its own memory. On a miss it decompresses and stores
// the result when `dir` is writable; when it is not (e.g. a read-only root),
// or the payload format is not supported, returns nullopt so the caller
// boots the bzImage itself. Errors are for corrupt images only.
Result<std::optional<CachedKernel>> cached_vmlinux(std::span<const uint8_t> bzimage,
                                                   const std::string& dir);

}  // namespace rv
