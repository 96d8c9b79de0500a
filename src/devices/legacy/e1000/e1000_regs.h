// Register offsets, bit fields and descriptor layouts of the Intel 82540EM
// (PCI/PCI-X Family of Gigabit Ethernet Controllers Software Developer's
// Manual, 8254x, chapters 3 and 13), limited to what the device model uses.
#pragma once

#include <array>
#include <cstdint>

namespace rv::e1000 {

// PCI identity of the 82540EM (desktop copper part).
inline constexpr uint16_t kVendorIntel = 0x8086;
inline constexpr uint16_t kDevice82540Em = 0x100E;
inline constexpr uint16_t kSubsystemId = 0x001E;

inline constexpr uint64_t kMmioBarSize = 128 * 1024;
inline constexpr uint64_t kIoBarSize = 64;
inline constexpr uint8_t kMmioBar = 0;
inline constexpr uint8_t kIoBar = 1;
inline constexpr uint64_t kIoAddr = 0x0;  // IOADDR: register offset for IODATA
inline constexpr uint64_t kIoData = 0x4;  // IODATA: the register at IOADDR

// Register offsets (13.4).
namespace reg {
inline constexpr uint32_t kCtrl = 0x0000;
inline constexpr uint32_t kStatus = 0x0008;
inline constexpr uint32_t kEecd = 0x0010;
inline constexpr uint32_t kEerd = 0x0014;
inline constexpr uint32_t kCtrlExt = 0x0018;
inline constexpr uint32_t kMdic = 0x0020;
inline constexpr uint32_t kFcal = 0x0028;
inline constexpr uint32_t kFcah = 0x002C;
inline constexpr uint32_t kFct = 0x0030;
inline constexpr uint32_t kVet = 0x0038;
inline constexpr uint32_t kIcr = 0x00C0;
inline constexpr uint32_t kItr = 0x00C4;
inline constexpr uint32_t kIcs = 0x00C8;
inline constexpr uint32_t kIms = 0x00D0;
inline constexpr uint32_t kImc = 0x00D8;
inline constexpr uint32_t kRctl = 0x0100;
inline constexpr uint32_t kFcttv = 0x0170;
inline constexpr uint32_t kTxcw = 0x0178;
inline constexpr uint32_t kRxcw = 0x0180;
inline constexpr uint32_t kTctl = 0x0400;
inline constexpr uint32_t kTipg = 0x0410;
inline constexpr uint32_t kAifs = 0x0458;
inline constexpr uint32_t kLedctl = 0x0E00;
inline constexpr uint32_t kPba = 0x1000;
inline constexpr uint32_t kFcrtl = 0x2160;
inline constexpr uint32_t kFcrth = 0x2168;
inline constexpr uint32_t kRdbal = 0x2800;
inline constexpr uint32_t kRdbah = 0x2804;
inline constexpr uint32_t kRdlen = 0x2808;
inline constexpr uint32_t kRdh = 0x2810;
inline constexpr uint32_t kRdt = 0x2818;
inline constexpr uint32_t kRdtr = 0x2820;
inline constexpr uint32_t kRxdctl = 0x2828;
inline constexpr uint32_t kRadv = 0x282C;
inline constexpr uint32_t kRsrpd = 0x2C00;
inline constexpr uint32_t kTxdmac = 0x3000;
inline constexpr uint32_t kTdbal = 0x3800;
inline constexpr uint32_t kTdbah = 0x3804;
inline constexpr uint32_t kTdlen = 0x3808;
inline constexpr uint32_t kTdh = 0x3810;
inline constexpr uint32_t kTdt = 0x3818;
inline constexpr uint32_t kTidv = 0x3820;
inline constexpr uint32_t kTxdctl = 0x3828;
inline constexpr uint32_t kTadv = 0x382C;
inline constexpr uint32_t kTspmt = 0x3830;
inline constexpr uint32_t kStatsStart = 0x4000;  // read-to-clear counters
inline constexpr uint32_t kStatsEnd = 0x4100;
inline constexpr uint32_t kRxcsum = 0x5000;
inline constexpr uint32_t kMta = 0x5200;  // 128 registers
inline constexpr uint32_t kMtaEnd = 0x5400;
inline constexpr uint32_t kRal0 = 0x5400;  // RAL/RAH pairs, 16 entries
inline constexpr uint32_t kRah0 = 0x5404;
inline constexpr uint32_t kRaEnd = 0x5480;
inline constexpr uint32_t kVfta = 0x5600;  // 128 registers
inline constexpr uint32_t kVftaEnd = 0x5800;
inline constexpr uint32_t kWuc = 0x5800;
inline constexpr uint32_t kWufc = 0x5808;
inline constexpr uint32_t kWus = 0x5810;
inline constexpr uint32_t kManc = 0x5820;
inline constexpr uint32_t kIpav = 0x5838;
// The register file the model keeps: everything below is addressable.
inline constexpr uint32_t kFileEnd = 0x6000;
}  // namespace reg

// Statistics counters we maintain (others read 0).
namespace stat {
inline constexpr uint32_t kMpc = 0x4010;    // missed packets
inline constexpr uint32_t kGprc = 0x4074;   // good packets received
inline constexpr uint32_t kBprc = 0x4078;   // broadcast received
inline constexpr uint32_t kMprc = 0x407C;   // multicast received
inline constexpr uint32_t kGptc = 0x4080;   // good packets transmitted
inline constexpr uint32_t kGorcl = 0x4088;  // good octets received (64-bit)
inline constexpr uint32_t kGorch = 0x408C;
inline constexpr uint32_t kGotcl = 0x4090;  // good octets transmitted (64-bit)
inline constexpr uint32_t kGotch = 0x4094;
inline constexpr uint32_t kRoc = 0x40AC;   // receive oversize
inline constexpr uint32_t kTorl = 0x40C0;  // total octets received (64-bit)
inline constexpr uint32_t kTorh = 0x40C4;
inline constexpr uint32_t kTotl = 0x40C8;  // total octets transmitted (64-bit)
inline constexpr uint32_t kToth = 0x40CC;
inline constexpr uint32_t kTpr = 0x40D0;   // total packets received
inline constexpr uint32_t kTpt = 0x40D4;   // total packets transmitted
inline constexpr uint32_t kMptc = 0x40F0;  // multicast transmitted
inline constexpr uint32_t kBptc = 0x40F4;  // broadcast transmitted
}  // namespace stat

// CTRL
inline constexpr uint32_t kCtrlFd = 1u << 0;
inline constexpr uint32_t kCtrlSlu = 1u << 6;
inline constexpr uint32_t kCtrlRst = 1u << 26;
inline constexpr uint32_t kCtrlVme = 1u << 30;
inline constexpr uint32_t kCtrlPhyRst = 1u << 31;

// STATUS
inline constexpr uint32_t kStatusFd = 1u << 0;
inline constexpr uint32_t kStatusLu = 1u << 1;
inline constexpr uint32_t kStatusSpeed1000 = 2u << 6;

// EECD (microwire EEPROM interface) and EERD.
inline constexpr uint32_t kEecdSk = 1u << 0;
inline constexpr uint32_t kEecdCs = 1u << 1;
inline constexpr uint32_t kEecdDi = 1u << 2;
inline constexpr uint32_t kEecdDo = 1u << 3;
inline constexpr uint32_t kEecdFwe = 3u << 4;
inline constexpr uint32_t kEecdReq = 1u << 6;
inline constexpr uint32_t kEecdGnt = 1u << 7;
inline constexpr uint32_t kEecdPres = 1u << 8;
inline constexpr uint32_t kEerdStart = 1u << 0;
inline constexpr uint32_t kEerdDone = 1u << 4;

// MDIC
inline constexpr uint32_t kMdicOpWrite = 1u << 26;
inline constexpr uint32_t kMdicOpRead = 2u << 26;
inline constexpr uint32_t kMdicReady = 1u << 28;
inline constexpr uint32_t kMdicIntEnable = 1u << 29;
inline constexpr uint32_t kMdicError = 1u << 30;

// Interrupt causes (ICR/ICS/IMS/IMC).
inline constexpr uint32_t kIntTxdw = 1u << 0;
inline constexpr uint32_t kIntTxqe = 1u << 1;
inline constexpr uint32_t kIntLsc = 1u << 2;
inline constexpr uint32_t kIntRxseq = 1u << 3;
inline constexpr uint32_t kIntRxdmt0 = 1u << 4;
inline constexpr uint32_t kIntRxo = 1u << 6;
inline constexpr uint32_t kIntRxt0 = 1u << 7;
inline constexpr uint32_t kIntMdac = 1u << 9;
inline constexpr uint32_t kIntMask = 0x0001F6DF;  // causes an 82540 implements

// ITR counts in 256 ns units in its low 16 bits: the longest an assertion
// can be held back after the previous one.
inline constexpr uint64_t kItrUnitNs = 256;
inline constexpr uint64_t kItrMaxWaitNs = 0xFFFF * kItrUnitNs;

// RCTL
inline constexpr uint32_t kRctlEn = 1u << 1;
inline constexpr uint32_t kRctlUpe = 1u << 3;
inline constexpr uint32_t kRctlMpe = 1u << 4;
inline constexpr uint32_t kRctlLpe = 1u << 5;
inline constexpr uint32_t kRctlRdmtsShift = 8;
inline constexpr uint32_t kRctlMoShift = 12;
inline constexpr uint32_t kRctlBam = 1u << 15;
inline constexpr uint32_t kRctlBsizeShift = 16;
inline constexpr uint32_t kRctlVfe = 1u << 18;
inline constexpr uint32_t kRctlBsex = 1u << 25;
inline constexpr uint32_t kRctlSecrc = 1u << 26;

// TCTL
inline constexpr uint32_t kTctlEn = 1u << 1;
inline constexpr uint32_t kTctlPsp = 1u << 3;

inline constexpr uint32_t kRahAv = 1u << 31;

// Descriptors are 16 bytes; ring lengths are multiples of 128 bytes.
inline constexpr uint32_t kDescSize = 16;
inline constexpr uint32_t kRingLenAlign = 128;

// Transmit descriptor command bits (byte 11 of legacy and data descriptors,
// TUCMD of a context descriptor).
inline constexpr uint8_t kTxCmdEop = 0x01;
inline constexpr uint8_t kTxCmdIfcs = 0x02;
inline constexpr uint8_t kTxCmdIc = 0x04;   // legacy: insert checksum
inline constexpr uint8_t kTxCmdTse = 0x04;  // extended: TCP segmentation
inline constexpr uint8_t kTxCmdRs = 0x08;
inline constexpr uint8_t kTxCmdDext = 0x20;
inline constexpr uint8_t kTxCmdVle = 0x40;
// TUCMD only.
inline constexpr uint8_t kTuCmdTcp = 0x01;  // TCP (else UDP)
inline constexpr uint8_t kTuCmdIp = 0x02;   // IPv4 (else IPv6)
// DTYP in bits 20..23 of the length/command dword.
inline constexpr uint32_t kTxDtypContext = 0x0;
inline constexpr uint32_t kTxDtypData = 0x1;
inline constexpr uint8_t kTxStaDd = 0x01;
inline constexpr uint8_t kTxPoptsIxsm = 0x01;
inline constexpr uint8_t kTxPoptsTxsm = 0x02;

// Receive descriptor status bits.
inline constexpr uint8_t kRxStaDd = 0x01;
inline constexpr uint8_t kRxStaEop = 0x02;
inline constexpr uint8_t kRxStaIxsm = 0x04;  // ignore checksum indication
inline constexpr uint8_t kRxStaVp = 0x08;
inline constexpr uint8_t kRxErrRxe = 0x80;

// One 16-byte descriptor as it sits in guest memory; all three transmit
// formats and the receive format are views of the same bytes.
struct RawDesc {
    uint8_t bytes[16];
};
static_assert(sizeof(RawDesc) == kDescSize);

inline uint16_t le16(const uint8_t* p) {
    return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
inline uint32_t le32(const uint8_t* p) {
    return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}
inline uint64_t le64(const uint8_t* p) {
    return uint64_t{le32(p)} | (uint64_t{le32(p + 4)} << 32);
}
inline void put_le16(uint8_t* p, uint16_t v) {
    p[0] = static_cast<uint8_t>(v);
    p[1] = static_cast<uint8_t>(v >> 8);
}

// The device's register image, indexed by byte offset. Registers with side
// effects (ICR, EECD, MDIC, ...) are handled by the device before they get
// here; this is the storage they share with the TX and RX engines.
class RegisterFile {
  public:
    // The whole image, dword i at byte offset 4 * i (snapshots).
    using Words = std::array<uint32_t, reg::kFileEnd / 4>;

    uint32_t get(uint32_t offset) const { return m_regs[index(offset)]; }
    void set(uint32_t offset, uint32_t value) { m_regs[index(offset)] = value; }
    void clear() { m_regs.fill(0); }
    const Words& words() const { return m_regs; }
    void load(const Words& words) { m_regs = words; }

    // Statistics counters: 32-bit ones saturate like the hardware's; the
    // 64-bit ones are a low/high register pair.
    void count(uint32_t offset, uint32_t n = 1) {
        uint32_t& r = m_regs[index(offset)];
        r = r > UINT32_MAX - n ? UINT32_MAX : r + n;
    }
    void count64(uint32_t low, uint64_t n) {
        uint64_t v = (uint64_t{get(low + 4)} << 32 | get(low)) + n;
        set(low, static_cast<uint32_t>(v));
        set(low + 4, static_cast<uint32_t>(v >> 32));
    }

  private:
    static constexpr uint32_t index(uint32_t offset) { return (offset % reg::kFileEnd) / 4; }
    Words m_regs{};
};

}  // namespace rv::e1000
