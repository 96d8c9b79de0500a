// The split virtqueue, device side (virtio 1.2, 2.7). Every ring field is
// copied out of guest memory once, validated, then acted on; no reference into
// guest RAM outlives a single GuestMemory::read. The driver runs concurrently
// on another CPU, so the ordering points of 2.7.13 are explicit fences.
#include "devices/virtio/queue.h"

#include <algorithm>
#include <atomic>
#include <bit>
#include <limits>

namespace rv::virtio {

// Virtio 1.x rings are little-endian; we copy fields as host integers.
static_assert(std::endian::native == std::endian::little, "ring fields are copied as host ints");

namespace {

// Ring layout offsets (2.7.6, 2.7.8). The trailing u16 of each ring is the
// EVENT_IDX field of the other side; it is part of the ring's extent.
constexpr uint64_t kRingHeader = 4;  // flags + idx
constexpr uint64_t kUsedElemSize = 8;
constexpr uint64_t kDescSize = sizeof(VirtqDesc);

// Largest indirect table we walk: as many descriptors as the largest queue.
// Bounds the work a single pop can be made to do.
constexpr uint64_t kMaxIndirectDescs = kMaxQueueSize;

struct UsedElem {
    uint32_t id;
    uint32_t len;
};
static_assert(sizeof(UsedElem) == 8);

uint64_t desc_table_bytes(uint16_t size) {
    return kDescSize * size;
}
uint64_t avail_ring_bytes(uint16_t size) {
    return kRingHeader + 2ull * size + 2;
}
uint64_t used_ring_bytes(uint16_t size) {
    return kRingHeader + kUsedElemSize * size + 2;
}

// Half-open ranges; callers have already checked that start + len does not wrap.
bool overlaps(uint64_t a, uint64_t a_len, uint64_t b, uint64_t b_len) {
    return a < b + b_len && b < a + a_len;
}

uint64_t saturating_add(uint64_t a, uint64_t b) {
    uint64_t sum;
    return __builtin_add_overflow(a, b, &sum) ? std::numeric_limits<uint64_t>::max() : sum;
}

// Ring fields the driver changes while we read them (indexes, flags, event
// fields) go through single-access loads and stores: a torn index would look
// like the driver publishing 256 more buffers than it has. Offsets are within
// the extent validated by Queue::create (no wrap) and even on rings that
// Queue::create checked for alignment.
Result<uint16_t> read_u16(const GuestMemory& memory, GuestAddress base, uint64_t offset) {
    return memory.load_u16(GuestAddress(base.value + offset));
}

Result<void> write_u16(const GuestMemory& memory, GuestAddress base, uint64_t offset,
                       uint16_t value) {
    return memory.store_u16(GuestAddress(base.value + offset), value);
}

// Walks state for one pop: order check and flattening shared by the direct
// and the indirect part of a chain.
struct ChainBuilder {
    const GuestMemory& memory;
    DescriptorChain chain;
    bool seen_writable{false};

