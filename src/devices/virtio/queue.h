// The split virtqueue (virtio 1.2, 2.7), device side. A Queue is validated
// once when the driver enables it (size a power of two, at most the device's
// maximum, ring alignment 16/2/4, all three rings inside guest memory); afterwards every descriptor
// index and buffer is still checked, chains are capped in length, and guest memory is passed in,
// never stored. Anything malformed is an error value: the device then reports DEVICE_NEEDS_RESET;
// nothing a guest writes can crash or hang the VMM.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include <boost/container/small_vector.hpp>

#include "base/error.h"
#include "memory/guest_memory.h"
#include "snapshot/state_codec.h"

namespace rv::virtio {

// Wire layout of one descriptor (2.7.5).
struct VirtqDesc {
    uint64_t addr;
    uint32_t len;
    uint16_t flags;
    uint16_t next;
};
static_assert(sizeof(VirtqDesc) == 16);

inline constexpr uint16_t kDescFNext = 1;
inline constexpr uint16_t kDescFWrite = 2;
inline constexpr uint16_t kDescFIndirect = 4;
inline constexpr uint16_t kAvailFNoInterrupt = 1;
inline constexpr uint16_t kUsedFNoNotify = 1;
inline constexpr uint16_t kMaxQueueSize = 32768;

// One buffer of a chain, bounds-checked against guest memory at pop time.
struct DescriptorBuffer {
    GuestAddress addr;
    uint32_t len{0};
    bool device_writable{false};
};

// A chain's buffers: up to 4 (an rx buffer, a block request's header, data
// and status) without a heap allocation, since every pop makes one.
using ChainBuffers = boost::container::small_vector<DescriptorBuffer, 4>;

// An available chain, flattened (indirect tables inlined). The spec puts
// device-readable buffers before device-writable ones; pop() enforces it.
struct DescriptorChain {
    uint16_t head{0};
    ChainBuffers buffers;
    uint64_t readable_bytes() const;
    uint64_t writable_bytes() const;
};

// Sequential copy-out of a chain's device-readable bytes.
class ChainReader {
  public:
    ChainReader(const GuestMemory& memory, const DescriptorChain& chain);
    // Copies min(out.size(), remaining) bytes; returns how many.
    Result<size_t> read(std::span<uint8_t> out);
    // Reads exactly sizeof(T) bytes or fails.
    template <typename T>
    Result<T> read_obj() {
        T value{};
        size_t n = RV_TRY(read(std::span(reinterpret_cast<uint8_t*>(&value), sizeof(T))));
        if (n != sizeof(T))
            return make_error("descriptor chain too short for a {}-byte header", sizeof(T));
        return value;
    }
    Result<void> skip(uint64_t bytes);
    uint64_t remaining() const { return m_remaining; }

  private:
    const GuestMemory& m_memory;
    ChainBuffers m_buffers;  // readable ones only
    size_t m_index{0};
    uint64_t m_offset{0};
    uint64_t m_remaining{0};
};

// Sequential copy-in to a chain's device-writable bytes.
class ChainWriter {
  public:
    ChainWriter(const GuestMemory& memory, const DescriptorChain& chain);
    // Copies min(in.size(), remaining) bytes; returns how many.
    Result<size_t> write(std::span<const uint8_t> in);
    uint64_t remaining() const { return m_remaining; }
    uint64_t written() const { return m_written; }
    // The writable buffers from the current position on, for scatter I/O
    // (e.g. readv into guest memory); advance() after filling them.
    std::vector<DescriptorBuffer> remaining_buffers() const;
    Result<void> advance(uint64_t bytes);

  private:
    const GuestMemory& m_memory;
    ChainBuffers m_buffers;  // writable ones only
    size_t m_index{0};
    uint64_t m_offset{0};
    uint64_t m_remaining{0};
    uint64_t m_written{0};
};

// What the driver programmed through the transport's common configuration.
struct QueueConfig {
    uint16_t size{0};
    GuestAddress desc;
    GuestAddress avail;  // "driver area"
    GuestAddress used;   // "device area"
};

class Queue {
  public:
    // Validates the layout against guest memory. max_size is the device's
    // maximum; event_idx / indirect are the negotiated ring features.
    static Result<Queue> create(const GuestMemory& memory, const QueueConfig& config,
                                uint16_t max_size, bool event_idx, bool indirect);

