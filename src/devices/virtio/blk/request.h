// Turning one virtio-blk descriptor chain into a validated request (5.2.6).
// Parsing copies the header and segments out of guest memory and checks
// everything a guest controls (layout, lengths, sector ranges, features, the
// advertised size_max and seg_max) before any I/O is issued; data buffers
// become host iovecs into guest RAM so the backend transfers without a copy.
// The limits bound a request to seg_max * size_max bytes (254 MiB), so
// the work one request makes on the host stays in proportion.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/error.h"
#include "devices/virtio/blk/blk_wire.h"
#include "devices/virtio/queue.h"
#include "memory/guest_memory.h"

namespace rv::virtio::blk {

// What the parser needs to know about the disk and the negotiation.
struct RequestLimits {
    uint64_t capacity_sectors{0};
    bool read_only{false};
    uint64_t acked_features{0};
    uint32_t max_discard_sectors{0};
    uint32_t max_discard_seg{0};
    uint32_t max_write_zeroes_sectors{0};
    uint32_t max_write_zeroes_seg{0};
    size_t max_iovecs{1024};
    // What config space advertises (5.2.4): the largest data segment (one
    // buffer's share of the data) and the most segments in a request.
    uint32_t size_max{0};
    uint32_t seg_max{0};
};

struct Segment {
    uint64_t offset;  // bytes
    uint64_t len;     // bytes
};

struct Request {
    uint16_t queue{0};  // the device's: which queue the chain came from
    uint16_t head{0};
    uint32_t type{0};
    uint64_t sector{0};
    // Status to report without touching the backend; kSOk means "do the I/O"
    // (or for GET_ID: write the serial).
    uint8_t status{kSOk};
    GuestAddress status_addr;  // the last writable byte of the chain
    uint32_t used_len{0};      // all writable bytes: the status byte is the last of them
    // IN: where to read into (unmarked for dirty tracking: the device marks
    // them when the read completes); OUT: what to write.
    std::vector<iovec> data;
    uint64_t data_len{0};
    std::vector<DescriptorBuffer> id_buffers;  // GET_ID: writable data buffers
    std::vector<Segment> segments;             // DISCARD / WRITE_ZEROES
    // Set (with status IOERR) when the request broke an advertised limit: a
    // driver ignoring the config space, worth a (rate-limited) warning.
    const char* over_limit{nullptr};
};

// Parses a chain. An error means the chain has no writable status byte (or
// is too large to report), so no status can be given: the caller returns it
// with len 0 and flags the device for reset. Every other problem is a
// Request with status IOERR or UNSUPP.
Result<Request> parse_request(const GuestMemory& memory, const DescriptorChain& chain,
                              const RequestLimits& limits);

// Writes the 20-byte serial (zero-padded) into the GET_ID buffers.
Result<void> write_id(const GuestMemory& memory, const Request& request, const std::string& serial);

}  // namespace rv::virtio::blk
