// PCI identity, EEPROM (microwire bit-banging and EERD), PHY over MDIC,
// interrupts (ICR/IMS/IMC/ICS, INTx disable, ITR), reset and access widths.
#include <sys/epoll.h>

#include <chrono>
#include <thread>

#include "unit/e1000/e1000_fixture.h"

namespace rv::test {
namespace {

using namespace e1000;

TEST_F(E1000Test, PciIdentityAndBars) {
    std::array<uint8_t, 4> b{};
    dev->config_read(0x00, b);
    EXPECT_EQ(load_le(b), 0x100E8086u);
    dev->config_read(0x08, b);
    EXPECT_EQ(load_le(b) >> 8, 0x020000u);  // class: Ethernet controller
    dev->config_read(0x2C, b);
    EXPECT_EQ(load_le(b), 0x001E8086u);
    std::array<uint8_t, 1> pin{};
    dev->config_read(0x3D, pin);
    EXPECT_EQ(pin[0], 1);  // INTA#
    auto bars = dev->bars();
    ASSERT_EQ(bars.size(), 2u);
    EXPECT_EQ(bars[0].index, 0);
    EXPECT_EQ(bars[0].size, 128u * 1024);
    EXPECT_FALSE(bars[0].io);
    EXPECT_FALSE(bars[0].is_64bit);
    EXPECT_EQ(bars[1].index, 1);
    EXPECT_EQ(bars[1].size, 64u);
    EXPECT_TRUE(bars[1].io);
    EXPECT_EQ(peer->vnet_hdr_size, 12);
    ASSERT_EQ(peer->offloads.size(), 1u);
    EXPECT_EQ(peer->offloads[0], NetOffloads{});
}

// The Linux e1000 microwire sequence (e1000_acquire_eeprom, shift out
// opcode 110b and 6 address bits, shift in 16 bits, standby).
class Microwire {
  public:
    Microwire(std::function<void(uint32_t)> w, std::function<uint32_t()> r)
        : m_write(std::move(w)), m_read(std::move(r)) {}
    bool acquire() {
        m_eecd = m_read() | kEecdReq;
        m_write(m_eecd);
        if (!(m_read() & kEecdGnt)) return false;
        m_eecd &= ~(kEecdDi | kEecdSk);
        m_write(m_eecd);
        m_eecd |= kEecdCs;
        m_write(m_eecd);
        return true;
    }
    uint16_t read_word(uint16_t addr) {
        shift_out(0b110, 3);
        shift_out(addr, 6);
        uint16_t data = 0;
        for (int i = 0; i < 16; ++i) {
            data <<= 1;
            clock(true);
            if (m_read() & kEecdDo) data |= 1;
            clock(false);
        }
        // Standby: CS low then high again, with a clock pulse.
        m_eecd &= ~(kEecdCs | kEecdSk);
        m_write(m_eecd);
        clock(true);
        m_eecd |= kEecdCs;
        m_write(m_eecd);
        clock(false);
        return data;
    }
    void release() {
        m_eecd &= ~(kEecdCs | kEecdDi | kEecdReq);
        m_write(m_eecd);
    }

