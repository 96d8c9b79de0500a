// Laying a diff snapshot's memory file over the memory file it follows
// (Firecracker's rebase-snap): the diff is a sparse file of RAM's size whose
// data extents are the pages written since; every extent is copied into the
// base at the same offset, which then holds RAM as of the diff.
#pragma once

#include <cstdint>
#include <string>

#include "base/error.h"

namespace rv::snapshot {

// Returns the bytes copied. Files of different sizes are refused
// (InvalidInput); the base is fsynced before returning.
Result<uint64_t> rebase_memory_file(const std::string& base_path, const std::string& diff_path);

}  // namespace rv::snapshot
