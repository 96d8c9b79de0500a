#include "devices/legacy/ide/bmdma.h"

#include <algorithm>

namespace rv::ide {

Result<void> append_guest_iovecs(const GuestMemory& memory, GuestAddress addr, uint64_t len,
                                 std::vector<iovec>& out) {
    const size_t first = out.size();
    if (auto r = memory.append_iovecs(addr, len, out); !r)
        return make_error("DMA region {:#x}+{:#x} outside guest RAM", addr.value, len);
    // Merged with the previous iovec where contiguous (consecutive PRD
    // entries often are), so a chunk carries more per submission.
    if (first > 0 && first < out.size() &&
        static_cast<uint8_t*>(out[first - 1].iov_base) + out[first - 1].iov_len ==
            out[first].iov_base) {
        out[first - 1].iov_len += out[first].iov_len;
        out.erase(out.begin() + static_cast<std::ptrdiff_t>(first));
    }
    return {};
}

Result<DmaPlan> walk_prd_table(const GuestMemory& memory, GuestAddress table, uint64_t bytes) {
    DmaPlan plan;
    uint64_t covered = 0;
    for (size_t i = 0; i < kMaxPrdEntries; ++i) {
        GuestAddress at;
        if (!table.checked_add(i * sizeof(PrdEntry), at))
            return make_error("PRD table at {:#x} wraps", table.value);
        // Copied out once: the guest may rewrite the table while we walk it.
        PrdEntry entry = RV_TRY(with_context(memory.read_obj<PrdEntry>(at), "PRD table"));
        uint64_t len = entry.byte_count & 0xFFFE;
        if (len == 0) len = 0x10000;
        bool last = (entry.flags & kPrdEndOfTable) != 0;
        uint64_t take = std::min(len, bytes - covered);
        RV_TRY_VOID(append_guest_iovecs(memory, GuestAddress(entry.address & ~1u), take, plan.iov));
        covered += take;
        if (covered == bytes) {
            plan.table_longer = take < len || !last;
            return plan;
        }
        if (last) return make_error("PRD table ends after {} of {} bytes", covered, bytes);
    }
    return make_error("PRD table longer than {} entries", kMaxPrdEntries);
}

std::vector<iovec> DmaCursor::next(size_t max_iovecs, uint64_t sector_size) {
    struct Piece {
        size_t index;   // into m_iov
        size_t offset;  // where in m_iov[index] the piece starts
    };
    std::vector<iovec> chunk;
    std::vector<Piece> pieces;
    uint64_t total = 0;
    for (size_t i = m_index; i < m_iov.size() && chunk.size() < max_iovecs; ++i) {
        size_t offset = i == m_index ? m_offset : 0;
        chunk.push_back(
            {static_cast<uint8_t*>(m_iov[i].iov_base) + offset, m_iov[i].iov_len - offset});
        pieces.push_back({i, offset});
        total += m_iov[i].iov_len - offset;
    }
    size_t next_index = pieces.empty() ? m_index : pieces.back().index + 1;
    size_t next_offset = 0;
    // Trim the tail back to a sector boundary; the cut bytes start the next
    // chunk, so the disk offset of every submission stays sector-aligned.
    uint64_t excess = total % sector_size;
    while (excess > 0 && !chunk.empty()) {
        uint64_t cut = std::min<uint64_t>(excess, chunk.back().iov_len);
        chunk.back().iov_len -= cut;
        excess -= cut;
        next_index = pieces.back().index;
        next_offset = pieces.back().offset + chunk.back().iov_len;
        if (chunk.back().iov_len == 0) {
            chunk.pop_back();
            pieces.pop_back();
        }
    }
    if (chunk.empty()) return chunk;
    m_index = next_index;
    m_offset = next_offset;
    return chunk;
}

}  // namespace rv::ide
