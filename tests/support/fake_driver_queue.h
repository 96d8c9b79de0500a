// The driver side of a split virtqueue, for device tests: lays out the three
// rings in a GuestMemory, publishes descriptor chains the way a Linux driver
// would, reads back the used ring, and offers raw pokes for malicious rings.
//
//   auto mem = ...GuestMemory::create(1 MiB)...;
//   FakeDriverQueue q(mem, 16);                     // rings at 0x1000, data after
//   auto queue = q.create_queue();                  // rv::virtio::Queue over it
//   uint16_t head = q.add_chain({{"request", false}, {512, true}});
//   ... device pops and completes ...
//   auto used = q.pop_used();                       // {id, len}, frees descriptors
//   auto bytes = q.writable_data(head, used->len);  // what the device wrote
//
// Failures of the fake itself (out of descriptors or data space) throw
// std::runtime_error, which GoogleTest reports as a test failure.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "devices/virtio/queue.h"
#include "memory/guest_memory.h"

namespace rv::test {

// One buffer of a chain as the driver describes it.
struct BufferSpec {
    std::vector<uint8_t> data;  // initial contents (device-readable payload)
    uint32_t len{0};            // buffer size; >= data.size()
    bool writable{false};

    // {"payload", false}: a buffer holding these bytes.
    BufferSpec(std::string_view bytes, bool device_writable = false)
        : data(bytes.begin(), bytes.end()),
          len(static_cast<uint32_t>(bytes.size())),
          writable(device_writable) {}
    BufferSpec(std::span<const uint8_t> bytes, bool device_writable = false)
        : data(bytes.begin(), bytes.end()),
          len(static_cast<uint32_t>(bytes.size())),
          writable(device_writable) {}
    BufferSpec(const std::vector<uint8_t>& bytes, bool device_writable = false)
        : BufferSpec(std::span<const uint8_t>(bytes), device_writable) {}
    // {512, true}: an empty (zeroed) buffer of this size.
    BufferSpec(uint32_t size, bool device_writable) : len(size), writable(device_writable) {}
    BufferSpec(int size, bool device_writable)
        : BufferSpec(static_cast<uint32_t>(size), device_writable) {}
};

// Plain anonymous guest RAM at [0, size) for unit tests.
inline GuestMemory make_test_memory(uint64_t size = 1 << 20) {
    GuestMemory::RegionSpec spec{GuestAddress(0), size};
    auto memory = GuestMemory::create(std::span(&spec, 1));
    if (!memory) throw std::runtime_error("test memory: " + memory.error().message());
    return std::move(*memory);
}

struct UsedElem {
    uint32_t id;
    uint32_t len;
    bool operator==(const UsedElem&) const = default;
};

class FakeDriverQueue {
  public:
    // Explicit layout: rings where `config` says, buffers bump-allocated from
    // [data, data + data_size). Clears the rings.
    FakeDriverQueue(const GuestMemory& memory, const virtio::QueueConfig& config, GuestAddress data,
                    uint64_t data_size)
        : m_memory(memory),
          m_config(config),
          m_data(data),
          m_data_size(data_size),
          m_desc_in_use(config.size, false) {
        clear_rings();
    }

    // Packed layout: descriptor table at `ring_base`, avail ring right after,
    // used ring 4-aligned after that; buffers from the next page to the end
    // of the memory region holding the rings.
    FakeDriverQueue(const GuestMemory& memory, uint16_t size,
                    GuestAddress ring_base = GuestAddress(0x1000))
        : FakeDriverQueue(memory, packed_layout(size, ring_base),
                          data_after(packed_layout(size, ring_base)),
                          data_size_after(memory, packed_layout(size, ring_base))) {}

    static virtio::QueueConfig packed_layout(uint16_t size, GuestAddress base) {
        uint64_t avail = base.value + 16ull * size;
        uint64_t used = (avail + 6 + 2ull * size + 3) & ~3ull;
        return {size, base, GuestAddress(avail), GuestAddress(used)};
    }

    const virtio::QueueConfig& config() const { return m_config; }
    uint16_t size() const { return m_config.size; }
    const GuestMemory& memory() const { return m_memory; }

    // A device-side Queue over these rings.
    Result<virtio::Queue> create_queue(uint16_t max_size = virtio::kMaxQueueSize,
                                       bool event_idx = false, bool indirect = false) const {
        return virtio::Queue::create(m_memory, m_config, max_size, event_idx, indirect);
    }

    // ---- Building and publishing chains ----------------------------------

    // Writes a chain into free descriptors (in the given order, NEXT-linked)
    // and publishes it. Returns the head index.
    uint16_t add_chain(const std::vector<BufferSpec>& buffers) {
        uint16_t head = build_chain(buffers);
        publish(head);
        return head;
    }

