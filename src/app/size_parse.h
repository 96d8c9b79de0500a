// Parsing of user-facing sizes such as "512M", "2GiB", "1024" (MiB).
#pragma once

#include <cstdint>
#include <string_view>

#include "base/error.h"

namespace rv {

// A memory size: a whole number with an optional unit K/M/G/T (also KiB,
// MiB, GiB, TiB, KB..., case-insensitive, powers of 1024); no unit means MiB.
Result<uint64_t> parse_memory_size(std::string_view text);

}  // namespace rv
