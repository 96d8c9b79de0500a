// `ringvisor snapshot`: a full snapshot of a running VM through its API
// socket, into a directory (state + memory), as `run --restore DIR` reads.
#pragma once

#include <string>

namespace rv::app {

// The files of a snapshot directory.
inline constexpr const char* kSnapshotStateFile = "state";
inline constexpr const char* kSnapshotMemoryFile = "memory";

struct SnapshotOptions {
    std::string api_sock;
    std::string dir;
    bool keep_paused{false};  // leave the VM paused (else a running VM resumes)
    bool diff{false};         // snapshot_type Diff
};

// Pauses the VM if it runs, PUT /snapshot/create, resumes it unless told
// not to (also when the snapshot failed). Exit status 0, 1 (VMM or API
// failure) or 2 (bad input).
int snapshot_vm(const SnapshotOptions& options);

}  // namespace rv::app