  private:
    void clock(bool high) {
        m_eecd = high ? (m_eecd | kEecdSk) : (m_eecd & ~kEecdSk);
        m_write(m_eecd);
    }
    void shift_out(uint16_t data, int count) {
        for (int i = count - 1; i >= 0; --i) {
            m_eecd = (data >> i) & 1 ? (m_eecd | kEecdDi) : (m_eecd & ~kEecdDi);
            m_write(m_eecd);
            clock(true);
            clock(false);
        }
        m_eecd &= ~kEecdDi;
        m_write(m_eecd);
    }
    std::function<void(uint32_t)> m_write;
    std::function<uint32_t()> m_read;
    uint32_t m_eecd{0};
};

TEST_F(E1000Test, EepromBitBangingReturnsMacAndValidChecksum) {
    uint32_t eecd = read32(reg::kEecd);
    EXPECT_TRUE(eecd & kEecdPres);
    EXPECT_FALSE(eecd & (1u << 9));  // EE_SIZE 0: 64 words, 6 address bits
    Microwire wire([&](uint32_t v) { write32(reg::kEecd, v); }, [&] { return read32(reg::kEecd); });
    ASSERT_TRUE(wire.acquire());
    uint16_t sum = 0;
    std::array<uint16_t, 64> words{};
    for (uint16_t i = 0; i < 64; ++i) {
        words[i] = wire.read_word(i);
        sum = static_cast<uint16_t>(sum + words[i]);
    }
    wire.release();
    EXPECT_EQ(sum, 0xBABA);
    EXPECT_EQ(words[0], 0x5452);
    EXPECT_EQ(words[1], 0xAB00);
    EXPECT_EQ(words[2], 0xEFCD);
    EXPECT_EQ(words[0x0D], 0x100E);
    EXPECT_EQ(words[0x0E], 0x8086);
    EXPECT_FALSE(read32(reg::kEecd) & kEecdGnt);  // released
}

TEST_F(E1000Test, EepromThroughTheIoBarToo) {
    Microwire wire(
        [&](uint32_t v) {
            io_write32(kIoAddr, reg::kEecd);
            io_write32(kIoData, v);
        },
        [&] {
            io_write32(kIoAddr, reg::kEecd);
            return io_read32(kIoData);
        });
    ASSERT_TRUE(wire.acquire());
    EXPECT_EQ(wire.read_word(2), 0xEFCD);
    EXPECT_EQ(wire.read_word(0), 0x5452);
}

TEST_F(E1000Test, EerdReadsWords) {
    uint16_t sum = 0;
    for (uint32_t i = 0; i < 64; ++i) {
        write32(reg::kEerd, (i << 8) | kEerdStart);
        uint32_t v = read32(reg::kEerd);
        ASSERT_TRUE(v & kEerdDone);
        EXPECT_EQ((v >> 8) & 0xFF, i);
        uint16_t word = static_cast<uint16_t>(v >> 16);
        if (i < 3) {
            EXPECT_EQ(word, (kMac[2 * i] | (kMac[2 * i + 1] << 8)));
        }
        sum = static_cast<uint16_t>(sum + word);
    }
    EXPECT_EQ(sum, 0xBABA);
}

uint32_t mdic_read_cmd(uint32_t phy, uint32_t reg) {
    return (phy << 21) | (reg << 16) | kMdicOpRead;
}

TEST_F(E1000Test, PhyReportsGigabitLinkOverMdic) {
    auto phy_read = [&](uint32_t r) {
        write32(reg::kMdic, mdic_read_cmd(1, r));
        uint32_t v = read32(reg::kMdic);
        EXPECT_TRUE(v & kMdicReady);
        EXPECT_FALSE(v & kMdicError);
        return static_cast<uint16_t>(v);
    };
    EXPECT_EQ((uint32_t{phy_read(2)} << 16 | phy_read(3)) & ~0xFu, 0x01410C20u);
    uint16_t status = phy_read(1);
    EXPECT_TRUE(status & 0x0004);                // link up
    EXPECT_TRUE(status & 0x0020);                // autoneg complete
    EXPECT_EQ(phy_read(0x11) & 0xC000, 0x8000);  // M88: 1000 Mb/s
    EXPECT_TRUE(phy_read(0x11) & 0x2000);        // full duplex
    EXPECT_TRUE(phy_read(10) & 0x0800);          // partner 1000 full
    // Writes stick on writable registers, reset self-clears.
    write32(reg::kMdic, (1u << 21) | (4u << 16) | kMdicOpWrite | 0x01E1);
    EXPECT_TRUE(read32(reg::kMdic) & kMdicReady);
    EXPECT_EQ(phy_read(4), 0x01E1);
    write32(reg::kMdic, (1u << 21) | (0u << 16) | kMdicOpWrite | 0x9140);
    EXPECT_FALSE(phy_read(0) & 0x8000);
    EXPECT_EQ(phy_read(4), 0x0DE1);  // back to power-on
    // Nobody answers at PHY address 2.
    write32(reg::kMdic, mdic_read_cmd(2, 1));
    EXPECT_TRUE(read32(reg::kMdic) & kMdicError);
    // The MAC agrees: link up, full duplex, 1000.
    uint32_t mac_status = read32(reg::kStatus);
    EXPECT_TRUE(mac_status & kStatusLu);
    EXPECT_TRUE(mac_status & kStatusFd);
    EXPECT_EQ(mac_status & (3u << 6), kStatusSpeed1000);
}

TEST_F(E1000Test, MdicInterruptWhenAsked) {
    write32(reg::kIms, kIntMdac);
    write32(reg::kMdic, mdic_read_cmd(1, 1) | kMdicIntEnable);
    EXPECT_TRUE(irq->level());
    EXPECT_EQ(read32(reg::kIcr), kIntMdac);
    EXPECT_FALSE(irq->level());
}

TEST_F(E1000Test, IcrReadClearsAndImsImcMaskTheLine) {
    write32(reg::kIcs, kIntLsc);
    EXPECT_FALSE(irq->level());  // masked
    write32(reg::kIms, kIntLsc | kIntRxt0);
    EXPECT_EQ(read32(reg::kIms), kIntLsc | kIntRxt0);
    EXPECT_TRUE(irq->level());
    write32(reg::kImc, kIntLsc);
    EXPECT_FALSE(irq->level());
    write32(reg::kIms, kIntLsc);
    EXPECT_TRUE(irq->level());
    // The PCI status register shows the pending interrupt.
    std::array<uint8_t, 2> st{};
    dev->config_read(0x06, st);
    EXPECT_TRUE(st[0] & kPciStatusInterrupt);
    EXPECT_EQ(read32(reg::kIcr), kIntLsc);
    EXPECT_FALSE(irq->level());
    EXPECT_EQ(read32(reg::kIcr), 0u);  // cleared by the first read
    // Writing ones to ICR clears those bits only.
    write32(reg::kIcs, kIntLsc | kIntRxt0);
    EXPECT_TRUE(irq->level());
    write32(reg::kIcr, kIntLsc);
    EXPECT_TRUE(irq->level());
    write32(reg::kIcr, kIntRxt0);
    EXPECT_FALSE(irq->level());
}

TEST_F(E1000Test, IntxDisableHoldsTheLineLow) {
    write32(reg::kIms, kIntLsc);
    write32(reg::kIcs, kIntLsc);
    EXPECT_TRUE(irq->level());
    std::array<uint8_t, 2> cmd{0x07, 0x04};  // io, mem, master, INTx disable
    dev->config_write(0x04, cmd);
    EXPECT_FALSE(irq->level());
    cmd[1] = 0;
    dev->config_write(0x04, cmd);
    EXPECT_TRUE(irq->level());
}

bool wait_for_line(PollingRegistrar& events, RecordingIrqLine& irq) {
    for (int i = 0; i < 500 && !irq.level(); ++i) {
        events.run_ready();
        if (!irq.level()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return irq.level();
}

TEST_F(E1000Test, ItrSpacesAssertionsWithATimer) {
    write32(reg::kItr, 1000);  // 256 us between interrupts
    write32(reg::kIms, kIntRxt0);
    write32(reg::kIcs, kIntRxt0);
    EXPECT_TRUE(irq->level());
    EXPECT_EQ(read32(reg::kIcr), kIntRxt0);
    EXPECT_FALSE(irq->level());
    // 100 us later by the device clock: too soon, held back.
    *clock += 100'000;
    write32(reg::kIcs, kIntRxt0);
    EXPECT_FALSE(irq->level());
    EXPECT_TRUE(events.registered(dev->itr_timer_fd()));
    EXPECT_EQ(dev->stats().throttled, 1u);
    // The timer brings it back.
    EXPECT_TRUE(wait_for_line(events, *irq));
    EXPECT_EQ(irq->rising_edges(), 2u);
    EXPECT_EQ(read32(reg::kIcr), kIntRxt0);
    // Once the interval has passed by the clock, no wait at all.
    *clock += 300'000;
    write32(reg::kIcs, kIntRxt0);
    EXPECT_TRUE(irq->level());
}

TEST_F(E1000Test, NoThrottlingWithItrZero) {
    write32(reg::kIms, kIntRxt0);
    for (int i = 0; i < 5; ++i) {
        write32(reg::kIcs, kIntRxt0);
        EXPECT_TRUE(irq->level());
        read32(reg::kIcr);
    }
    EXPECT_EQ(irq->rising_edges(), 5u);
}

TEST_F(E1000Test, CtrlRstThroughTheIoBarRestoresPowerOnState) {
    write32(reg::kIms, kIntLsc);
    write32(reg::kIcs, kIntLsc);
    write32(reg::kRal0, 0x11223344);
    write32(reg::kTdlen, 4096);
    write32(reg::kRctl, kRctlEn | kRctlUpe);
    write32(reg::kMta + 8, 0xFFFF);
    write32(reg::kItr, 500);
    EXPECT_TRUE(irq->level());
    uint32_t ctrl = read32(reg::kCtrl);
    io_write32(kIoAddr, reg::kCtrl);
    io_write32(kIoData, ctrl | kCtrlRst);
    EXPECT_FALSE(irq->level());
    EXPECT_FALSE(read32(reg::kCtrl) & kCtrlRst);  // self-clearing
    EXPECT_EQ(read32(reg::kIms), 0u);
    EXPECT_EQ(read32(reg::kIcr), 0u);
    EXPECT_EQ(read32(reg::kTdlen), 0u);
    EXPECT_EQ(read32(reg::kRctl), 0u);
    EXPECT_EQ(read32(reg::kMta + 8), 0u);
    EXPECT_EQ(read32(reg::kItr), 0u);
    // RAR0 reloaded from the EEPROM.
    EXPECT_EQ(read32(reg::kRal0), 0xAB005452u);
    EXPECT_EQ(read32(reg::kRah0), 0xEFCDu | kRahAv);
    EXPECT_FALSE(events.registered(peer->device_end.get()));
}

TEST_F(E1000Test, AccessWidthsAndUnknownRegisters) {
    write32(reg::kFcal, 0xAABBCCDD);
    std::array<uint8_t, 1> one{};
    dev->bar_read(kMmioBar, reg::kFcal + 2, one);
    EXPECT_EQ(one[0], 0xBB);
    std::array<uint8_t, 2> two{0x11, 0x22};
    dev->bar_write(kMmioBar, reg::kFcal + 1, two);
    EXPECT_EQ(read32(reg::kFcal), 0xAA2211DDu);
    // 8 bytes: two registers at once.
    std::array<uint8_t, 8> eight{1, 2, 3, 4, 5, 6, 7, 8};
    dev->bar_write(kMmioBar, reg::kFcal, eight);
    EXPECT_EQ(read32(reg::kFcal), 0x04030201u);
    EXPECT_EQ(read32(reg::kFcah), 0x08070605u);
    // A narrow IMS write does not clear other bytes' bits.
    write32(reg::kIms, kIntLsc);
    std::array<uint8_t, 1> rxt0{kIntRxt0};
    dev->bar_write(kMmioBar, reg::kIms, rxt0);
    EXPECT_EQ(read32(reg::kIms), kIntLsc | kIntRxt0);
    // Unknown offsets read zero and ignore writes; past the BAR too.
    write32(0x1F000, 0xFFFFFFFF);
    EXPECT_EQ(read32(0x1F000), 0u);
    std::array<uint8_t, 4> past{0xFF, 0xFF, 0xFF, 0xFF};
    dev->bar_read(kMmioBar, 0x1FFFE, past);
    EXPECT_EQ(load_le(past), 0u);
    // I/O BAR reserved offsets.
    EXPECT_EQ(io_read32(0x20), 0u);
    io_write32(kIoAddr, reg::kStatus);
    EXPECT_EQ(io_read32(kIoAddr), reg::kStatus);
    EXPECT_TRUE(io_read32(kIoData) & kStatusLu);
}

TEST_F(E1000Test, StatisticsClearOnRead) {
    // Drive a counter through a transmit.
    setup_tx(8);
    auto frame = eth_frame(kPeerMac, 100);
    put_tx(legacy_desc(tx_data(frame), 114, kTxCmdEop | kTxCmdIfcs | kTxCmdRs));
    kick_tx();
    EXPECT_EQ(read32(stat::kGptc), 1u);
    EXPECT_EQ(read32(stat::kGptc), 0u);
    EXPECT_EQ(read32(stat::kGotcl), 118u);  // with the FCS
    EXPECT_EQ(read32(stat::kGotch), 0u);
    EXPECT_EQ(read32(stat::kGotcl), 0u);  // cleared with the high half
    write32(stat::kTpt, 55);              // read-only
    EXPECT_EQ(read32(stat::kTpt), 1u);
}

}  // namespace
}  // namespace rv::test
