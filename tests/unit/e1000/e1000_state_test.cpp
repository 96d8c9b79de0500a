// The e1000's snapshot State: a NIC driven into a busy state (rings with
// traffic behind them, a TX packet half gathered, an interrupt held back by
// ITR, a microwire read half clocked out) is saved, encoded, decoded and
// restored into a NIC made afresh over a copy of guest memory; the copy
// saves the same State, then answers the next register reads, finishes the
// TX packet and places the next received frame exactly as the original.
// Restore refuses states no 82540EM could be in and leaves the NIC alone.
#include "snapshot/state_codec.h"
#include "support/device_counters.h"
#include "support/limiter_timer.h"
#include "support/state_roundtrip.h"
#include "unit/e1000/e1000_fixture.h"

namespace rv::test {
namespace {

using namespace e1000;

constexpr uint64_t kUs = 1'000;
constexpr uint8_t kEopRs = kTxCmdEop | kTxCmdIfcs | kTxCmdRs;
constexpr uint8_t kPopts = kTxPoptsIxsm | kTxPoptsTxsm;

// Every strict prefix of the encoding is refused, and so is a trailing byte
// (the shared expect_truncation_refused, sampled for speed). Inside the 24 KiB register image (one loop of u32 reads) every 61st
// length stands for the rest: all of them would take seconds.
void expect_truncation_refused(const E1000::State& state) {
    auto bytes = snapshot::encode(state);
    const size_t image_from = sizeof(state.pci.bytes) + 8;
    const size_t image_to = sizeof(state.pci.bytes) + sizeof(state.regs) - 8;
    for (size_t len = 0; len < bytes.size(); len += len >= image_from && len < image_to ? 61 : 1) {
        EXPECT_FALSE(
            snapshot::decode<E1000::State>(std::span(bytes).first(len), "test").has_value())
            << len;
    }
    bytes.push_back(0);
    EXPECT_FALSE(snapshot::decode<E1000::State>(bytes, "test").has_value());
}

uint32_t reg_read(E1000& d, uint32_t offset, uint8_t bar = kMmioBar) {
    std::array<uint8_t, 4> b{};
    d.bar_read(bar, offset, b);
    return load_le(b);
}
void reg_write(E1000& d, uint32_t offset, uint32_t value, uint8_t bar = kMmioBar) {
    std::array<uint8_t, 4> b{};
    store_le(b, value);
    d.bar_write(bar, offset, b);
}

// One microwire clock with DI = `di`; returns DO as sampled with SK high
// (the Linux driver's order).
bool eeprom_clock(E1000& d, bool di) {
    const uint32_t pins = kEecdReq | kEecdCs | (di ? kEecdDi : 0);
    reg_write(d, reg::kEecd, pins);
    reg_write(d, reg::kEecd, pins | kEecdSk);
    const bool out = reg_read(d, reg::kEecd) & kEecdDo;
    reg_write(d, reg::kEecd, pins);
    return out;
}
std::vector<uint8_t> eeprom_bits_out(E1000& d, int n) {
    std::vector<uint8_t> bits;
    for (int i = 0; i < n; ++i) bits.push_back(eeprom_clock(d, false));
    return bits;
}
// Bits [from, from + n) as a number, the first the most significant.
uint16_t word_of(const std::vector<uint8_t>& bits, size_t from = 0, size_t n = 16) {
    uint16_t w = 0;
    for (size_t i = from; i < from + n && i < bits.size(); ++i)
        w = static_cast<uint16_t>((w << 1) | bits[i]);
    return w;
}

uint32_t mdic(uint32_t op, uint32_t phy_reg, uint16_t data = 0) {
    return (kPhyAddress << 21) | (phy_reg << 16) | op | data;
}

class E1000StateTest : public E1000Test {
  protected:
    // The machine restored: a second NIC on its own copy of guest memory,
    // backend and event loop, made from the same config.
    struct Twin {
        Twin(uint64_t mem_size, std::shared_ptr<std::atomic<uint64_t>> clock,
             std::optional<RateLimiterConfig> tx_limit = std::nullopt)
            : mem(make_memory(mem_size)) {
            auto [backend, p] = FakeNetBackend::create();
            peer = p;
            E1000Config config{.mac = kMac,
                               .clock_ns = [clock] { return clock->load(); },
                               .tx_rate_limiter = tx_limit};
            auto created = E1000::create(mem, std::move(backend), config, events);
            if (!created) throw std::runtime_error(created.error().message());
            dev = std::move(*created);
            dev->assign_intx(irq);
        }
        GuestMemory mem;
        PollingRegistrar events;  // before dev: the device unregisters on destruction
        std::shared_ptr<FakeNetPeer> peer;
        std::shared_ptr<RecordingIrqLine> irq = std::make_shared<RecordingIrqLine>();
        std::shared_ptr<E1000> dev;
    };