    // Writes the chain without publishing it (for tests that poke first).
    uint16_t build_chain(const std::vector<BufferSpec>& buffers) {
        if (buffers.empty()) throw std::runtime_error("FakeDriverQueue: empty chain");
        std::vector<uint16_t> ids = alloc_descs(buffers.size());
        std::vector<Buffer> placed;
        for (size_t i = 0; i < buffers.size(); ++i) {
            Buffer b = place(buffers[i]);
            placed.push_back(b);
            bool last = i + 1 == buffers.size();
            set_desc(ids[i], {b.addr.value, b.len, flags_for(b.writable, !last),
                              last ? uint16_t{0} : ids[i + 1]});
        }
        m_chains[ids[0]] = Chain{ids, std::move(placed), false};
        return ids[0];
    }

    // One ring descriptor pointing at an indirect table holding `buffers`.
    uint16_t add_indirect_chain(const std::vector<BufferSpec>& buffers) {
        uint16_t head = build_indirect_chain(buffers);
        publish(head);
        return head;
    }

    uint16_t build_indirect_chain(const std::vector<BufferSpec>& buffers) {
        if (buffers.empty()) throw std::runtime_error("FakeDriverQueue: empty chain");
        uint32_t table_len = static_cast<uint32_t>(16 * buffers.size());
        GuestAddress table = alloc_data(table_len, 16);
        std::vector<Buffer> placed;
        for (size_t i = 0; i < buffers.size(); ++i) {
            Buffer b = place(buffers[i]);
            placed.push_back(b);
            bool last = i + 1 == buffers.size();
            virtio::VirtqDesc d{b.addr.value, b.len, flags_for(b.writable, !last),
                                static_cast<uint16_t>(last ? 0 : i + 1)};
            check(m_memory.write_obj(GuestAddress(table.value + 16 * i), d));
        }
        std::vector<uint16_t> ids = alloc_descs(1);
        set_desc(ids[0], {table.value, table_len, virtio::kDescFIndirect, 0});
        m_chains[ids[0]] = Chain{ids, std::move(placed), false};
        return ids[0];
    }

    // Puts `head` in the next avail slot, then bumps avail idx (what a driver
    // does; the fake is single-threaded so no barrier is needed).
    void publish(uint16_t head) {
        uint16_t idx = avail_idx();
        set_avail_ring(idx % size(), head);
        set_avail_idx(static_cast<uint16_t>(idx + 1));
    }

    // ---- Reading back completions ----------------------------------------

    uint16_t used_idx() const { return read16(m_config.used, 2); }
    UsedElem used_elem(uint16_t slot) const {
        return read<UsedElem>(GuestAddress(m_config.used.value + 4 + 8ull * (slot % size())));
    }
    uint16_t used_flags() const { return read16(m_config.used, 0); }
    uint16_t avail_event() const { return read16(m_config.used, 4 + 8ull * size()); }

    // The next completion the driver has not seen yet; frees its descriptors.
    std::optional<UsedElem> pop_used() {
        if (m_last_used == used_idx()) return std::nullopt;
        UsedElem e = used_elem(m_last_used++);
        free_chain(e.id);
        return e;
    }

    // Contents of buffer `index` of the chain published as `head`.
    std::vector<uint8_t> buffer_data(uint16_t head, size_t index) const {
        const Buffer& b = chain(head).buffers.at(index);
        std::vector<uint8_t> out(b.len);
        check(m_memory.read(b.addr, out));
        return out;
    }
    // The first `len` bytes of the chain's writable buffers, concatenated:
    // what the device wrote (len is usually the used element's len).
    std::vector<uint8_t> writable_data(uint16_t head, uint64_t len = ~0ull) const {
        std::vector<uint8_t> out;
        for (const Buffer& b : chain(head).buffers) {
            if (!b.writable || out.size() >= len) continue;
            uint64_t n = std::min<uint64_t>(b.len, len - out.size());
            size_t at = out.size();
            out.resize(at + n);
            check(m_memory.read(b.addr, std::span(out).subspan(at, n)));
        }
        return out;
    }
    std::string writable_string(uint16_t head, uint64_t len = ~0ull) const {
        auto bytes = writable_data(head, len);
        return std::string(bytes.begin(), bytes.end());
    }
    GuestAddress buffer_addr(uint16_t head, size_t index) const {
        return chain(head).buffers.at(index).addr;
    }

    // ---- Raw pokes for malicious rings -----------------------------------

    void set_desc(uint16_t index, const virtio::VirtqDesc& desc) {
        check(m_memory.write_obj(GuestAddress(m_config.desc.value + 16ull * index), desc));
    }
    virtio::VirtqDesc desc(uint16_t index) const {
        return read<virtio::VirtqDesc>(GuestAddress(m_config.desc.value + 16ull * index));
    }
    void set_avail_idx(uint16_t idx) { write16(m_config.avail, 2, idx); }
    uint16_t avail_idx() const { return read16(m_config.avail, 2); }
    void set_avail_ring(uint16_t slot, uint16_t head) {
        write16(m_config.avail, 4 + 2ull * slot, head);
    }
    void set_avail_flags(uint16_t flags) { write16(m_config.avail, 0, flags); }
    void set_used_event(uint16_t idx) { write16(m_config.avail, 4 + 2ull * size(), idx); }
    // Publishes a raw head (no descriptors written), e.g. an out-of-range one.
    void publish_raw(uint16_t head) { publish(head); }
    // Lets the driver-side index start anywhere (pair with a device Queue that
    // has consumed as many entries, e.g. for 16-bit wrap-around tests).
    void set_last_used(uint16_t idx) { m_last_used = idx; }

