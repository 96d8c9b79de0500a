// The host side of a disk: a raw image file (or block device) served
// asynchronously through io_uring, or synchronously where io_uring is
// unavailable. Device-neutral: virtio-blk and the IDE disk share it.
//
// Every submit_*() produces exactly one completion, later, with the caller's
// 64-bit tag: the result is the number of bytes transferred (read/write),
// 0 (flush, discard, write-zeroes) or -errno (-EINVAL for a range outside the
// disk or a malformed request, -EROFS for a write to a read-only disk).
// Completions are delivered only from process_completions(), which a device
// calls when completion_fd() becomes readable. Not thread-safe: calls must
// be serialised by the owner — virtio-blk makes them all from the event loop
// (drain() also under the device's lock during reset); the IDE controller
// submits from vCPU threads and completes on the event loop, every call under
// its device mutex.
//
// Durability: flush() is fdatasync; it covers every write that completed
// before the flush was submitted. Writes still in flight when a flush is
// submitted are not covered: callers that need a barrier (virtio-blk does)
// wait for earlier writes before submitting the flush.
//
// cache=none (O_DIRECT) wants memory, offsets and lengths aligned to the
// host's block (alignment(): 512, or 4096 on a disk with 4 KiB logical
// sectors). Aligned requests go straight to the kernel, without a copy.
// Anything else that is still whole 512-byte sectors is bounced
// (bounce.cpp): through a pooled buffer, one chunk of at most
// kBounceBufferSize at a time; reads read the covering aligned range and
// copy out, writes read-modify-write their partial first and last host
// blocks. Writes that share a partial host block (and discards that cover
// part of one) are serialised, so two writes to different sectors of one
// 4 KiB block cannot undo each other. The pool holds at most
// kMaxBounceBuffers buffers; a request that finds none free waits for one.
// So bounce memory per disk is at most kMaxBounceBytes (8 MiB; or
// kMaxBounceBuffers host blocks if a host block is larger than a buffer),
// whatever the size or number of the requests. A bounced write that would
// touch a host block reaching past the end of the image (an image size that
// is not a multiple of the host block) fails with -EINVAL rather than grow
// the file; reads there see zeroes beyond the end.
#pragma once

#include <sys/epoll.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backends/block/io_engine.h"
#include "base/error.h"
#include "base/fd.h"

namespace rv {

struct BlockOptions {
    bool read_only{false};
    enum class Cache { None /* O_DIRECT */, Writeback } cache{Cache::Writeback};
    enum class Engine { IoUring, Sync } engine{Engine::IoUring};
    // Flushes complete at once without reaching the disk (Firecracker's
    // cache_type "Unsafe"): fast, and a host crash can lose acknowledged writes.
    bool ignore_flush{false};
    // cache=none: use at least this O_DIRECT alignment (a power of two; 0
    // means what the kernel reports). Tests set 4096 to stand in for a host
    // disk with 4 KiB logical sectors.
    uint64_t min_direct_alignment{0};
};

class BlockBackend {
  public:
    static constexpr uint64_t kSectorSize = 512;
    static constexpr unsigned kQueueDepth = 128;
    static constexpr size_t kMaxIovecs = 1024;  // UIO_MAXIOV
    // The O_DIRECT bounce pool (see the top of this file).
    static constexpr uint64_t kBounceBufferSize = 256 << 10;
    static constexpr size_t kMaxBounceBuffers = 32;
    static constexpr uint64_t kMaxBounceBytes = kBounceBufferSize * kMaxBounceBuffers;

    // Opens the image. Engine::IoUring falls back to Sync (with a log line)
    // when the kernel refuses io_uring; engine() tells which one runs.
    static Result<std::unique_ptr<BlockBackend>> open(const std::string& path,
                                                      const BlockOptions& options);
    ~BlockBackend();
    BlockBackend(const BlockBackend&) = delete;
    BlockBackend& operator=(const BlockBackend&) = delete;

    uint64_t size() const { return m_size; }  // bytes, a multiple of 512
    uint64_t sectors() const { return m_size / kSectorSize; }
    bool read_only() const { return m_options.read_only; }
    BlockOptions::Cache cache() const { return m_options.cache; }
    const BlockOptions& options() const { return m_options; }
    BlockOptions::Engine engine() const { return m_engine_kind; }
    // O_DIRECT alignment of memory, offsets and lengths (1 with cache=writeback).
    uint64_t alignment() const { return m_align; }
    // Memory held by the bounce pool now (at most kMaxBounceBuffers buffers).
    uint64_t bounce_bytes() const { return m_bounce_count * m_bounce_size; }

    // Signalled when completions are waiting (an eventfd, never read: one
    // system call less per wake-up); register it with the event loop with
    // kCompletionEvents, edge-triggered, and call process_completions() on
    // every report. Polled level-triggered it stays readable once signalled.
    int completion_fd() const { return m_event.fd(); }
    static constexpr uint32_t kCompletionEvents = EPOLLIN | EPOLLET;

    // The iovecs point at host memory (e.g. guest RAM) that must stay mapped
    // until the completion is delivered; the iovec array itself is copied.
    void submit_read(uint64_t offset, std::span<const iovec> iov, uint64_t tag);
    void submit_write(uint64_t offset, std::span<const iovec> iov, uint64_t tag);
    void submit_flush(uint64_t tag);
    // Deallocates the range (PUNCH_HOLE); reads then return zeroes. A
    // filesystem without hole punching makes this a successful no-op.
    void submit_discard(uint64_t offset, uint64_t len, uint64_t tag);
    // The range reads back as zeroes (ZERO_RANGE, or writing zeroes where the
    // filesystem lacks it).
    void submit_write_zeroes(uint64_t offset, uint64_t len, uint64_t tag);

