// Request bookkeeping for the block backend: validation, continuation of
// short transfers, the write-zeroes fallback. Bounced O_DIRECT transfers are
// in bounce.cpp; the engines (uring_engine.cpp, sync_engine.cpp) only run
// single steps.
#include "backends/block/block_backend.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include "base/log.h"

namespace rv {
namespace {

constexpr uint64_t kZeroChunk = 1 << 20;

Result<Fd> open_image(const std::string& path, const BlockOptions& options) {
    int flags = (options.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    if (options.cache == BlockOptions::Cache::None) flags |= O_DIRECT;
    auto fd = Fd::open(path, flags);
    if (fd) return fd;
    int err = fd.error().os_errno();
    switch (err) {
        case ENOENT:
            return make_error("disk image {}: no such file", path);
        case EISDIR:
            return make_error("disk image {}: is a directory", path);
        case EACCES:
        case EPERM:
        case EROFS:
            return make_error("disk image {}: cannot open for {}: {}{}", path,
                              options.read_only ? "reading" : "reading and writing",
                              std::strerror(err), options.read_only ? "" : " (try read-only)");
        case EINVAL:
            if (options.cache == BlockOptions::Cache::None) {
                return make_error(
                    "disk image {}: the filesystem does not support O_DIRECT (cache=none); use "
                    "cache=writeback",
                    path);
            }
            break;
        default:
            break;
    }
    return std::unexpected(fd.error().context(fmt::format("disk image {}", path)));
}

// A regular file's or block device's size, a whole number of sectors.
Result<uint64_t> image_size(const Fd& file, const std::string& path) {
    struct stat st {};
    if (::fstat(file.get(), &st) < 0) return errno_error(fmt::format("disk image {}: fstat", path));
    uint64_t size = 0;
    if (S_ISDIR(st.st_mode)) {
        return make_error("disk image {}: is a directory", path);
    } else if (S_ISREG(st.st_mode)) {
        size = static_cast<uint64_t>(st.st_size);
    } else if (S_ISBLK(st.st_mode)) {
        if (::ioctl(file.get(), BLKGETSIZE64, &size) < 0)
            return errno_error(fmt::format("disk image {}: BLKGETSIZE64", path));
    } else {
        return make_error("disk image {}: not a regular file or block device", path);
    }
    if (size % BlockBackend::kSectorSize != 0)
        return make_error("disk image {}: size {} is not a multiple of {} bytes", path, size,
                          BlockBackend::kSectorSize);
    return size;
}

// O_DIRECT alignment: what the kernel reports (STATX_DIOALIGN, Linux 6.1+),
// never less than a sector.
uint64_t direct_io_alignment(int fd) {
    struct statx stx {};
    uint64_t align = BlockBackend::kSectorSize;
    if (::statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
        (stx.stx_mask & STATX_DIOALIGN)) {
        align = std::max<uint64_t>({align, stx.stx_dio_mem_align, stx.stx_dio_offset_align});
    }
    return align;
}

}  // namespace

Result<std::unique_ptr<BlockBackend>> BlockBackend::open(const std::string& path,
                                                         const BlockOptions& options) {
    Fd file = RV_TRY(open_image(path, options));
    const uint64_t size = RV_TRY(image_size(file, path));
    EventFd event = RV_TRY(EventFd::create(EFD_NONBLOCK | EFD_CLOEXEC));
    uint64_t align = 1;
    if (options.cache == BlockOptions::Cache::None) {
        uint64_t min = options.min_direct_alignment;
        if (min != 0 && (min & (min - 1)) != 0)
            return make_error("disk image {}: O_DIRECT alignment {} is not a power of two", path,
                              min);
        align = std::max(direct_io_alignment(file.get()), min);
    }
    std::unique_ptr<BlockBackend> backend(
        new BlockBackend(path, std::move(file), std::move(event), size, options, align));
    backend->m_engine = RV_TRY(backend->make_engine(backend->m_file.get()));
    return backend;
}

// io_uring as asked (with cache=writeback, writes inline beside it), else (or
// where the kernel refuses io_uring, with a log line) the synchronous engine.
Result<std::unique_ptr<block_detail::IoEngine>> BlockBackend::make_engine(int file_fd) {
    if (m_options.engine == BlockOptions::Engine::IoUring) {
        auto engine = block_detail::make_uring_engine(file_fd, m_event.fd(), kQueueDepth);
        if (engine) {
            m_engine_kind = BlockOptions::Engine::IoUring;
            if (m_options.cache == BlockOptions::Cache::Writeback)
                return block_detail::make_inline_write_engine(
                    std::move(*engine), block_detail::make_sync_engine(file_fd, m_event.fd()));
            return std::move(*engine);
        }
        log::warn("disk image {}: io_uring unavailable ({}); using synchronous I/O", m_path,
                  engine.error().message());
    }
    m_engine_kind = BlockOptions::Engine::Sync;
    return block_detail::make_sync_engine(file_fd, m_event.fd());
}

Result<void> BlockBackend::reopen() {
    if (m_pending != 0)
        return make_error("disk image {}: reopened with {} requests pending", m_path, m_pending);
    Fd file = RV_TRY(open_image(m_path, m_options));
    const uint64_t size = RV_TRY(image_size(file, m_path));
    if (size != m_size)
        return make_error("disk image {}: is {} bytes now, was {}", m_path, size, m_size);
    auto engine = RV_TRY(make_engine(file.get()));
    m_engine = std::move(engine);  // the old engine goes before its file
    m_file = std::move(file);
    return {};
}

BlockBackend::~BlockBackend() {
    // The kernel may still be writing into caller memory or our bounce buffers.
    drain();
}

bool BlockBackend::range_ok(uint64_t offset, uint64_t len) const {
    uint64_t end;
    return !__builtin_add_overflow(offset, len, &end) && end <= m_size;
}

void BlockBackend::fail_now(uint64_t tag, int err) {
    ++m_pending;
    m_ready.push_back({tag, err > 0 ? -static_cast<int64_t>(err) : 0});
    (void)m_event.write(1);
}

uint32_t BlockBackend::alloc_op() {
    if (!m_free_ops.empty()) {
        uint32_t index = m_free_ops.back();
        m_free_ops.pop_back();
        return index;
    }
    m_ops.emplace_back();
    return static_cast<uint32_t>(m_ops.size() - 1);
}

void BlockBackend::submit_read(uint64_t offset, std::span<const iovec> iov, uint64_t tag) {
    submit_rw(OpKind::Read, offset, iov, tag);
}

void BlockBackend::submit_write(uint64_t offset, std::span<const iovec> iov, uint64_t tag) {
    submit_rw(OpKind::Write, offset, iov, tag);
}

void BlockBackend::submit_rw(OpKind kind, uint64_t offset, std::span<const iovec> iov,
                             uint64_t tag) {
    if (kind == OpKind::Write && read_only()) return fail_now(tag, EROFS);
    if (iov.size() > kMaxIovecs) return fail_now(tag, EINVAL);
    uint64_t len = 0;
    for (const iovec& v : iov) {
        if (__builtin_add_overflow(len, v.iov_len, &len)) return fail_now(tag, EINVAL);
    }
    if (!range_ok(offset, len)) return fail_now(tag, EINVAL);
    // O_DIRECT: whole sectors only; what is not whole host blocks is bounced.
    if (m_align > 1 && (offset % kSectorSize != 0 || len % kSectorSize != 0))
        return fail_now(tag, EINVAL);
    if (len == 0) return fail_now(tag, 0);
    bool bounced = needs_bounce(offset, iov, len);
    // A read-modify-write of a host block reaching past the end would grow the file.
    if (bounced && kind == OpKind::Write &&
        (offset + len + m_align - 1) / m_align * m_align > m_size)
        return fail_now(tag, EINVAL);

    uint32_t index = alloc_op();
    Op& op = m_ops[index];
    op.kind = kind;
    op.tag = tag;
    op.offset = offset;
    op.len = len;
    op.done = 0;
    op.active = true;
    op.bounced = bounced;
    if (bounced) {
        op.user_iov.assign(iov.begin(), iov.end());
        op.iov.clear();
    } else {
        // The hot path: the caller's memory goes to the kernel as it is.
        op.user_iov.clear();
        op.iov.assign(iov.begin(), iov.end());
    }
    if (kind == OpKind::Write) plan_locks(op);
    ++m_pending;
    start_or_wait(index);
}

void BlockBackend::submit_flush(uint64_t tag) {
    if (m_options.ignore_flush) return fail_now(tag, 0);  // completes, successfully
    submit_range(OpKind::Flush, 0, 0, tag);
}

void BlockBackend::submit_discard(uint64_t offset, uint64_t len, uint64_t tag) {
    submit_range(OpKind::Discard, offset, len, tag);
}

void BlockBackend::submit_write_zeroes(uint64_t offset, uint64_t len, uint64_t tag) {
    submit_range(OpKind::WriteZeroes, offset, len, tag);
}

void BlockBackend::submit_range(OpKind kind, uint64_t offset, uint64_t len, uint64_t tag) {
    if (kind != OpKind::Flush) {
        if (read_only()) return fail_now(tag, EROFS);
        if (!range_ok(offset, len)) return fail_now(tag, EINVAL);
        // The write-zeroes fallback writes, so it obeys O_DIRECT alignment.
        if (kind == OpKind::WriteZeroes && (offset % m_align != 0 || len % m_align != 0))
            return fail_now(tag, EINVAL);
        if (len == 0) return fail_now(tag, 0);
    }
    uint32_t index = alloc_op();
    Op& op = m_ops[index];
    op.kind = kind;
    op.tag = tag;
    op.offset = offset;
    op.len = len;
    op.done = 0;
    op.bounced = false;
    op.zero_fallback = kind == OpKind::WriteZeroes && !m_zero_range_ok;
    op.active = true;
    // A discard of part of a host block must not interleave with a
    // read-modify-write of that block.
    if (kind == OpKind::Discard) plan_locks(op);
    ++m_pending;
    start_or_wait(index);
}

void BlockBackend::start_step(uint32_t index) {
    Op& op = m_ops[index];
    block_detail::IoStep step;
    step.user = index;
    step.offset = op.offset + op.done;
    switch (op.kind) {
        case OpKind::Read:
        case OpKind::Write:
            step.kind = op.kind == OpKind::Read ? block_detail::IoStep::Kind::Readv
                                                : block_detail::IoStep::Kind::Writev;
            step.iov = op.iov.data();
            step.iovcnt = static_cast<unsigned>(op.iov.size());
            break;
        case OpKind::Flush:
            step.kind = block_detail::IoStep::Kind::Fdatasync;
            break;
        case OpKind::Discard:
            step.kind = block_detail::IoStep::Kind::Fallocate;
            step.mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
            step.len = op.len;
            break;
        case OpKind::WriteZeroes:
            if (!op.zero_fallback) {
                step.kind = block_detail::IoStep::Kind::Fallocate;
                step.mode = FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE;
                step.len = op.len;
                break;
            }
            if (!m_zero_buffer) {
                uint64_t align = std::max<uint64_t>(m_align, 4096);
                m_zero_buffer.reset(static_cast<uint8_t*>(std::aligned_alloc(align, kZeroChunk)));
                if (!m_zero_buffer) return finish(index, -ENOMEM);
                std::memset(m_zero_buffer.get(), 0, kZeroChunk);
            }
            op.iov.assign(1, iovec{m_zero_buffer.get(), std::min(kZeroChunk, op.len - op.done)});
            step.kind = block_detail::IoStep::Kind::Writev;
            step.iov = op.iov.data();
            step.iovcnt = 1;
            break;
    }
    m_engine->start(step);
}

void BlockBackend::on_step(uint32_t index, int64_t result) {
    if (index >= m_ops.size() || !m_ops[index].active) {
        log::warn("block: completion for unknown request {}", index);
        return;
    }
    Op& op = m_ops[index];
    if (op.bounced) return on_bounce_step(index, result);
    bool transfer = op.kind == OpKind::Read || op.kind == OpKind::Write || op.zero_fallback;
    if (!transfer) {
        if (op.kind == OpKind::Discard && result == -EOPNOTSUPP) result = 0;  // a hint only
        if (op.kind == OpKind::WriteZeroes && (result == -EOPNOTSUPP || result == -EINVAL)) {
            m_zero_range_ok = false;
            op.zero_fallback = true;
            return start_step(index);
        }
        return finish(index, result < 0 ? result : 0);
    }
    if (result < 0) return finish(index, result);
    // Short transfer: 0 means the file shrank under us; otherwise continue.
    if (result == 0) return finish(index, -EIO);
    op.done += static_cast<uint64_t>(result);
    if (op.done >= op.len)
        return finish(index, op.zero_fallback ? 0 : static_cast<int64_t>(op.len));
    if (!op.zero_fallback) {
        uint64_t skip = static_cast<uint64_t>(result);
        auto it = op.iov.begin();
        while (skip > 0 && it != op.iov.end()) {
            if (skip >= it->iov_len) {
                skip -= it->iov_len;
                ++it;
            } else {
                it->iov_base = static_cast<uint8_t*>(it->iov_base) + skip;
                it->iov_len -= skip;
                skip = 0;
            }
        }
        op.iov.erase(op.iov.begin(), it);
    }
    start_step(index);
}

void BlockBackend::finish(uint32_t index, int64_t result) {
    Op& op = m_ops[index];
    m_ready.push_back({op.tag, result});
    op.iov.clear();
    op.user_iov.clear();
    op.zero_fallback = false;
    op.active = false;
    m_free_ops.push_back(index);
    release(op);  // may start waiting requests
}

std::vector<BlockBackend::Completion> BlockBackend::collect() {
    // The eventfd is not read (see completion_fd): a completion that races
    // with this reap signals it again, a new edge, so none is lost; at worst
    // a wake-up finds nothing.
    m_results.clear();
    m_engine->reap(m_results);
    for (const auto& r : m_results) on_step(static_cast<uint32_t>(r.user), r.result);
    std::vector<Completion> done;
    done.swap(m_ready);
    m_pending -= done.size();
    return done;
}

void BlockBackend::plug() {
    if (m_engine) m_engine->plug();
}

void BlockBackend::unplug() {
    if (m_engine) m_engine->unplug();
}

void BlockBackend::drain() {
    if (!m_engine) return;
    auto busy = [this] {
        return std::any_of(m_ops.begin(), m_ops.end(), [](const Op& op) { return op.active; });
    };
    while (busy()) {
        m_engine->wait();
        m_results.clear();
        m_engine->reap(m_results);
        for (const auto& r : m_results) on_step(static_cast<uint32_t>(r.user), r.result);
    }
    if (!m_ready.empty()) (void)m_event.write(1);
}

}  // namespace rv
