#include "devices/virtio/blk/request.h"

#include <algorithm>
#include <cstring>
#include <limits>

#include "base/log.h"

namespace rv::virtio::blk {
namespace {

// Calls fn(address, length) for each buffer's share of the [skip, skip + len)
// readable (or writable) bytes of the chain, in order: the request's data
// segments (the header's or the status byte's buffer included when it
// carries data too). Stops at fn's first error; the bytes not covered by the
// chain are returned.
template <typename Fn>
Result<uint64_t> for_each_segment(const DescriptorChain& chain, bool writable, uint64_t skip,
                                  uint64_t len, Fn&& fn) {
    for (const DescriptorBuffer& b : chain.buffers) {
        if (b.device_writable != writable || len == 0) continue;
        if (skip >= b.len) {
            skip -= b.len;
            continue;
        }
        uint64_t take = std::min<uint64_t>(b.len - skip, len);
        RV_TRY_VOID(fn(GuestAddress(b.addr.value + skip), take));
        skip = 0;
        len -= take;
    }
    return len;
}

// The segments as host iovecs.
Result<void> collect_iovecs(const GuestMemory& memory, const DescriptorChain& chain, bool writable,
                            uint64_t skip, uint64_t len, std::vector<iovec>& out) {
    auto append = [&](GuestAddress a, uint64_t n) { return memory.append_iovecs(a, n, out); };
    uint64_t left = RV_TRY(for_each_segment(chain, writable, skip, len, append));
    if (left != 0) return make_error("chain shorter than its data");
    return {};
}

// Null if the segments are within the advertised limits, else what is wrong.
const char* check_segments(const DescriptorChain& chain, bool writable, uint64_t skip, uint64_t len,
                           const RequestLimits& limits) {
    uint64_t segments = 0;
    const char* problem = nullptr;
    auto count = [&](GuestAddress, uint64_t n) -> Result<void> {
        if (n > limits.size_max)
            problem = "a data segment is larger than size_max";
        else if (++segments > limits.seg_max)
            problem = "more data segments than seg_max";
        if (problem) return make_error("{}", problem);
        return {};
    };
    (void)for_each_segment(chain, writable, skip, len, count);
    return problem;
}

bool sectors_ok(uint64_t sector, uint64_t count, uint64_t capacity) {
    return sector <= capacity && count <= capacity - sector;
}

}  // namespace

Result<Request> parse_request(const GuestMemory& memory, const DescriptorChain& chain,
                              const RequestLimits& limits) {
    Request req;
    req.head = chain.head;

    // The status byte is the last byte of the last non-empty writable buffer;
    // without one nothing can be reported back.
    const DescriptorBuffer* last = nullptr;
    for (auto it = chain.buffers.rbegin(); it != chain.buffers.rend() && it->device_writable;
         ++it) {
        if (it->len > 0) {
            last = &*it;
            break;
        }
    }
    if (!last) return make_error("request {} has no writable status byte", chain.head);
    uint64_t writable = chain.writable_bytes();
    if (writable > std::numeric_limits<uint32_t>::max())
        return make_error("request {} has {} writable bytes, more than a used length can report",
                          chain.head, writable);
    req.used_len = static_cast<uint32_t>(writable);
    req.status_addr = GuestAddress(last->addr.value + last->len - 1);

    auto fail = [&](uint8_t status, std::string_view why) -> Result<Request> {
        log::debug("virtio-blk: request {} (type {}): {}", chain.head, req.type, why);
        req.status = status;
        req.data.clear();
        req.data_len = 0;
        req.id_buffers.clear();
        req.segments.clear();
        return req;
    };

    ChainReader reader(memory, chain);
    if (reader.remaining() < sizeof(BlkReqHeader)) return fail(kSIoErr, "header too short");
    auto header = reader.read_obj<BlkReqHeader>();
    if (!header) return fail(kSIoErr, header.error().message());
    req.type = header->type;
    req.sector = header->sector;
    uint64_t readable_payload = reader.remaining();
    uint64_t writable_payload = writable - 1;

    auto check_data = [&](uint64_t len) -> const char* {
        if (len % kSectorSize != 0) return "data length is not a multiple of 512";
        if (!sectors_ok(req.sector, len / kSectorSize, limits.capacity_sectors))
            return "sector range beyond the disk";
        return nullptr;
    };
    auto over_limit = [&](const char* why) -> Result<Request> {
        req.over_limit = why;
        return fail(kSIoErr, why);
    };

    switch (req.type) {
        case kTIn: {
            if (readable_payload != 0) return fail(kSIoErr, "device-readable data in a read");
            if (const char* why = check_data(writable_payload)) return fail(kSIoErr, why);
            if (const char* why = check_segments(chain, true, 0, writable_payload, limits))
                return over_limit(why);
            auto r = collect_iovecs(memory, chain, true, 0, writable_payload, req.data);
            if (!r) return fail(kSIoErr, r.error().message());
            req.data_len = writable_payload;
            break;
        }
        case kTOut: {
            if (limits.read_only) return fail(kSIoErr, "write to a read-only disk");
            if (writable_payload != 0) return fail(kSIoErr, "device-writable data in a write");
            if (const char* why = check_data(readable_payload)) return fail(kSIoErr, why);
            if (const char* why =
                    check_segments(chain, false, sizeof(BlkReqHeader), readable_payload, limits))
                return over_limit(why);
            auto r = collect_iovecs(memory, chain, false, sizeof(BlkReqHeader), readable_payload,
                                    req.data);
            if (!r) return fail(kSIoErr, r.error().message());
            req.data_len = readable_payload;
            break;
        }
        case kTFlush:
            if (!(limits.acked_features & kFFlush)) return fail(kSUnsupp, "FLUSH not negotiated");
            break;
        case kTGetId: {
            uint64_t left = writable_payload;
            for (const DescriptorBuffer& b : chain.buffers) {
                if (!b.device_writable || left == 0) continue;
                uint32_t take = static_cast<uint32_t>(std::min<uint64_t>(b.len, left));
                req.id_buffers.push_back({b.addr, take, true});
                left -= take;
            }
            break;
        }
        case kTDiscard:
        case kTWriteZeroes: {
            bool discard = req.type == kTDiscard;
            if (!(limits.acked_features & (discard ? kFDiscard : kFWriteZeroes)))
                return fail(kSUnsupp, "DISCARD/WRITE_ZEROES not negotiated");
            if (limits.read_only) return fail(kSIoErr, "discard/zeroes on a read-only disk");
            uint64_t max_seg = discard ? limits.max_discard_seg : limits.max_write_zeroes_seg;
            uint64_t max_sectors =
                discard ? limits.max_discard_sectors : limits.max_write_zeroes_sectors;
            uint64_t count = readable_payload / sizeof(BlkDiscardSegment);
            if (readable_payload % sizeof(BlkDiscardSegment) != 0 || count == 0 || count > max_seg)
                return fail(kSIoErr, "bad segment list");
            for (uint64_t i = 0; i < count; ++i) {
                auto seg = reader.read_obj<BlkDiscardSegment>();
                if (!seg) return fail(kSIoErr, seg.error().message());
                if (seg->flags & ~kSegmentFlagUnmap) return fail(kSUnsupp, "unknown segment flags");
                // 5.2.6.2: discard with the unmap flag set is unsupported.
                if (discard && (seg->flags & kSegmentFlagUnmap))
                    return fail(kSUnsupp, "unmap flag on discard");
                if (seg->num_sectors > max_sectors) return fail(kSIoErr, "segment too large");
                if (!sectors_ok(seg->sector, seg->num_sectors, limits.capacity_sectors))
                    return fail(kSIoErr, "segment beyond the disk");
                req.segments.push_back({seg->sector * kSectorSize, seg->num_sectors * kSectorSize});
            }
            break;
        }
        default:
            return fail(kSUnsupp, "unsupported request type");
    }
    if (req.data.size() > limits.max_iovecs) return fail(kSIoErr, "too many data segments");
    return req;
}

Result<void> write_id(const GuestMemory& memory, const Request& request,
                      const std::string& serial) {
    uint8_t id[kIdBytes] = {};
    std::memcpy(id, serial.data(), std::min<size_t>(serial.size(), kIdBytes));
    size_t at = 0;
    for (const DescriptorBuffer& b : request.id_buffers) {
        if (at == kIdBytes) break;
        size_t n = std::min<size_t>(b.len, kIdBytes - at);
        RV_TRY_VOID(memory.write(b.addr, std::span<const uint8_t>(id + at, n)));
        at += n;
    }
    return {};
}

}  // namespace rv::virtio::blk