    // Delivers every finished request as on_complete(tag, result); returns
    // how many. Safe to submit from inside the callback (those complete in a
    // later call; the fd becomes readable again).
    template <typename F>
    size_t process_completions(F&& on_complete) {
        std::vector<Completion> done = collect();
        for (const Completion& c : done) on_complete(c.tag, c.result);
        return done.size();
    }

    // Batching (nests): requests submitted between plug() and unplug() reach
    // the kernel together at the last unplug(), in one system call with the
    // io_uring engine. Completions are unaffected.
    void plug();
    void unplug();

    // Requests submitted and not yet delivered by process_completions.
    size_t pending() const { return m_pending; }
    // Blocks until every submitted request has finished; their completions
    // are then delivered by the next process_completions(). For reset paths.
    void drain();

    // Opens the image again by its path, closing the old file: later
    // requests see only what reached the image through other openers, as
    // a live migration's destination needs once the source has stopped
    // writing. Idle only (nothing pending); the image must still be the
    // size it was. The completion fd stays the same.
    Result<void> reopen();
    const std::string& path() const { return m_path; }

  private:
    struct Completion {
        uint64_t tag;
        int64_t result;
    };
    enum class OpKind { Read, Write, Flush, Discard, WriteZeroes };
    // Where a bounced request is within its current chunk.
    enum class Phase : uint8_t {
        Head,  // reading the partial first host block (write)
        Tail,  // reading the partial last host block (write)
        Data,  // reading or writing the whole chunk
    };
    struct AlignedFree {
        void operator()(uint8_t* p) const { std::free(p); }
    };
    using Buffer = std::unique_ptr<uint8_t, AlignedFree>;
    struct Op {
        OpKind kind{OpKind::Read};
        uint64_t tag{0};
        uint64_t offset{0};
        uint64_t len{0};
        uint64_t done{0};             // bytes finished (bounced: of the caller's range)
        std::vector<iovec> iov;       // what the engine transfers (advanced on short I/O)
        std::vector<iovec> user_iov;  // the caller's buffers when bouncing
        bool bounced{false};
        Buffer bounce;  // from the pool while the request runs
        Phase phase{Phase::Data};
        uint64_t chunk_offset{0};  // aligned file range now in the bounce buffer
        uint64_t chunk_len{0};
        uint64_t step_offset{0};  // file range of the step in flight, inside the chunk
        uint64_t step_len{0};
        uint64_t step_done{0};
        std::array<uint64_t, 2> locks{};  // partial host blocks this request serialises on
        uint8_t lock_count{0};
        bool zero_fallback{false};  // write-zeroes done as writes of a zero buffer
        bool active{false};
    };

    BlockBackend(std::string path, Fd file, EventFd event, uint64_t size, const BlockOptions& options,
                 uint64_t align)
        : m_path(std::move(path)),
          m_file(std::move(file)),
          m_event(std::move(event)),
          m_size(size),
          m_options(options),
          m_align(align),
          m_bounce_size(std::max<uint64_t>(kBounceBufferSize, align)) {}

    void submit_rw(OpKind kind, uint64_t offset, std::span<const iovec> iov, uint64_t tag);
    void submit_range(OpKind kind, uint64_t offset, uint64_t len, uint64_t tag);
    void fail_now(uint64_t tag, int err);
    bool range_ok(uint64_t offset, uint64_t len) const;
    uint32_t alloc_op();
    void start_step(uint32_t index);
    void on_step(uint32_t index, int64_t result);
    void finish(uint32_t index, int64_t result);
    std::vector<Completion> collect();

    // bounce.cpp: bounced transfers, the pool, serialisation of partial blocks.
    bool needs_bounce(uint64_t offset, std::span<const iovec> iov, uint64_t len) const;
    void plan_locks(Op& op) const;
    void start_or_wait(uint32_t index);
    Buffer take_bounce();
    bool locks_free(const Op& op, std::span<const uint64_t> reserved) const;
    void admit_waiting();
    void release(Op& op);
    void begin_chunk(uint32_t index);
    void write_chunk(uint32_t index);
    void start_bounce_step(uint32_t index, Phase phase, uint64_t offset, uint64_t len);
    void restart_bounce_step(uint32_t index);
    void on_bounce_step(uint32_t index, int64_t result);
    Result<std::unique_ptr<block_detail::IoEngine>> make_engine(int file_fd);

    std::string m_path;
    Fd m_file;
    EventFd m_event;
    uint64_t m_size;
    BlockOptions m_options;
    uint64_t m_align;
    BlockOptions::Engine m_engine_kind{BlockOptions::Engine::Sync};
    std::unique_ptr<block_detail::IoEngine> m_engine;
    std::vector<Op> m_ops;  // indexed by the engine's user value
    std::vector<uint32_t> m_free_ops;
    std::vector<Completion> m_ready;  // finished, not yet delivered
    std::vector<block_detail::StepResult> m_results;
    uint64_t m_bounce_size;
    std::vector<Buffer> m_bounce_free;  // the pool's idle buffers
    size_t m_bounce_count{0};           // buffers allocated, idle or in use
    std::vector<uint64_t> m_locked;     // partial host blocks held by running requests
    std::deque<uint32_t> m_waiting;     // requests waiting for a buffer or a block, in order
    size_t m_pending{0};
    bool m_zero_range_ok{true};
    Buffer m_zero_buffer;  // for the write-zeroes fallback
};

}  // namespace rv