    uint16_t size() const { return m_config.size; }
    const QueueConfig& config() const { return m_config; }

    // The next available chain, nullopt if the driver has published none.
    // Errors: avail index moved by more than the queue size, descriptor index
    // out of range, a loop or a chain longer than the queue size (indirect
    // tables: longer than their own length), buffers outside guest memory or
    // wrapping, a nested indirect table, readable after writable, a zero-sized
    // indirect table. A malformed chain is still consumed (next_avail moves
    // past it) so a caller that logs and continues cannot spin on it; a bad
    // avail index consumes nothing. Zero-length buffers are accepted at any
    // address and left out of `buffers` (they carry no bytes).
    Result<std::optional<DescriptorChain>> pop(const GuestMemory& memory);
    // Gives a chain back to the ring unconsumed (e.g. no room for a packet yet).
    void undo_pop();

    // Returns a chain to the driver with `len` bytes written.
    Result<void> add_used(const GuestMemory& memory, uint16_t head, uint32_t len);
    // Writes the used element but leaves the used index alone until
    // publish_used: buffers that belong together (a merged rx packet, 5.1.6.4)
    // become visible to the driver at once.
    Result<void> add_used_unpublished(const GuestMemory& memory, uint16_t head, uint32_t len);
    Result<void> publish_used(const GuestMemory& memory);
    // After one or more add_used: whether the driver wants an interrupt now
    // (VIRTQ_AVAIL_F_NO_INTERRUPT, or used_event with EVENT_IDX). Tracks what
    // was signalled, so call it once per batch and signal if true.
    Result<bool> needs_notification(const GuestMemory& memory);
    // Asks the driver to (not) notify us of new buffers: the used ring's
    // NO_NOTIFY flag, or avail_event with EVENT_IDX. Enabling returns
    // whether buffers arrived meanwhile (re-check before sleeping).
    Result<bool> enable_notification(const GuestMemory& memory);
    Result<void> disable_notification(const GuestMemory& memory);

    // Index arithmetic of 2.7.10 (vring_need_event), exposed for tests.
    static bool need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx) {
        return static_cast<uint16_t>(new_idx - event_idx - 1) <
               static_cast<uint16_t>(new_idx - old_idx);
    }

    uint16_t next_avail() const { return m_next_avail; }
    uint16_t next_used() const { return m_next_used; }

    // Where the device is in the rings. The layout (QueueConfig) and the
    // ring features are the transport's state; a restored queue is made with
    // create() from them and then given its position, so the next pop()
    // takes the chain after the last one the original took and the next
    // used element goes where the original's would have.
    struct State {
        static constexpr uint32_t kVersion = 1;
        uint16_t next_avail{0};
        uint16_t next_used{0};
        uint16_t signalled_used{0};
        bool signalled_valid{false};

        void encode(snapshot::Writer& w) const {
            w.u16(next_avail);
            w.u16(next_used);
            w.u16(signalled_used);
            w.boolean(signalled_valid);
        }
        static State decode(snapshot::Reader& r) {
            State s;
            s.next_avail = r.u16();
            s.next_used = r.u16();
            s.signalled_used = r.u16();
            s.signalled_valid = r.boolean();
            return s;
        }
        bool operator==(const State&) const = default;
    };
    State save() const { return State{m_next_avail, m_next_used, m_signalled_used, m_signalled_valid}; }
    // Any 16-bit positions are possible (the indexes wrap), so nothing is
    // refused; a driver whose rings disagree with them gets the usual
    // errors from pop() and add_used().
    void restore(const State& s) {
        m_next_avail = s.next_avail;
        m_next_used = s.next_used;
        m_signalled_used = s.signalled_used;
        m_signalled_valid = s.signalled_valid;
    }

  private:
    Queue(const QueueConfig& config, bool event_idx, bool indirect)
        : m_config(config), m_event_idx(event_idx), m_indirect(indirect) {}

    QueueConfig m_config;
    bool m_event_idx{false};
    bool m_indirect{false};
    uint16_t m_next_avail{0};
    uint16_t m_next_used{0};
    uint16_t m_signalled_used{0};  // used idx when we last decided about an interrupt
    bool m_signalled_valid{false};
};

}  // namespace rv::virtio
