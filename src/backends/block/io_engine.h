// Internal to the block backend: an engine executes single I/O steps
// (one preadv/pwritev/fdatasync/fallocate each) and reports their raw
// results later. BlockBackend builds requests out of steps (bounce buffers,
// short transfers, the write-zeroes fallback); engines know nothing of them.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "base/error.h"

struct io_uring;  // liburing's ring, for the test seam below

namespace rv::block_detail {

struct IoStep {
    enum class Kind { Readv, Writev, Fdatasync, Fallocate };
    Kind kind{Kind::Readv};
    uint64_t user{0};  // handed back with the result
    uint64_t offset{0};
    const iovec* iov{nullptr};  // must stay valid until the step completes
    unsigned iovcnt{0};
    uint64_t len{0};  // Fallocate
    int mode{0};      // Fallocate
};

struct StepResult {
    uint64_t user;
    int64_t result;  // bytes transferred, 0, or -errno
};

class IoEngine {
  public:
    virtual ~IoEngine() = default;
    // Starts a step; its result arrives through reap(). Never fails: a step
    // that cannot start completes with -errno.
    virtual void start(const IoStep& step) = 0;
    // Appends every finished step to `out` without blocking.
    virtual void reap(std::vector<StepResult>& out) = 0;
    // Blocks until at least one started step has finished (or none is pending).
    virtual void wait() = 0;
    // Batching: between plug() and unplug() (which nest) started steps are
    // only queued; unplug() hands them to the kernel in one submission. A
    // device plugs around one pass over its queue, so a burst of requests
    // costs one system call instead of one each. wait() unplugs first.
    virtual void plug() {}
    virtual void unplug() {}
};

// Test seam: stands in for io_uring_submit(&ring), so a test can make the
// kernel refuse a submission (return -errno without calling it) or take only
// part of it. Production code passes none.
using UringSubmitHook = std::function<int(io_uring& ring)>;

// Both engines signal `event_fd` (an eventfd) when results become available.
// Fails if the kernel refuses io_uring (old kernel, seccomp, RLIMIT_MEMLOCK).
Result<std::unique_ptr<IoEngine>> make_uring_engine(int file_fd, int event_fd, unsigned depth,
                                                    UringSubmitHook submit_hook = {});
std::unique_ptr<IoEngine> make_sync_engine(int file_fd, int event_fd);
// Writev steps of at most kInlineWriteMax bytes to `writes` (the synchronous
// engine: inline), every other step to `ring` (io_uring): cache=writeback's
// engine (inline_write_engine.cpp says why).
inline constexpr uint64_t kInlineWriteMax = 64 << 10;
std::unique_ptr<IoEngine> make_inline_write_engine(std::unique_ptr<IoEngine> ring,
                                                   std::unique_ptr<IoEngine> writes);

}  // namespace rv::block_detail
