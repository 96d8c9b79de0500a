// O_DIRECT requests that are not whole host blocks in aligned memory (the
// contract is at the top of block_backend.h): the bounce pool, transfers in
// chunks through one pooled buffer, read-modify-write of the partial first
// and last host blocks of a write, and the serialisation of requests that
// share such a block.
//
// A bounced request runs chunk by chunk; a chunk is an aligned file range of
// at most one bounce buffer. Reads read the chunk and copy the caller's part
// out. Writes read the chunk's partial head and tail blocks (Head, Tail),
// copy the caller's bytes over them and write the chunk (Data). Only the
// first chunk can have a partial head and only the last a partial tail.

#include "backends/block/block_backend.h"
#include "base/iovec_copy.h"

namespace rv {
namespace {

uint64_t align_down(uint64_t value, uint64_t align) {
    return value / align * align;
}
uint64_t align_up(uint64_t value, uint64_t align) {
    return (value + align - 1) / align * align;
}

}  // namespace

bool BlockBackend::needs_bounce(uint64_t offset, std::span<const iovec> iov, uint64_t len) const {
    if (m_align == 1) return false;
    if (offset % m_align != 0 || len % m_align != 0) return true;
    for (const iovec& v : iov) {
        if (reinterpret_cast<uintptr_t>(v.iov_base) % m_align != 0 || v.iov_len % m_align != 0)
            return true;
    }
    return false;
}

// The host blocks a write (or discard) covers only in part. Two requests
// writing different sectors of one such block would each write back the
// whole block; they must not overlap in time.
void BlockBackend::plan_locks(Op& op) const {
    op.lock_count = 0;
    if (m_align == 1) return;
    uint64_t end = op.offset + op.len;
    if (op.offset % m_align != 0) op.locks[op.lock_count++] = align_down(op.offset, m_align);
    if (end % m_align != 0) {
        uint64_t last = align_down(end, m_align);
        if (op.lock_count == 0 || op.locks[0] != last) op.locks[op.lock_count++] = last;
    }
}

void BlockBackend::start_or_wait(uint32_t index) {
    const Op& op = m_ops[index];
    if (!op.bounced && op.lock_count == 0) return start_step(index);  // the common case
    m_waiting.push_back(index);
    admit_waiting();
}

BlockBackend::Buffer BlockBackend::take_bounce() {
    if (!m_bounce_free.empty()) {
        Buffer buffer = std::move(m_bounce_free.back());
        m_bounce_free.pop_back();
        return buffer;
    }
    if (m_bounce_count >= kMaxBounceBuffers) return nullptr;
    // m_bounce_size is a multiple of m_align (both powers of two, or equal).
    Buffer buffer(static_cast<uint8_t*>(
        std::aligned_alloc(std::max<uint64_t>(m_align, 4096), m_bounce_size)));
    if (buffer) ++m_bounce_count;
    return buffer;
}

bool BlockBackend::locks_free(const Op& op, std::span<const uint64_t> reserved) const {
    for (uint8_t i = 0; i < op.lock_count; ++i) {
        uint64_t block = op.locks[i];
        if (std::find(m_locked.begin(), m_locked.end(), block) != m_locked.end() ||
            std::find(reserved.begin(), reserved.end(), block) != reserved.end())
            return false;
    }
    return true;
}

// Starts waiting requests, oldest first, that can now have their buffer and
// blocks. A request never takes a block an older waiting one wants, so none
// waits forever behind a stream of newer ones.
void BlockBackend::admit_waiting() {
    std::vector<uint64_t> reserved;
    std::vector<uint32_t> admitted;
    std::vector<uint32_t> failed;
    for (auto it = m_waiting.begin(); it != m_waiting.end();) {
        Op& op = m_ops[*it];
        bool ok = locks_free(op, reserved);
        if (ok && op.bounced) {
            op.bounce = take_bounce();
            if (!op.bounce) {
                ok = false;
                // Nothing in use that could come back: the allocation failed.
                if (m_bounce_count == m_bounce_free.size()) {
                    op.lock_count = 0;  // none taken
                    failed.push_back(*it);
                    it = m_waiting.erase(it);
                    continue;
                }
            }
        }
        if (!ok) {
            reserved.insert(reserved.end(), op.locks.begin(), op.locks.begin() + op.lock_count);
            ++it;
            continue;
        }
        m_locked.insert(m_locked.end(), op.locks.begin(), op.locks.begin() + op.lock_count);
        admitted.push_back(*it);
        it = m_waiting.erase(it);
    }
    // Started after the scan: finishing (of a failed request) re-enters here.
    for (uint32_t index : failed) finish(index, -ENOMEM);
    for (uint32_t index : admitted) {
        if (m_ops[index].bounced)
            begin_chunk(index);
        else
            start_step(index);
    }
}

// Gives back a finished request's buffer and blocks, and lets waiters go.
void BlockBackend::release(Op& op) {
    bool freed = false;
    if (op.bounce) {
        m_bounce_free.push_back(std::move(op.bounce));
        freed = true;
    }
    for (uint8_t i = 0; i < op.lock_count; ++i) {
        auto it = std::find(m_locked.begin(), m_locked.end(), op.locks[i]);
        if (it != m_locked.end()) m_locked.erase(it);
        freed = true;
    }
    op.lock_count = 0;
    if (freed && !m_waiting.empty()) admit_waiting();
}

void BlockBackend::begin_chunk(uint32_t index) {
    Op& op = m_ops[index];
    const uint64_t at = op.offset + op.done;  // the caller's next byte
    const uint64_t end = op.offset + op.len;
    op.chunk_offset = align_down(at, m_align);
    op.chunk_len =
        std::min(align_up(end, m_align), op.chunk_offset + m_bounce_size) - op.chunk_offset;
    const uint64_t chunk_end = op.chunk_offset + op.chunk_len;
    if (op.kind == OpKind::Read)
        return start_bounce_step(index, Phase::Data, op.chunk_offset, op.chunk_len);
    if (at > op.chunk_offset)
        return start_bounce_step(index, Phase::Head, op.chunk_offset, m_align);
    if (end < chunk_end) return start_bounce_step(index, Phase::Tail, chunk_end - m_align, m_align);
    write_chunk(index);
}

// Copies the caller's bytes of this chunk into the buffer and writes it.
void BlockBackend::write_chunk(uint32_t index) {
    Op& op = m_ops[index];
    const uint64_t at = op.offset + op.done;
    const uint64_t n = std::min(op.offset + op.len, op.chunk_offset + op.chunk_len) - at;
    copy_iovecs<IovecCopy::FromIovecs>(op.user_iov, op.done, op.bounce.get() + (at - op.chunk_offset), n);
    start_bounce_step(index, Phase::Data, op.chunk_offset, op.chunk_len);
}

void BlockBackend::start_bounce_step(uint32_t index, Phase phase, uint64_t offset, uint64_t len) {
    Op& op = m_ops[index];
    op.phase = phase;
    op.step_offset = offset;
    op.step_len = len;
    op.step_done = 0;
    restart_bounce_step(index);
}

// (Re)issues the rest of the current step.
void BlockBackend::restart_bounce_step(uint32_t index) {
    Op& op = m_ops[index];
    uint8_t* at = op.bounce.get() + (op.step_offset - op.chunk_offset) + op.step_done;
    op.iov.assign(1, iovec{at, op.step_len - op.step_done});
    block_detail::IoStep step;
    step.user = index;
    step.offset = op.step_offset + op.step_done;
    bool writing = op.phase == Phase::Data && op.kind == OpKind::Write;
    step.kind = writing ? block_detail::IoStep::Kind::Writev : block_detail::IoStep::Kind::Readv;
    step.iov = op.iov.data();
    step.iovcnt = 1;
    m_engine->start(step);
}

void BlockBackend::on_bounce_step(uint32_t index, int64_t result) {
    Op& op = m_ops[index];
    if (result < 0) return finish(index, result);
    op.step_done += std::min(static_cast<uint64_t>(result), op.step_len - op.step_done);
    if (op.step_done < op.step_len) {
        bool reading = !(op.phase == Phase::Data && op.kind == OpKind::Write);
        if (reading && op.step_offset + op.step_done >= m_size) {
            // The last host block of an image whose size is not a multiple
            // of it: the kernel stops at the end; the rest reads as zeroes.
            uint8_t* rest = op.bounce.get() + (op.step_offset - op.chunk_offset) + op.step_done;
            std::memset(rest, 0, op.step_len - op.step_done);
        } else if (result == 0) {
            return finish(index, -EIO);  // the file shrank under us
        } else {
            return restart_bounce_step(index);  // short transfer: go on
        }
    }
    const uint64_t at = op.offset + op.done;
    const uint64_t end = op.offset + op.len;
    const uint64_t chunk_end = op.chunk_offset + op.chunk_len;
    switch (op.phase) {
        case Phase::Head:
            // The partial tail is in another block: read that one too.
            if (end < chunk_end && chunk_end - m_align != op.chunk_offset)
                return start_bounce_step(index, Phase::Tail, chunk_end - m_align, m_align);
            return write_chunk(index);
        case Phase::Tail:
            return write_chunk(index);
        case Phase::Data: {
            const uint64_t n = std::min(end, chunk_end) - at;
            if (op.kind == OpKind::Read)
                copy_iovecs<IovecCopy::ToIovecs>(op.user_iov, op.done, op.bounce.get() + (at - op.chunk_offset),
                                  n);
            op.done += n;
            if (op.done < op.len) return begin_chunk(index);
            return finish(index, static_cast<int64_t>(op.len));
        }
    }
}

}  // namespace rv
