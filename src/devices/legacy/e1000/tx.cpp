#include "devices/legacy/e1000/tx.h"

#include <algorithm>
#include <array>

#include "base/log.h"

namespace rv::e1000 {

namespace {

enum WarnBit : unsigned {
    kWarnRing = 1 << 0,
    kWarnIndex = 1 << 1,
    kWarnDrop = 1 << 2,
    kWarnBackend = 1 << 3,
};

constexpr uint32_t kMinFrame = 60;  // Ethernet minimum without FCS (TCTL.PSP pads to it)
constexpr uint32_t kEthAddrs = 12;  // destination + source MAC

const char* drop_text(TxEngine::Drop drop) {
    switch (drop) {
        case TxEngine::Drop::kTooLarge:
            return "packet larger than 64 KiB + headers";
        case TxEngine::Drop::kBadBuffer:
            return "buffer outside guest memory";
        case TxEngine::Drop::kNone:
            break;
    }
    return "";
}

// The ring TDBA/TDLEN describe, if it is one: TDLEN a non-zero multiple of
// 128 (bits 19:7) inside guest RAM.
bool ring_valid(const GuestMemory& memory, const RegisterFile& regs, uint64_t& base,
                uint32_t& len) {
    len = regs.get(reg::kTdlen) & 0xFFF80;
    base = (uint64_t{regs.get(reg::kTdbah)} << 32) | (regs.get(reg::kTdbal) & ~0xFu);
    return len != 0 && regs.get(reg::kTdlen) == len && memory.check_range(GuestAddress(base), len);
}

}  // namespace

void TxEngine::reset() {
    m_ctx = {};
    m_tso_ctx = {};
    m_packet.clear();
    m_in_packet = false;
    m_drop = Drop::kNone;
}

bool TxEngine::has_work(const GuestMemory& memory, const RegisterFile& regs) {
    uint64_t base = 0;
    uint32_t len = 0;
    if (!(regs.get(reg::kTctl) & kTctlEn) || !ring_valid(memory, regs, base, len)) return false;
    const uint32_t head = regs.get(reg::kTdh);
    const uint32_t tail = regs.get(reg::kTdt);
    return head != tail && head < len / kDescSize && tail < len / kDescSize;
}

void TxEngine::warn_once(unsigned bit, std::string_view text) {
    if (m_warned & bit) {
        log::debug("e1000 tx: {}", text);
        return;
    }
    m_warned |= bit;
    log::warn("e1000 tx: {} (further occurrences at debug level)", text);
}

uint32_t TxEngine::process(const Env& env) {
    RegisterFile& regs = env.regs;
    if (!(regs.get(reg::kTctl) & kTctlEn)) return 0;
    uint64_t base = 0;
    uint32_t len = 0;
    if (!ring_valid(env.memory, regs, base, len)) {
        warn_once(kWarnRing, fmt::format("bad ring: TDBA {:#x} TDLEN {:#x} (ignored)", base,
                                         regs.get(reg::kTdlen)));
        return 0;
    }
    const uint32_t count = len / kDescSize;
    uint32_t head = regs.get(reg::kTdh);
    const uint32_t tail = regs.get(reg::kTdt);
    if (head >= count || tail >= count) {
        warn_once(kWarnIndex,
                  fmt::format("TDH {} / TDT {} outside a ring of {} (ignored)", head, tail, count));
        return 0;
    }
    uint32_t causes = 0;
    uint32_t n = 0;
    m_throttled = false;
    // At most one lap: head == tail ends it, and it cannot take longer.
    for (; n < count && head != tail; ++n) {
        GuestAddress at(base + uint64_t{head} * kDescSize);
        auto desc = env.memory.read_obj<RawDesc>(at);
        if (!desc) break;  // the ring was checked above; cannot happen
        const bool report = handle_descriptor(env, *desc);
        if (m_throttled) break;  // this descriptor again, once the limiter allows
        if (report) {
            // DD in the status byte (offset 12 in every descriptor format).
            uint8_t status = static_cast<uint8_t>(desc->bytes[12] | kTxStaDd);
            (void)env.memory.write(GuestAddress(at.value + 12), std::span(&status, 1));
            causes |= kIntTxdw;
        }
        head = (head + 1) % count;
        regs.set(reg::kTdh, head);
    }
    if (n > 0 && head == tail) causes |= kIntTxqe;
    return causes;
}

bool TxEngine::handle_descriptor(const Env& env, const RawDesc& desc) {
    const uint8_t* b = desc.bytes;
    const uint32_t dword = le32(b + 8);
    const uint8_t cmd = b[11];
    const bool rs = cmd & kTxCmdRs;
    if (cmd & kTxCmdDext) {
        uint32_t dtyp = (dword >> 20) & 0xF;
        if (dtyp == kTxDtypContext) {
            TxContext ctx = parse_context(desc);
            (ctx.tucmd & kTxCmdTse ? m_tso_ctx : m_ctx) = ctx;
            return rs;
        }
        if (dtyp != kTxDtypData) {
            warn_once(kWarnDrop, fmt::format("descriptor type {} (skipped)", dtyp));
            return rs;
        }
    }
    if (!m_in_packet) {
        // POPTS and TSE count in the first descriptor of a packet.
        m_in_packet = true;
        m_extended = cmd & kTxCmdDext;
        m_tse = m_extended && (cmd & kTxCmdTse);
        m_popts = m_extended ? b[13] : 0;
        m_packet.clear();
        m_drop = Drop::kNone;
    }
    const uint32_t length = (cmd & kTxCmdDext) ? (dword & 0xFFFFF) : le16(b + 8);
    if ((cmd & kTxCmdEop) && env.limiter) {
        // Asked before this descriptor is gathered, so a refused packet is
        // retried from here (what its first descriptor set up above stays
        // for the retry). Packets that will be dropped cost nothing.
        const uint64_t bytes = m_packet.size() + uint64_t{length};
        const bool dropping = m_drop != Drop::kNone || bytes > kMaxTxPacket;
        if (!dropping && !env.timer->admit(*env.limiter, bytes, 1)) {
            m_throttled = true;
            return false;
        }
    }
    gather(env, le64(b), length);
    if (cmd & kTxCmdEop) finish_packet(env, desc);
    return rs;
}

void TxEngine::gather(const Env& env, uint64_t addr, uint32_t len) {
    if (m_drop != Drop::kNone || len == 0) return;
    if (m_packet.size() + len > kMaxTxPacket) {
        m_drop = Drop::kTooLarge;
        return;
    }
    size_t at = m_packet.size();
    m_packet.resize(at + len);
    if (!env.memory.read(GuestAddress(addr), std::span(m_packet).subspan(at, len))) {
        m_drop = Drop::kBadBuffer;
        m_packet.resize(at);
    }
}

void TxEngine::drop_packet(std::string_view why) {
    ++m_counters.dropped;
    warn_once(kWarnDrop, fmt::format("dropping a {}-byte packet: {}", m_packet.size(), why));
}

void TxEngine::finish_packet(const Env& env, const RawDesc& eop) {
    m_in_packet = false;
    std::span<uint8_t> packet(m_packet);
    if (m_drop != Drop::kNone) return drop_packet(drop_text(m_drop));
    if (packet.empty()) return drop_packet("no data");
    // VLAN insertion: VLE in the last descriptor, honoured with CTRL.VME.
    m_vlan = (eop.bytes[11] & kTxCmdVle) && (env.regs.get(reg::kCtrl) & kCtrlVme);
    m_vlan_tci = le16(eop.bytes + 14);
    Result<TxOffload> offload = TxOffload{};
    if (m_tse) {
        if (!(m_tso_ctx.tucmd & kTxCmdTse)) return drop_packet("TSO without a TSO context");
        offload = prepare_tso(packet, m_tso_ctx);
    } else if (m_extended) {
        offload = prepare_checksums(packet, m_ctx, m_popts);
    } else if ((eop.bytes[11] & kTxCmdIc) &&
               !insert_checksum(packet, eop.bytes[13], eop.bytes[10], 0)) {
        // Legacy CSO/CSS/IC of the last descriptor: a single 16-bit sum
        // whose protocol we do not know, so it stays in software.
        return drop_packet("checksum offsets outside the frame");
    }
    if (!offload) return drop_packet(offload.error().message());
    send_frame(env, packet, *offload);
}

void TxEngine::send_frame(const Env& env, std::span<const uint8_t> frame, TxOffload offload) {
    VnetHdr& hdr = offload.hdr;
    static constexpr std::array<uint8_t, kMinFrame> kZeros{};
    std::array<uint8_t, 4> tag{};
    std::array<iovec, 5> iov{};
    size_t n = 0;
    auto add = [&](const uint8_t* p, size_t len) {
        if (len) iov[n++] = iovec{const_cast<uint8_t*>(p), len};
    };
    const bool tag_it = m_vlan && frame.size() >= kEthAddrs;
    if (tag_it) {
        // The tag moves everything the offloads point at by 4 bytes.
        if (hdr.flags & kVnetFlagNeedsCsum) hdr.csum_start += 4;
        if (hdr.gso_type != kVnetGsoNone) hdr.hdr_len += 4;
    }
    const std::array<uint8_t, kVnetHdrSize> header = hdr.encode();
    add(header.data(), header.size());
    size_t wire = frame.size();
    if (tag_it) {
        uint16_t vet = static_cast<uint16_t>(env.regs.get(reg::kVet));
        tag = {static_cast<uint8_t>(vet >> 8), static_cast<uint8_t>(vet),
               static_cast<uint8_t>(m_vlan_tci >> 8), static_cast<uint8_t>(m_vlan_tci)};
        add(frame.data(), kEthAddrs);
        add(tag.data(), tag.size());
        add(frame.data() + kEthAddrs, frame.size() - kEthAddrs);
        wire += tag.size();
    } else {
        add(frame.data(), frame.size());
    }
    if ((env.regs.get(reg::kTctl) & kTctlPsp) && wire < kMinFrame) {
        add(kZeros.data(), kMinFrame - wire);
        wire = kMinFrame;
    }
    auto written = env.backend.writev(std::span(iov.data(), n));
    if (!written || !*written) {
        ++m_counters.dropped;
        warn_once(kWarnBackend, written ? std::string("backend full, frame dropped")
                                        : "backend write: " + written.error().message());
        return;
    }
    ++m_counters.packets;
    m_counters.bytes += wire;
    // Counted per segment, as the hardware would have sent them: every
    // segment but the first repeats the headers, every one has an FCS.
    const uint64_t segs = offload.segments;
    const uint64_t octets = wire + (segs - 1) * hdr.hdr_len + segs * 4;
    RegisterFile& regs = env.regs;
    regs.count(stat::kGptc, offload.segments);
    regs.count(stat::kTpt, offload.segments);
    regs.count64(stat::kGotcl, octets);
    regs.count64(stat::kTotl, octets);
    if (frame.size() >= 6) {
        bool broadcast =
            std::all_of(frame.begin(), frame.begin() + 6, [](uint8_t x) { return x == 0xFF; });
        if (broadcast)
            regs.count(stat::kBptc);
        else if (frame[0] & 1)
            regs.count(stat::kMptc);
    }
}

// --- snapshot state ------------------------------------------------------------

namespace {

void encode_context(snapshot::Writer& w, const TxContext& c) {
    for (uint8_t v : {c.ipcss, c.ipcso}) w.u8(v);
    w.u16(c.ipcse);
    for (uint8_t v : {c.tucss, c.tucso}) w.u8(v);
    w.u16(c.tucse);
    w.u32(c.paylen);
    for (uint8_t v : {c.tucmd, c.hdr_len}) w.u8(v);
    w.u16(c.mss);
}

TxContext decode_context(snapshot::Reader& r) {
    TxContext c;
    for (uint8_t* v : {&c.ipcss, &c.ipcso}) *v = r.u8();
    c.ipcse = r.u16();
    for (uint8_t* v : {&c.tucss, &c.tucso}) *v = r.u8();
    c.tucse = r.u16();
    c.paylen = r.u32();
    for (uint8_t* v : {&c.tucmd, &c.hdr_len}) *v = r.u8();
    c.mss = r.u16();
    return c;
}

// A context descriptor always has DEXT in its command byte and a 20-bit
// PAYLEN; one never loaded is all zero. TSE sorts it into one of the two.
Result<void> check_context(const TxContext& c, bool tso) {
    if (c == TxContext{}) return {};
    if (!(c.tucmd & kTxCmdDext) || c.paylen > 0xFFFFF || bool(c.tucmd & kTxCmdTse) != tso)
        return input_error("e1000 TX state: {} context with TUCMD {:#x}, PAYLEN {:#x}",
                           tso ? "the TSO" : "the checksum", c.tucmd, c.paylen);
    return {};
}

}  // namespace

void TxEngine::State::encode(snapshot::Writer& w) const {
    encode_context(w, ctx);
    encode_context(w, tso_ctx);
    for (bool v : {in_packet, extended, tse}) w.boolean(v);
    w.u8(popts);
    w.u8(drop);
    w.blob(packet);
}

TxEngine::State TxEngine::State::decode(snapshot::Reader& r) {
    State s;
    s.ctx = decode_context(r);
    s.tso_ctx = decode_context(r);
    for (bool* v : {&s.in_packet, &s.extended, &s.tse}) *v = r.boolean();
    s.popts = r.u8();
    s.drop = r.u8();
    s.packet = r.blob(kMaxTxPacket);
    return s;
}

TxEngine::State TxEngine::save() const {
    State s{.ctx = m_ctx, .tso_ctx = m_tso_ctx};
    // Between packets the last one's leftovers are not observable (the next
    // first descriptor sets them all afresh): they are not saved.
    if (m_in_packet) {
        s.in_packet = true;
        s.extended = m_extended;
        s.tse = m_tse;
        s.popts = m_popts;
        s.drop = static_cast<uint8_t>(m_drop);
        s.packet = m_packet;
    }
    return s;
}

Result<void> TxEngine::check(const State& s) {
    RV_TRY_VOID(check_context(s.ctx, false));
    RV_TRY_VOID(check_context(s.tso_ctx, true));
    if (s.drop > static_cast<uint8_t>(Drop::kBadBuffer))
        return input_error("e1000 TX state: drop reason {}", s.drop);
    if (s.packet.size() > kMaxTxPacket)
        return input_error("e1000 TX state: a {}-byte packet", s.packet.size());
    if (!s.in_packet && (s.extended || s.tse || s.popts || s.drop || !s.packet.empty()))
        return input_error("e1000 TX state: packet fields without a packet");
    // POPTS and TSE come from an extended data descriptor only.
    if (!s.extended && (s.tse || s.popts))
        return input_error("e1000 TX state: TSE or POPTS {:#x} on a legacy packet", s.popts);
    return {};
}

void TxEngine::restore(const State& s) {
    m_ctx = s.ctx;
    m_tso_ctx = s.tso_ctx;
    m_in_packet = s.in_packet;
    m_extended = s.extended;
    m_tse = s.tse;
    m_popts = s.popts;
    m_drop = static_cast<Drop>(s.drop);
    m_packet = s.packet;
    m_throttled = false;  // the device re-derives whether TX waits
}

}  // namespace rv::e1000