    Result<void> add(const VirtqDesc& desc) {
        bool writable = desc.flags & kDescFWrite;
        if (!writable && seen_writable)
            return make_error("descriptor chain {}: device-readable buffer after a writable one",
                              chain.head);
        seen_writable |= writable;
        if (!memory.check_range(GuestAddress(desc.addr), desc.len))
            return make_error("descriptor chain {}: buffer {:#x}+{:#x} outside guest memory",
                              chain.head, desc.addr, desc.len);
        // Zero-length buffers are legal but carry no bytes: they are validated
        // (including the readable/writable order) and then dropped, so devices
        // never see an empty DescriptorBuffer.
        if (desc.len != 0) chain.buffers.push_back({GuestAddress(desc.addr), desc.len, writable});
        return {};
    }
};

// The device MUST handle zero or more direct descriptors followed by one
// indirect descriptor (2.7.5.3.2); this walks that last one's table.
Result<void> walk_indirect(const GuestMemory& memory, const VirtqDesc& desc, bool negotiated,
                           ChainBuilder& builder) {
    const uint16_t head = builder.chain.head;
    if (!negotiated)
        return make_error("descriptor chain {}: indirect descriptor, feature not negotiated", head);
    if (desc.flags & kDescFNext)
        return make_error("descriptor chain {}: indirect descriptor with NEXT set", head);
    if (desc.len == 0 || desc.len % kDescSize)
        return make_error(
            "descriptor chain {}: indirect table length {} not a non-zero "
            "multiple of 16",
            head, desc.len);
    uint64_t count = desc.len / kDescSize;
    if (count > kMaxIndirectDescs)
        return make_error("descriptor chain {}: indirect table of {} entries exceeds {}", head,
                          count, kMaxIndirectDescs);
    if (!memory.check_range(GuestAddress(desc.addr), desc.len))
        return make_error("descriptor chain {}: indirect table {:#x}+{:#x} outside guest memory",
                          head, desc.addr, desc.len);
    uint64_t index = 0;
    for (uint64_t visited = 0;; ++visited) {
        if (visited >= count)
            return make_error("descriptor chain {}: indirect chain longer than its table of {}",
                              head, count);
        // In range: index < count and the table extent was checked above.
        auto entry =
            RV_TRY(memory.read_obj<VirtqDesc>(GuestAddress(desc.addr + kDescSize * index)));
        if (entry.flags & kDescFIndirect)
            return make_error("descriptor chain {}: nested indirect table", head);
        RV_TRY_VOID(builder.add(entry));
        if (!(entry.flags & kDescFNext)) return {};
        if (entry.next >= count)
            return make_error("descriptor chain {}: indirect next index {} >= table size {}", head,
                              entry.next, count);
        index = entry.next;
    }
}

// The buffers of `chain` with the given direction, in order.
ChainBuffers filter_buffers(const DescriptorChain& chain, bool writable) {
    ChainBuffers out;
    for (const auto& b : chain.buffers)
        if (b.device_writable == writable) out.push_back(b);
    return out;
}

}  // namespace

uint64_t DescriptorChain::readable_bytes() const {
    uint64_t total = 0;
    for (const auto& b : buffers)
        if (!b.device_writable) total = saturating_add(total, b.len);
    return total;
}

uint64_t DescriptorChain::writable_bytes() const {
    uint64_t total = 0;
    for (const auto& b : buffers)
        if (b.device_writable) total = saturating_add(total, b.len);
    return total;
}

// ---- Queue -------------------------------------------------------------

Result<Queue> Queue::create(const GuestMemory& memory, const QueueConfig& config, uint16_t max_size,
                            bool event_idx, bool indirect) {
    uint16_t limit = std::min(max_size, kMaxQueueSize);
    if (config.size == 0 || !std::has_single_bit(config.size) || config.size > limit)
        return make_error("queue size {} is not a power of two in 1..{}", config.size, limit);
    if (config.desc.value % 16)
        return make_error("descriptor table {:#x} not 16-byte aligned", config.desc.value);
    if (config.avail.value % 2)
        return make_error("available ring {:#x} not 2-byte aligned", config.avail.value);
    if (config.used.value % 4)
        return make_error("used ring {:#x} not 4-byte aligned", config.used.value);

    struct Area {
        const char* name;
        uint64_t start;
        uint64_t len;
    };
    const Area areas[] = {
        {"descriptor table", config.desc.value, desc_table_bytes(config.size)},
        {"available ring", config.avail.value, avail_ring_bytes(config.size)},
        {"used ring", config.used.value, used_ring_bytes(config.size)},
    };
    // check_range fails on start + len wrapping, so the overlap test below
    // can add freely.
    for (const auto& a : areas)
        if (!memory.check_range(GuestAddress(a.start), a.len))
            return make_error("{} {:#x}+{:#x} outside guest memory", a.name, a.start, a.len);
    for (size_t i = 0; i < std::size(areas); ++i)
        for (size_t j = i + 1; j < std::size(areas); ++j)
            if (overlaps(areas[i].start, areas[i].len, areas[j].start, areas[j].len))
                return make_error("{} {:#x}+{:#x} overlaps {} {:#x}+{:#x}", areas[i].name,
                                  areas[i].start, areas[i].len, areas[j].name, areas[j].start,
                                  areas[j].len);
    return Queue(config, event_idx, indirect);
}

Result<std::optional<DescriptorChain>> Queue::pop(const GuestMemory& memory) {
    const uint16_t size = m_config.size;
    uint16_t avail_idx = RV_TRY(read_u16(memory, m_config.avail, 2));
    uint16_t pending = static_cast<uint16_t>(avail_idx - m_next_avail);
    if (pending == 0) return std::optional<DescriptorChain>{};
    if (pending > size) return make_error("avail index moved by {} (queue size {})", pending, size);
    // Pairs with the driver's write barrier before its idx store: the ring
    // entry and descriptors it published are read only after idx (2.7.13.3).
    std::atomic_thread_fence(std::memory_order_acquire);

    uint16_t slot = m_next_avail % size;
    uint16_t head = RV_TRY(read_u16(memory, m_config.avail, kRingHeader + 2ull * slot));
    // The entry is consumed whatever its contents: a device that logs a bad
    // chain and carries on must not trip over the same one forever.
    ++m_next_avail;
    if (head >= size)
        return make_error("avail ring entry {} has head {} >= size {}", slot, head, size);

    ChainBuilder builder{memory, DescriptorChain{head, {}}};
    uint16_t index = head;
    // A chain touches each table entry at most once, so more than `size`
    // descriptors means a loop (2.7.5.3.1).
    for (uint32_t visited = 0;; ++visited) {
        if (visited >= size)
            return make_error("descriptor chain {} longer than queue size {} (loop?)", head, size);
        auto desc = RV_TRY(
            memory.read_obj<VirtqDesc>(GuestAddress(m_config.desc.value + kDescSize * index)));
        if (desc.flags & kDescFIndirect) {
            RV_TRY_VOID(walk_indirect(memory, desc, m_indirect, builder));
            break;  // an indirect descriptor never has NEXT, so it ends the chain
        }
        RV_TRY_VOID(builder.add(desc));
        if (!(desc.flags & kDescFNext)) break;
        if (desc.next >= size)
            return make_error("descriptor chain {}: next index {} >= size {}", head, desc.next,
                              size);
        index = desc.next;
    }
    return std::optional<DescriptorChain>(std::move(builder.chain));
}

void Queue::undo_pop() {
    --m_next_avail;
}

Result<void> Queue::add_used(const GuestMemory& memory, uint16_t head, uint32_t len) {
    RV_TRY_VOID(add_used_unpublished(memory, head, len));
    return publish_used(memory);
}

Result<void> Queue::add_used_unpublished(const GuestMemory& memory, uint16_t head, uint32_t len) {
    const uint16_t size = m_config.size;
    if (head >= size) return make_error("add_used: head {} >= queue size {}", head, size);
    uint16_t slot = m_next_used % size;
    RV_TRY_VOID(
        memory.write_obj(GuestAddress(m_config.used.value + kRingHeader + kUsedElemSize * slot),
                         UsedElem{head, len}));
    ++m_next_used;
    // After 65536 unsignalled completions the old/new comparison of
    // need_event becomes meaningless; force the next decision to notify.
    if (m_next_used == m_signalled_used) m_signalled_valid = false;
    return {};
}

Result<void> Queue::publish_used(const GuestMemory& memory) {
    // The elements must be visible before the index that publishes them (2.7.8.2).
    std::atomic_thread_fence(std::memory_order_release);
    return write_u16(memory, m_config.used, 2, m_next_used);
}

Result<bool> Queue::needs_notification(const GuestMemory& memory) {
    uint16_t old_used = m_signalled_used;
    bool was_valid = m_signalled_valid;
    m_signalled_used = m_next_used;
    m_signalled_valid = true;
    if (was_valid && old_used == m_next_used) return false;  // nothing new since last time
    // Our used idx store must be visible before we read the driver's
    // suppression state, or we could both decide the other will act (2.7.10).
    std::atomic_thread_fence(std::memory_order_seq_cst);

    if (m_event_idx) {
        uint16_t used_event = RV_TRY(read_u16(memory, m_config.avail, kRingHeader + 2ull * size()));
        if (!was_valid) return true;
        return need_event(used_event, m_next_used, old_used);
    }
    uint16_t flags = RV_TRY(read_u16(memory, m_config.avail, 0));
    return !(flags & kAvailFNoInterrupt);
}

Result<bool> Queue::enable_notification(const GuestMemory& memory) {
    if (m_event_idx) {
        // Ask to be notified once the driver publishes past next_avail.
        RV_TRY_VOID(
            write_u16(memory, m_config.used, kRingHeader + kUsedElemSize * size(), m_next_avail));
    } else {
        RV_TRY_VOID(write_u16(memory, m_config.used, 0, 0));
    }
    // The store above must be visible before we re-read avail idx, or a
    // buffer the driver published meanwhile (without notifying) is missed.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    uint16_t avail_idx = RV_TRY(read_u16(memory, m_config.avail, 2));
    return avail_idx != m_next_avail;
}

Result<void> Queue::disable_notification(const GuestMemory& memory) {
    // With EVENT_IDX there is nothing to write: the driver notifies only when
    // avail idx passes avail_event, which we stop advancing until re-enabled.
    if (m_event_idx) return {};
    return write_u16(memory, m_config.used, 0, kUsedFNoNotify);
}

// ---- ChainReader / ChainWriter ----------------------------------------

ChainReader::ChainReader(const GuestMemory& memory, const DescriptorChain& chain)
    : m_memory(memory),
      m_buffers(filter_buffers(chain, false)),
      m_remaining(chain.readable_bytes()) {}

Result<size_t> ChainReader::read(std::span<uint8_t> out) {
    size_t done = 0;
    while (done < out.size() && m_index < m_buffers.size()) {
        const auto& b = m_buffers[m_index];
        uint64_t n = std::min<uint64_t>(out.size() - done, b.len - m_offset);
        // Buffers were range-checked at pop, so addr + offset cannot wrap.
        RV_TRY_VOID(m_memory.read(GuestAddress(b.addr.value + m_offset), out.subspan(done, n)));
        done += n;
        m_remaining -= n;
        m_offset += n;
        if (m_offset == b.len) {
            ++m_index;
            m_offset = 0;
        }
    }
    return done;
}

Result<void> ChainReader::skip(uint64_t bytes) {
    if (bytes > m_remaining)
        return make_error("skip of {} bytes past the {} readable bytes left", bytes, m_remaining);
    m_remaining -= bytes;
    while (bytes > 0) {
        uint64_t n = std::min(bytes, m_buffers[m_index].len - m_offset);
        bytes -= n;
        m_offset += n;
        if (m_offset == m_buffers[m_index].len) {
            ++m_index;
            m_offset = 0;
        }
    }
    return {};
}

ChainWriter::ChainWriter(const GuestMemory& memory, const DescriptorChain& chain)
    : m_memory(memory),
      m_buffers(filter_buffers(chain, true)),
      m_remaining(chain.writable_bytes()) {}

Result<size_t> ChainWriter::write(std::span<const uint8_t> in) {
    size_t done = 0;
    while (done < in.size() && m_index < m_buffers.size()) {
        const auto& b = m_buffers[m_index];
        uint64_t n = std::min<uint64_t>(in.size() - done, b.len - m_offset);
        RV_TRY_VOID(m_memory.write(GuestAddress(b.addr.value + m_offset), in.subspan(done, n)));
        done += n;
        RV_TRY_VOID(advance(n));
    }
    return done;
}

std::vector<DescriptorBuffer> ChainWriter::remaining_buffers() const {
    std::vector<DescriptorBuffer> out;
    for (size_t i = m_index; i < m_buffers.size(); ++i) {
        DescriptorBuffer b = m_buffers[i];
        if (i == m_index) {
            b.addr.value += m_offset;
            b.len -= static_cast<uint32_t>(m_offset);
        }
        out.push_back(b);
    }
    return out;
}

Result<void> ChainWriter::advance(uint64_t bytes) {
    if (bytes > m_remaining)
        return make_error("advance of {} bytes past the {} writable bytes left", bytes,
                          m_remaining);
    m_remaining -= bytes;
    m_written += bytes;
    while (bytes > 0) {
        uint64_t n = std::min(bytes, m_buffers[m_index].len - m_offset);
        bytes -= n;
        m_offset += n;
        if (m_offset == m_buffers[m_index].len) {
            ++m_index;
            m_offset = 0;
        }
    }
    return {};
}

}  // namespace rv::virtio