    // Bump allocation from the data area; wraps to its start when full, so
    // long tests recycle space (older buffers may then be overwritten).
    GuestAddress alloc_data(uint64_t len, uint64_t align = 8) {
        uint64_t at = (m_data_used + align - 1) & ~(align - 1);
        if (at + len > m_data_size) at = 0;
        if (len > m_data_size) throw std::runtime_error("FakeDriverQueue: data area too small");
        m_data_used = at + len;
        return GuestAddress(m_data.value + at);
    }
    void write_data(GuestAddress addr, std::span<const uint8_t> bytes) {
        check(m_memory.write(addr, bytes));
    }

    size_t free_descriptors() const {
        size_t n = 0;
        for (bool used : m_desc_in_use) n += !used;
        return n;
    }

  private:
    struct Buffer {
        GuestAddress addr;
        uint32_t len;
        bool writable;
    };
    struct Chain {
        std::vector<uint16_t> descs;
        std::vector<Buffer> buffers;
        bool freed{false};
    };

    static GuestAddress data_after(const virtio::QueueConfig& c) {
        uint64_t end = c.used.value + 6 + 8ull * c.size;
        return GuestAddress((end + 4095) & ~4095ull);
    }
    static uint64_t data_size_after(const GuestMemory& memory, const virtio::QueueConfig& c) {
        GuestAddress data = data_after(c);
        for (const auto& r : memory.regions())
            if (r.start.value <= data.value && data.value < r.end()) return r.end() - data.value;
        throw std::runtime_error("FakeDriverQueue: no guest memory after the rings");
    }

    static uint16_t flags_for(bool writable, bool next) {
        return static_cast<uint16_t>((writable ? virtio::kDescFWrite : 0) |
                                     (next ? virtio::kDescFNext : 0));
    }

    static void check(const Result<void>& r) {
        if (!r) throw std::runtime_error("FakeDriverQueue: " + r.error().message());
    }
    template <typename T>
    T read(GuestAddress addr) const {
        auto v = m_memory.read_obj<T>(addr);
        if (!v) throw std::runtime_error("FakeDriverQueue: " + v.error().message());
        return *v;
    }
    uint16_t read16(GuestAddress base, uint64_t offset) const {
        return read<uint16_t>(GuestAddress(base.value + offset));
    }
    void write16(GuestAddress base, uint64_t offset, uint16_t v) {
        check(m_memory.write_obj(GuestAddress(base.value + offset), v));
    }

    void clear_rings() {
        check(m_memory.fill(m_config.desc, 0, 16ull * size()));
        check(m_memory.fill(m_config.avail, 0, 6 + 2ull * size()));
        check(m_memory.fill(m_config.used, 0, 6 + 8ull * size()));
    }

    Buffer place(const BufferSpec& spec) {
        if (spec.data.size() > spec.len) throw std::runtime_error("FakeDriverQueue: data > len");
        GuestAddress addr = alloc_data(spec.len);
        check(m_memory.fill(addr, 0, spec.len));
        check(m_memory.write(addr, spec.data));
        return {addr, spec.len, spec.writable};
    }

    std::vector<uint16_t> alloc_descs(size_t n) {
        std::vector<uint16_t> ids;
        for (uint32_t i = 0; i < size() && ids.size() < n; ++i) {
            uint16_t id = static_cast<uint16_t>((m_desc_cursor + i) % size());
            if (!m_desc_in_use[id]) ids.push_back(id);
        }
        if (ids.size() < n) throw std::runtime_error("FakeDriverQueue: out of descriptors");
        for (uint16_t id : ids) m_desc_in_use[id] = true;
        m_desc_cursor = static_cast<uint16_t>((ids.back() + 1) % size());
        return ids;
    }

    // The chain's record stays (for writable_data after pop_used) until its
    // head is reused; `freed` keeps a repeated used id from freeing twice.
    void free_chain(uint32_t head) {
        auto it = m_chains.find(head);
        if (it == m_chains.end() || it->second.freed) return;  // raw-poked, or already
        for (uint16_t id : it->second.descs) m_desc_in_use[id] = false;
        it->second.freed = true;
    }

    const Chain& chain(uint16_t head) const {
        auto it = m_chains.find(head);
        if (it == m_chains.end()) throw std::runtime_error("FakeDriverQueue: unknown head");
        return it->second;
    }

    const GuestMemory& m_memory;
    virtio::QueueConfig m_config;
    GuestAddress m_data;
    uint64_t m_data_size;
    uint64_t m_data_used{0};
    std::vector<bool> m_desc_in_use;
    uint16_t m_desc_cursor{0};
    uint16_t m_last_used{0};
    std::map<uint32_t, Chain> m_chains;
};

}  // namespace rv::test