    std::unique_ptr<Twin> twin(std::optional<RateLimiterConfig> tx_limit = std::nullopt) {
        auto t = std::make_unique<Twin>(kMemSize, clock, tx_limit);
        std::vector<uint8_t> all(kMemSize);
        EXPECT_TRUE(mem.read(GuestAddress(0), all));
        EXPECT_TRUE(t->mem.write(GuestAddress(0), all));
        return t;
    }
    std::vector<uint8_t> whole(const GuestMemory& m) {
        std::vector<uint8_t> all(kMemSize);
        EXPECT_TRUE(m.read(GuestAddress(0), all));
        return all;
    }

    // Drives the NIC through a driver's bring-up and some traffic, and stops
    // it mid-work. Returns the frame whose TX is half gathered.
    std::vector<uint8_t> drive() {
        write32(reg::kItr, 1000);  // 256 us between assertions
        write32(reg::kIms, kIntRxt0 | kIntTxdw | kIntTxqe);
        write32(reg::kRdtr, 0x20);
        write32(reg::kTidv, 0x40);
        write32(reg::kMta + 4 * 3, 0x00010000);
        write32(reg::kVfta + 4 * 7, 0x80000001);
        write32(reg::kRal0 + 8, 0x44332211);
        write32(reg::kRah0 + 8, 0x6655 | kRahAv);
        write32(reg::kEerd, (1u << 8) | kEerdStart);  // word 1 through EERD
        EXPECT_EQ(read32(reg::kEerd) >> 16, 0xAB00u);
        write32(reg::kMdic, mdic(kMdicOpWrite, phy_reg::kAutonegAdv, 0x01E1));
        write32(reg::kMdic, mdic(kMdicOpWrite, phy_reg::kM88SpecCtrl, 0x0808));
        write32(reg::kMdic, mdic(kMdicOpRead, phy_reg::kId1));  // MDIC keeps the data
        io_write32(kIoAddr, reg::kIms);

        // A word 2 microwire read, 5 of its bits clocked out.
        write32(reg::kEecd, kEecdReq);
        write32(reg::kEecd, kEecdReq | kEecdCs);
        for (int bit = 8; bit >= 0; --bit) eeprom_clock(*dev, ((0b110'000010 >> bit) & 1) != 0);
        EXPECT_EQ(word_of(eeprom_bits_out(*dev, 5)), 0xEFCD >> 11);

        // One frame received into slot 0; the interrupt is taken.
        setup_rx(8, 6);
        inject(eth_frame(kMac, 100, 0x0800, 7));
        events.run_until_idle();
        EXPECT_EQ(read32(reg::kRdh), 1u);
        EXPECT_TRUE(irq->level());
        EXPECT_EQ(read32(reg::kIcr), kIntRxt0);
        EXPECT_FALSE(irq->level());

        // Both contexts loaded, one packet sent with checksum offload: its
        // TXDW waits for ITR. Then a packet's first descriptor only.
        setup_tx(8);
        put_tx(context_desc(TxContext{.ipcss = 14,
                                      .ipcso = 24,
                                      .ipcse = 33,
                                      .tucss = 34,
                                      .tucso = 50,
                                      .tucmd = kTuCmdTcp | kTuCmdIp}));
        put_tx(context_desc(TxContext{.ipcss = 14,
                                      .ipcso = 24,
                                      .tucss = 34,
                                      .tucso = 50,
                                      .paylen = 4000,
                                      .tucmd = kTuCmdTcp | kTuCmdIp | kTxCmdTse,
                                      .hdr_len = 54,
                                      .mss = 1000}));
        auto first = tcp_frame(100, 1, 0x18, false);
        put_tx(data_desc(tx_data(first), static_cast<uint32_t>(first.size()), kEopRs, kPopts));
        kick_tx();
        EXPECT_EQ(peer->receive_all().size(), 1u);
        EXPECT_FALSE(irq->level()) << "held back by ITR";
        auto second = tcp_frame(300, 101, 0x18, false);
        partial_at = tx_data(second);
        put_tx(data_desc(partial_at, 60, kTxCmdIfcs, kPopts));
        kick_tx();
        EXPECT_EQ(read32(reg::kTdh), 4u);
        EXPECT_TRUE(peer->receive_all().empty());
        return second;
    }

    uint64_t partial_at{0};
};

TEST_F(E1000StateTest, RoundTripsAndAnswersAlike) {
    const auto partial = drive();
    const auto saved = dev->save();
    EXPECT_TRUE(saved.tx.in_packet);
    EXPECT_EQ(saved.tx.packet, std::vector<uint8_t>(partial.begin(), partial.begin() + 60));
    EXPECT_EQ(saved.tx.popts, kPopts);
    EXPECT_EQ(saved.tx.tso_ctx.mss, 1000);
    EXPECT_EQ(saved.icr, kIntTxdw | kIntTxqe);
    EXPECT_FALSE(saved.irq_level);
    EXPECT_EQ(saved.itr_wait_ns, 1000 * kItrUnitNs);
    EXPECT_TRUE(saved.eeprom.reading);
    EXPECT_EQ(saved.phy.regs[phy_reg::kAutonegAdv], 0x01E1);
    EXPECT_EQ(saved.mdic & 0xFFFF, 0x0141u);
    EXPECT_EQ(saved.io_addr, reg::kIms);
    EXPECT_EQ(saved.regs[reg::kRdh / 4], 1u);
    EXPECT_EQ(saved.regs[stat::kGptc / 4], 1u);

    auto b = twin();
    ASSERT_TRUE(b->dev->restore(through_bytes(saved)).has_value());
    EXPECT_EQ(b->dev->save(), saved);
    EXPECT_TRUE(b->events.registered(b->peer->device_end.get())) << "RX polls: the ring has room";

    // The held-back TXDW: both wait out the rest of the hold-off.
    EXPECT_FALSE(b->irq->level());
    auto left_a = take_armed_timer(dev->itr_timer_fd());
    auto left_b = take_armed_timer(b->dev->itr_timer_fd());
    ASSERT_TRUE(left_a && left_b) << "restore re-arms the ITR timer";
    EXPECT_LE(*left_b, 1000 * kItrUnitNs);
    *clock += 300 * kUs;
    events.fire(dev->itr_timer_fd());
    b->events.fire(b->dev->itr_timer_fd());
    EXPECT_TRUE(irq->level());
    EXPECT_TRUE(b->irq->level());
    // From here on no hold-offs: real-time timers would race the test.
    for (E1000* d : {dev.get(), b->dev.get()}) reg_write(*d, reg::kItr, 0);

    for (uint32_t offset :
         {reg::kCtrl,      reg::kStatus,   reg::kEecd,     reg::kEerd, reg::kMdic, reg::kIms,
          reg::kItr,       reg::kRctl,     reg::kTctl,     reg::kRdh,  reg::kRdt,  reg::kTdh,
          reg::kTdt,       reg::kRdlen,    reg::kTdlen,    reg::kRdtr, reg::kTidv, reg::kMta + 12,
          reg::kVfta + 28, reg::kRal0 + 8, reg::kRah0 + 8, reg::kRal0, reg::kRah0, stat::kGprc,
          stat::kGptc,     stat::kGorcl,   stat::kGorch,   stat::kTpr, stat::kTpt, stat::kGprc,
          reg::kIcr})
        EXPECT_EQ(reg_read(*dev, offset), reg_read(*b->dev, offset)) << std::hex << offset;
    EXPECT_FALSE(b->irq->level()) << "ICR read";
    EXPECT_EQ(reg_read(*b->dev, kIoAddr, kIoBar), reg::kIms);
    EXPECT_EQ(reg_read(*dev, kIoData, kIoBar), reg_read(*b->dev, kIoData, kIoBar));
    for (uint16_t at = 0; at < 256; at += 4) {
        std::array<uint8_t, 4> x{}, y{};
        dev->config_read(at, x);
        b->dev->config_read(at, y);
        EXPECT_EQ(x, y) << "config " << at;
    }

    // The microwire read goes on where it was, into the next word.
    auto bits = eeprom_bits_out(*b->dev, 27);
    EXPECT_EQ(bits, eeprom_bits_out(*dev, 27));
    EXPECT_EQ(word_of(bits, 0, 11), 0xEFCD & 0x7FF);
    EXPECT_EQ(word_of(bits, 11), 0x0000);  // word 3

    // The half-gathered packet ends with the next descriptor, in both.
    const auto eop =
        data_desc(partial_at + 60, static_cast<uint32_t>(partial.size() - 60), kEopRs, 0);
    ASSERT_TRUE(b->mem.write(GuestAddress(kTxRing + 16 * 4), eop));
    put_tx(eop);
    for (E1000* d : {dev.get(), b->dev.get()}) reg_write(*d, reg::kTdt, 5);
    auto sent_a = peer->receive_all();
    ASSERT_EQ(sent_a.size(), 1u);
    EXPECT_EQ(b->peer->receive_all(), sent_a);
    const std::vector<uint8_t> frame(sent_a[0].begin() + 12, sent_a[0].end());
    EXPECT_EQ(sent_a[0][0], kVnetFlagNeedsCsum);
    ASSERT_EQ(frame.size(), partial.size());
    EXPECT_TRUE(ipv4_checksum_ok(frame));
    EXPECT_TRUE(std::equal(frame.begin() + kTcpOff, frame.end(), partial.begin() + kTcpOff));
    EXPECT_EQ(reg_read(*b->dev, reg::kTdh), 5u);

    // The next frame lands in slot 1 of both rings.
    auto next = eth_frame(kMac, 200, 0x0800, 9);
    inject(next);
    std::vector<uint8_t> packet(12, 0);
    packet.insert(packet.end(), next.begin(), next.end());
    ASSERT_TRUE(b->peer->send(packet));
    events.run_until_idle();
    b->events.run_until_idle();
    EXPECT_EQ(reg_read(*b->dev, reg::kRdh), 2u);
    EXPECT_EQ(rx_desc(1).status, kRxStaDd | kRxStaEop | kRxStaIxsm);
    EXPECT_EQ(rx_buffer(1, next.size()), next);
    EXPECT_EQ(irq->level(), b->irq->level());
    EXPECT_TRUE(whole(mem) == whole(b->mem)) << "guest memory differs";
    EXPECT_EQ(dev->save(), b->dev->save());
}

TEST_F(E1000StateTest, TruncatedEncodingRefused) {
    drive();
    expect_truncation_refused(dev->save());
}

// TX stopped by the rate limiter goes on by itself after restore, from the
// descriptor the original stopped at; with the limiter or without.
TEST_F(E1000StateTest, TxHeldByTheRateLimiterResumes) {
    const auto limit = RateLimiterConfig{.bandwidth = TokenBucketConfig{4096, 0, 1000}};
    dev.reset();
    {
        auto [backend, p] = FakeNetBackend::create();
        peer = p;
        E1000Config config{
            .mac = kMac, .clock_ns = [c = clock] { return c->load(); }, .tx_rate_limiter = limit};
        dev = std::move(E1000::create(mem, std::move(backend), config, events).value());
        dev->assign_intx(irq);
    }
    setup_tx(16);
    std::vector<std::vector<uint8_t>> frames;
    for (int i = 0; i < 6; ++i) {
        frames.push_back(eth_frame(kPeerMac, 1500 - 14, 0x0800, static_cast<uint8_t>(i)));
        put_tx(legacy_desc(tx_data(frames.back()), 1500, kEopRs));
    }
    kick_tx();
    const size_t went = peer->receive_all().size();
    ASSERT_GT(went, 0u);
    ASSERT_LT(went, frames.size());
    const auto saved = dev->save();
    EXPECT_TRUE(saved.tx_pending);
    EXPECT_EQ(saved.regs[reg::kTdh / 4], went);

    for (bool limited : {true, false}) {
        auto b = limited ? twin(limit) : twin();
        ASSERT_TRUE(b->dev->restore(through_bytes(saved)).has_value());
        EXPECT_EQ(b->dev->save(), saved);
        ASSERT_TRUE(take_armed_timer(b->dev->tx_limiter_timer_fd()))
            << "resumes at once, limited " << limited;
        EXPECT_TRUE(b->peer->receive_all().empty()) << "not before the event loop runs";
        b->events.fire(b->dev->tx_limiter_timer_fd());
        auto sent = b->peer->receive_all();
        ASSERT_FALSE(sent.empty());
        EXPECT_TRUE(std::equal(sent[0].begin() + 12, sent[0].end(), frames[went].begin()));
        if (!limited) {
            EXPECT_EQ(sent.size(), frames.size() - went);
        }
    }
}

TEST_F(E1000StateTest, RefusesImpossibleStatesAndStaysAsItWas) {
    drive();
    const auto good = dev->save();
    auto b = twin();
    reg_write(*b->dev, reg::kIms, kIntRxt0);
    const auto before = b->dev->save();

    using Change = std::function<void(E1000::State&)>;
    const std::vector<std::pair<const char*, Change>> bad{
        {"RDH wider than 16 bits", [](auto& s) { s.regs[reg::kRdh / 4] = 0x10000; }},
        {"TDT wider than 16 bits", [](auto& s) { s.regs[reg::kTdt / 4] = 0x12345; }},
        {"a register the device does not keep", [](auto& s) { s.regs[reg::kStatus / 4] = 3; }},
        {"an unimplemented register", [](auto& s) { s.regs[0x5F00 / 4] = 1; }},
        {"CTRL.RST left set", [](auto& s) { s.regs[reg::kCtrl / 4] |= kCtrlRst; }},
        {"ITR wider than 16 bits", [](auto& s) { s.regs[reg::kItr / 4] = 0x10000; }},
        {"an ICR cause the 82540 lacks", [](auto& s) { s.icr |= 1u << 5; }},
        {"an IMS bit the 82540 lacks", [](auto& s) { s.ims |= 1u << 31; }},
        {"MDIC not ready", [](auto& s) { s.mdic &= ~kMdicReady; }},
        {"IOADDR not a dword", [](auto& s) { s.io_addr = 0x102; }},
        {"IOADDR past BAR0", [](auto& s) { s.io_addr = 0x20000; }},
        {"an ITR wait past its maximum", [](auto& s) { s.itr_wait_ns = kItrMaxWaitNs + 1; }},
        {"INTx high with nothing pending", [](auto& s) { s.irq_level = true, s.ims = 0; }},
        {"another device's config space", [](auto& s) { s.pci.bytes[0] ^= 1; }},
        {"a bad EEPROM checksum", [](auto& s) { ++s.eeprom.words[5]; }},
        {"EERD not the word it names",
         [](auto& s) { s.eeprom.eerd = (1u << 8) | kEerdDone | (0x1234u << 16); }},
        {"EECD bits the guest cannot set", [](auto& s) { s.eeprom.eecd |= kEecdGnt; }},
        {"a read with CS low", [](auto& s) { s.eeprom.eecd &= ~kEecdCs; }},
        {"a read of another opcode", [](auto& s) { s.eeprom.shift_in = 0b101'000010; }},
        {"a PHY ID of another PHY", [](auto& s) { s.phy.regs[phy_reg::kId2] = 0x0C21; }},
        {"PHY reset left set", [](auto& s) { s.phy.regs[phy_reg::kCtrl] |= kPhyCtrlReset; }},
        {"an unknown TX drop reason", [](auto& s) { s.tx.drop = 3; }},
        {"a packet's fields without a packet", [](auto& s) { s.tx.in_packet = false; }},
        {"TSE on a legacy packet", [](auto& s) { s.tx.extended = false, s.tx.tse = true; }},
        {"a TSO context without TSE", [](auto& s) { s.tx.tso_ctx.tucmd &= ~kTxCmdTse; }},
        {"a context without DEXT", [](auto& s) { s.tx.ctx.tucmd &= ~kTxCmdDext; }},
        {"PAYLEN past 20 bits", [](auto& s) { s.tx.tso_ctx.paylen = 1u << 20; }},
        {"a packet past 64 KiB + headers", [](auto& s) { s.tx.packet.resize(kMaxTxPacket + 1); }},
    };
    for (const auto& [what, change] : bad) {
        auto s = good;
        change(s);
        auto restored = b->dev->restore(s);
        ASSERT_FALSE(restored.has_value()) << what;
        EXPECT_TRUE(restored.error().is_input()) << what << ": " << restored.error().message();
        EXPECT_EQ(b->dev->save(), before) << what;
    }
    EXPECT_FALSE(b->irq->level());

    // The decoder caps the packet too, and refuses a boolean that is not 0/1.
    auto big = good;
    big.tx.packet.resize(kMaxTxPacket + 1);
    EXPECT_FALSE(snapshot::decode<E1000::State>(snapshot::encode(big), "e1000").has_value());
    auto bytes = snapshot::encode(good);
    const size_t level_at = sizeof(good.pci.bytes) + sizeof(good.regs) + 16;
    ASSERT_EQ(bytes[level_at], 0);
    bytes[level_at] = 2;
    EXPECT_FALSE(snapshot::decode<E1000::State>(bytes, "e1000").has_value());

    // A head past the ring is not among them: RDH takes any 16 bits from the
    // guest, and the device then leaves the ring alone. Restored as it was.
    auto odd = good;
    odd.regs[reg::kRdh / 4] = 100;
    ASSERT_TRUE(b->dev->restore(odd).has_value());
    EXPECT_EQ(b->dev->save(), odd);
    EXPECT_FALSE(b->events.registered(b->peer->device_end.get())) << "no ring to receive into";

    // And the state it refused nothing of still goes in.
    ASSERT_TRUE(b->dev->restore(good).has_value());
    EXPECT_EQ(b->dev->save(), good);
}

}  // namespace
}  // namespace rv::test
